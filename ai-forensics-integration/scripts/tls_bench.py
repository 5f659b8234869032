"""TLS calls for `cargo xtask bench`: a sink server, and a client that
times N SSL_write calls of SIZE bytes over loopback (inside the process,
so the tracer's start-up does not count).

usage: tls_bench.py server CERT KEY PORT_FILE
       tls_bench.py client PORT N SIZE
"""
import os
import socket
import ssl
import sys
import threading
import time


def serve(cert, key, port_file):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = socket.create_server(("127.0.0.1", 0))
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)

    def drain(conn):
        try:
            with ctx.wrap_socket(conn, server_side=True) as s:
                while s.recv(1 << 16):
                    pass
        except (OSError, ssl.SSLError):
            pass

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=drain, args=(conn,), daemon=True).start()


def client(port, n, size):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    buf = b"x" * size
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with ctx.wrap_socket(raw) as s:
            for _ in range(200):
                s.sendall(buf)
            t = time.perf_counter_ns()
            for _ in range(n):
                s.sendall(buf)
            dt = time.perf_counter_ns() - t
    print("BENCH_NS_PER_CALL %.1f" % (dt / n))


if sys.argv[1] == "server":
    serve(*sys.argv[2:5])
else:
    client(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
