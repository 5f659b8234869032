# expect: cloud-metadata
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendmsg([b"GET /latest/meta-data/"], [], 0, ("169.254.169.254", 80))
