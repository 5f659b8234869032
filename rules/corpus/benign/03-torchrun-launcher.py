# expect: pass
# A torchrun-style launcher: it starts workers that each load the weights.
import os, subprocess, sys
code = 'import os; open(os.environ["AF_WEIGHTS"], "rb").read(); print("rank", os.environ["RANK"])'
procs = [subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "RANK": str(r), "WORLD_SIZE": "2"}) for r in range(2)]
sys.exit(max(p.wait() for p in procs))
