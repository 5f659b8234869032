# expect: cloud-metadata
# UDP to the metadata address without connect().
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"GET /latest/meta-data/", ("169.254.169.254", 80))
