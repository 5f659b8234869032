# expect: shell-spawned-by-model
# expect-agent: pass
# An ML workload (it opened weights) runs a shell.
import os, subprocess
open(os.environ["AF_WEIGHTS"], "rb").read()
subprocess.run(["/bin/sh", "-c", "echo shell ran"])
