# expect: credentials-read
# Move the key out of the protected directory, then open it there.
import os
moved = os.path.join(os.environ["AF_SCRATCH"], "moved.txt")
os.rename(os.environ["AF_SECRET"], moved)
print(open(moved).read())
