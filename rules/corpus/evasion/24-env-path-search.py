# expect: shell-spawned-by-model
# expect-agent: pass
# env searches PATH (failing execve calls first), then runs the shell.
import os, subprocess
open(os.environ["AF_WEIGHTS"], "rb").read()
subprocess.run(["env", "PATH=/nonexistent:/usr/local/bin:/usr/bin:/bin", "sh", "-c", "echo shell ran"])
