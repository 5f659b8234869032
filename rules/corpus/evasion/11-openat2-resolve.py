# expect: credentials-read
# openat2 (no libc wrapper) with RESOLVE flags, through a directory fd.
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
class OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]
s = os.environ["AF_SECRET"]
d = os.open(os.path.dirname(s), os.O_RDONLY | os.O_DIRECTORY)
how = OpenHow(os.O_RDONLY, 0, 0x04 | 0x08)  # RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
fd = libc.syscall(437, d, os.path.basename(s).encode(), ctypes.byref(how), ctypes.sizeof(how))
if fd < 0:
    raise SystemExit(f"openat2: errno {ctypes.get_errno()}")
print(os.read(fd, 100))
