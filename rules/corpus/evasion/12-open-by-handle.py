# expect: credentials-read
# name_to_handle_at + open_by_handle_at: no path at all in the open.
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
class Handle(ctypes.Structure):
    _fields_ = [("bytes", ctypes.c_uint), ("type", ctypes.c_int), ("f", ctypes.c_ubyte * 128)]
h = Handle(128, 0)
mount_id = ctypes.c_int()
if libc.name_to_handle_at(-100, os.environ["AF_SECRET"].encode(), ctypes.byref(h), ctypes.byref(mount_id), 0) != 0:
    raise SystemExit(f"name_to_handle_at: errno {ctypes.get_errno()}")
mfd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
fd = libc.open_by_handle_at(mfd, ctypes.byref(h), os.O_RDONLY)
if fd < 0:
    raise SystemExit(f"open_by_handle_at: errno {ctypes.get_errno()}")
print(os.read(fd, 100))
