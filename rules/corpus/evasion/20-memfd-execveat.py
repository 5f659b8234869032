# expect: shell-spawned-by-model
# expect-agent: pass
# A shell's bytes in an anonymous memory file, executed by descriptor.
import os
open(os.environ["AF_WEIGHTS"], "rb").read()
fd = os.memfd_create("x")
os.write(fd, open(os.path.realpath("/bin/sh"), "rb").read())
pid = os.fork()
if pid == 0:
    os.execve(fd, ["sh", "-c", "echo shell ran"], {})
os.waitpid(pid, 0)
