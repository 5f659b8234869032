"""A local HTTPS server that speaks the chat-completions API, for the TLS
capture tests: every request body it receives is appended to RECEIVED (one
JSON line per request), and it answers with a canned reply carrying a tool
call, whole or streamed (server-sent events) when the request asks.

The tool call asks for COMMAND (default `cat /root/.ssh/id_rsa`).

usage: llm_server.py CERT KEY PORT_FILE RECEIVED [COMMAND]
"""
import http.server
import json
import ssl
import sys

CERT, KEY, PORT_FILE, RECEIVED = sys.argv[1:5]

COMMAND = sys.argv[5] if len(sys.argv) > 5 else "cat /root/.ssh/id_rsa"
TOOL_ARGS = json.dumps({"command": COMMAND})

REPLY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "canned-model-1",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "I will read the key.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "shell", "arguments": TOOL_ARGS},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 21, "completion_tokens": 9, "total_tokens": 30},
}


def stream_events():
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "I will "}}]},
        {"choices": [{"index": 0, "delta": {"content": "read the key."}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "shell", "arguments": TOOL_ARGS[:10]}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": TOOL_ARGS[10:]}}]}, "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 21, "completion_tokens": 9}},
    ]
    for c in chunks:
        c["model"] = "canned-model-1"
        yield ("data: " + json.dumps(c) + "\n\n").encode()
    yield b"data: [DONE]\n\n"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        with open(RECEIVED, "ab") as f:
            f.write(json.dumps({"path": self.path, "body": body.decode("utf-8", "replace"), "authorization": self.headers.get("Authorization")}).encode() + b"\n")
        req = json.loads(body or b"{}")
        if req.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for ev in stream_events():
                self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        else:
            out = json.dumps(REPLY).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERT, KEY)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os

os.rename(PORT_FILE + ".tmp", PORT_FILE)
srv.serve_forever()
