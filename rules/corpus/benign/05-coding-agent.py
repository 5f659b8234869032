# expect: pass
# A coding agent's loop (its model is remote): shell tools run ls, git
# status and a test run. No profile stops the mere use of a shell by a
# process that is not an ML workload.
import os, subprocess, sys
repo = os.path.join(os.environ["AF_SCRATCH"], "repo")
os.makedirs(repo)
open(os.path.join(repo, "test_x.py"), "w").write("def test_x():\n    assert 1 + 1 == 2\n")
subprocess.run(["git", "init", "-q", repo], check=True)
for cmd in ["ls", "git status --short", f"{sys.executable} -m unittest discover -q"]:
    subprocess.run(["/bin/sh", "-c", cmd], cwd=repo, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("agent done")
