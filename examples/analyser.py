#!/usr/bin/env python3
"""A third-party analyser for ai-forensics, in plain Python (standard library).

ai-forensics posts batches of records (JSON Lines, exactly as in its event
stream) signed with HMAC-SHA256; the analyser answers with verdicts (JSON
Lines), signed the same way. See docs/analyser.md.

This example flags any process that connects to a port in BLOCKED_PORTS or
that reads more than LIMIT bytes in total, and asks ai-forensics to stop it.

    echo 'a-long-shared-secret-token' > token && chmod 600 token
    python3 examples/analyser.py --token-file token --port 9900 &
    sudo ai-forensics run --analyser http://127.0.0.1:9900/events \
        --analyser-token-file token -- python3 agent.py
"""
import argparse
import hashlib
import hmac
import json
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BLOCKED_PORTS = {22, 4444, 6667}
LIMIT = 100 * 1024 * 1024


def sign(token: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(token, body, hashlib.sha256).hexdigest()


def make_handler(token: bytes):
    bytes_read = defaultdict(int)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            signature = self.headers.get("X-AI-Forensics-Signature", "")
            if not hmac.compare_digest(signature, sign(token, body)):
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            verdicts = []
            for line in body.decode("utf-8", "replace").splitlines():
                if not line.strip():
                    continue
                record = json.loads(line)
                if record["type"] != "syscall":
                    continue
                detail, pid = record["detail"], record["pid"]
                if detail["syscall"] == "connect":
                    addr = detail["args"].get("addr") or {}
                    if addr.get("port") in BLOCKED_PORTS:
                        verdicts.append({"target": pid, "action": "stop", "rule": "example-blocked-port",
                                         "reason": f"connect to {addr.get('ip')}:{addr.get('port')}"})
                if detail["syscall"] in ("read", "pread64") and (detail.get("ret") or 0) > 0:
                    bytes_read[pid] += detail["ret"]
                    if bytes_read[pid] > LIMIT:
                        verdicts.append({"target": pid, "action": "alert", "rule": "example-read-volume",
                                         "reason": f"read {bytes_read[pid]} bytes"})
                        bytes_read[pid] = 0
            out = "".join(json.dumps(v) + "\n" for v in verdicts).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("X-AI-Forensics-Signature", sign(token, out))
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    return Handler


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--token-file", required=True)
    p.add_argument("--port", type=int, default=9900)
    args = p.parse_args()
    token = open(args.token_file).readline().strip().encode()
    ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(token)).serve_forever()


if __name__ == "__main__":
    main()
