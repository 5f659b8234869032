# expect: shell-spawned-by-model
# expect-agent: pass
import os
open(os.environ["AF_WEIGHTS"], "rb").read()
fd = os.open("/bin/sh", os.O_RDONLY)
pid = os.fork()
if pid == 0:
    os.execve(fd, ["sh", "-c", "echo shell ran"], {})
os.waitpid(pid, 0)
