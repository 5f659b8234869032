# expect: credentials-read
# /root/./.ssh/../.ssh//key: the same file, another spelling.
import os
d, b = os.path.split(os.environ["AF_SECRET"])
parent, leaf = os.path.split(d)
print(open(f"{parent}/./{leaf}/../{leaf}//{b}").read())
