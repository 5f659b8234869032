# expect: pass
# An ML workload whose execve of a shell fails (ENOENT): nothing ran.
import os
open(os.environ["AF_WEIGHTS"], "rb").read()
for d in ["/nonexistent", "/also/missing"]:
    try:
        os.execv(d + "/sh", ["sh"])
    except OSError:
        pass
print("still here")
