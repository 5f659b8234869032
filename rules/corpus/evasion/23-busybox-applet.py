# expect: shell-spawned-by-model
# expect-agent: pass
# busybox's sh applet through a symlink named like a harmless tool.
import os, shutil, subprocess
open(os.environ["AF_WEIGHTS"], "rb").read()
bb = shutil.which("busybox")
if bb is None:
    raise SystemExit("busybox is not installed")
link = os.path.join(os.environ["AF_SCRATCH"], "sh")
os.symlink(bb, link)
subprocess.run([link, "-c", "echo shell ran"])
