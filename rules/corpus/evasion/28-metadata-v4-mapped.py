# expect: cloud-metadata
# The metadata address as an IPv4-mapped IPv6 address.
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.sendto(b"GET /latest/meta-data/", ("::ffff:169.254.169.254", 80))
