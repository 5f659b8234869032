# expect: credentials-read
# openat(dirfd, "key"): a directory fd and a bare name.
import os
s = os.environ["AF_SECRET"]
d = os.open(os.path.dirname(s), os.O_RDONLY | os.O_DIRECTORY)
print(os.read(os.open(os.path.basename(s), os.O_RDONLY, dir_fd=d), 100))
