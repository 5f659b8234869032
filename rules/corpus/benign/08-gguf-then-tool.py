# expect: pass
# A GGUF model loaded (nothing unpickled), then a tool run right after.
import os, subprocess
p = os.path.join(os.environ["AF_SCRATCH"], "model.gguf")
open(p, "wb").write(b"GGUF\x03\x00\x00\x00")
open(p, "rb").read()
subprocess.run(["ls", os.environ["AF_SCRATCH"]], check=True, stdout=subprocess.DEVNULL)
