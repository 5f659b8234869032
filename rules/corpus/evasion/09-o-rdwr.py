# expect: credentials-read
import os
d, b = os.path.split(os.environ["AF_SECRET"])
print(os.read(os.open(f"{d}/../{os.path.basename(d)}/{b}", os.O_RDWR), 100))
