# expect: shell-spawned-by-model
# expect-agent: pass
import os, subprocess
open(os.environ["AF_WEIGHTS"], "rb").read()
alias = os.path.join(os.environ["AF_SCRATCH"], "lint")
try:
    os.link(os.path.realpath("/bin/sh"), alias)
except OSError:  # another file system: a copy then
    import shutil
    shutil.copy(os.path.realpath("/bin/sh"), alias)
subprocess.run([alias, "-c", "echo shell ran"])
