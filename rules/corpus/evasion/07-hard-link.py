# expect: credentials-read
# A second name for the same inode.
import os
alias = os.path.join(os.environ["AF_SCRATCH"], "notes.txt")
os.link(os.environ["AF_SECRET"], alias)
print(open(alias).read())
