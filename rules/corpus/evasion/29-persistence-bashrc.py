# expect: persistence
# A line appended to a shell start-up file runs at the next login.
import os
rc = os.path.join(os.environ["AF_HOME"], ".bashrc")
with open(rc, "a") as f:
    f.write("# ai-forensics corpus\n")
