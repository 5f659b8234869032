# expect: shell-spawned-by-model
# expect-agent: pass
# A harmless program of a shell's size, run once (held, compared, let go),
# then overwritten in place with a shell's bytes (same inode, same size)
# and run again: opening it again re-arms the comparison.
import os, shutil, subprocess
open(os.environ["AF_WEIGHTS"], "rb").read()
sh = os.path.realpath("/bin/sh")
p = os.path.join(os.environ["AF_SCRATCH"], "tool")
shutil.copy("/bin/true", p)
with open(p, "r+b") as f:
    f.truncate(os.path.getsize(sh))
os.chmod(p, 0o755)
subprocess.run([p])
with open(p, "r+b") as f:
    f.write(open(sh, "rb").read())
subprocess.run([p, "-c", "echo shell ran"])
