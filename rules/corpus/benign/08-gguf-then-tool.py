# expect: pass
# A GGUF model loaded (nothing unpickled), then a tool run right after.
import os, subprocess
open(os.environ["AF_GGUF"], "rb").read()
subprocess.run(["ls", os.environ["AF_SCRATCH"]], check=True, stdout=subprocess.DEVNULL)
