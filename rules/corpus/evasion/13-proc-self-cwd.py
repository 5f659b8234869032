# expect: credentials-read
import os
s = os.environ["AF_SECRET"]
os.chdir(os.path.dirname(s))
print(open("/proc/self/cwd/" + os.path.basename(s)).read())
