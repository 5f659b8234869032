# expect: credentials-read
# O_PATH descriptor, then reopened through /proc/self/fd.
import os
d, b = os.path.split(os.environ["AF_SECRET"])
fd = os.open(f"{d}//{b}", os.O_PATH)
print(open(f"/proc/self/fd/{fd}").read())
