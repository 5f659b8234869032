"""An OTLP logs receiver for the integration tests, built on the official
opentelemetry-proto package: gRPC (LogsService/Export) and HTTP/protobuf
(POST /v1/logs). Every log record received is appended to OUT as one JSON
line (resource and record attributes, body, severity, time, transport).

    python otlp_receiver.py --out FILE [--grpc-port N] [--http-port N]

Prints `ready grpc=PORT http=PORT` once both listen (port 0 picks one).
"""
import argparse
import json
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc


def value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


class Sink:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.f = open(path, "a", encoding="utf-8")

    def write(self, req, transport):
        lines = []
        for rl in req.resource_logs:
            res = {kv.key: value(kv.value) for kv in rl.resource.attributes}
            for sl in rl.scope_logs:
                for lr in sl.log_records:
                    lines.append(json.dumps({
                        "transport": transport,
                        "resource": res,
                        "scope": sl.scope.name,
                        "time_unix_nano": lr.time_unix_nano,
                        "severity": lr.severity_text,
                        "severity_number": lr.severity_number,
                        "body": lr.body.string_value,
                        "attributes": {kv.key: value(kv.value) for kv in lr.attributes},
                    }))
        with self.lock:
            for line in lines:
                self.f.write(line + "\n")
            self.f.flush()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--grpc-port", type=int, default=0)
    p.add_argument("--http-port", type=int, default=0)
    a = p.parse_args()
    sink = Sink(a.out)

    class Logs(logs_service_pb2_grpc.LogsServiceServicer):
        def Export(self, request, context):
            sink.write(request, "grpc")
            return logs_service_pb2.ExportLogsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
    grpc_port = server.add_insecure_port(f"127.0.0.1:{a.grpc_port}")
    server.start()

    class Http(BaseHTTPRequestHandler):
        def do_POST(self):
            if self.path != "/v1/logs":
                self.send_error(404)
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            req = logs_service_pb2.ExportLogsServiceRequest()
            try:
                req.ParseFromString(body)
            except Exception:  # noqa: BLE001 - a bad body is a 400, whatever broke
                self.send_error(400)
                return
            sink.write(req, "http")
            out = logs_service_pb2.ExportLogsServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    http = ThreadingHTTPServer(("127.0.0.1", a.http_port), Http)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    print(f"ready grpc={grpc_port} http={http.server_address[1]}", flush=True)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
