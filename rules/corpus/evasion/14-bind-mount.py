# expect: credentials-read
# The key's directory bind-mounted elsewhere (mount is not a shell).
import os, subprocess
s = os.environ["AF_SECRET"]
m = os.path.join(os.environ["AF_SCRATCH"], "mnt")
os.mkdir(m)
subprocess.run(["mount", "--bind", os.path.dirname(s), m], check=True)
try:
    print(open(os.path.join(m, os.path.basename(s))).read())
finally:
    subprocess.run(["umount", m])
