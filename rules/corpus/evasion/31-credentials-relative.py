# expect: credentials-touched
# $HOME/.aws/credentials by a relative name (the glob `**/.aws/credentials`
# is rooted at every home directory, and decided on the file's identity).
import os
d = os.path.join(os.environ["HOME"], ".aws")
os.chdir(d)
print(open("credentials").read())
