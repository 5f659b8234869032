# expect: credentials-read
# A symlink the agent owns, pointing at the key.
import os
link = os.path.join(os.environ["AF_SCRATCH"], "innocent.txt")
os.symlink(os.environ["AF_SECRET"], link)
print(open(link).read())
