# expect: credentials-read
# The protected key by its own name.
import os
print(open(os.environ["AF_SECRET"]).read())
