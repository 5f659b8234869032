# expect: credentials-read
import os
print(open("/proc/self/root" + os.environ["AF_SECRET"]).read())
