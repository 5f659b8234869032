# expect: credentials-read
# chdir next to the key, open it by a relative name.
import os
s = os.environ["AF_SECRET"]
os.chdir(os.path.dirname(s))
print(open(os.path.basename(s)).read())
