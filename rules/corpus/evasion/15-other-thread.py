# expect: credentials-read
# The open from a second thread of the process.
import os, threading
d, b = os.path.split(os.environ["AF_SECRET"])
out = []
t = threading.Thread(target=lambda: out.append(open(f"{d}/./{b}").read()))
t.start()
t.join()
print(out)
