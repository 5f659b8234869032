# expect: pass
# A plain Python script (no ML runtime, no model) that runs a shell: not a
# workload; the launcher chain is never the model.
import subprocess
subprocess.run(["/bin/sh", "-c", "true"], check=True)
