# expect: shell-spawned-by-model
# expect-agent: pass
import os
open(os.environ["AF_WEIGHTS"], "rb").read()
os.system("echo shell ran")
