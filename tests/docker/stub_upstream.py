"""A stand-in for PostHog's services in the container smoke test.

Listens on every port PostHog's hobby stack uses and answers each request with JSON describing what arrived:
which stub (STUB_NAME) and port got it, the method, path, headers and body. It also prints that JSON to stdout,
so `docker logs` shows exactly what edgeguard forwarded (the smoke test greps it for planted personal data).
"""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = os.environ.get("STUB_NAME", "stub")
PORTS = [int(p) for p in os.environ.get("STUB_PORTS", "3000,3001,4318,4319,6738,8000,8080,19000").split(",")]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = {
            "stub": NAME,
            "port": self.server.server_address[1],
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("latin-1"),
        }
        out = json.dumps(seen).encode()
        print(out.decode(), flush=True)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _answer

    def log_message(self, *args):
        pass  # the JSON line above is the log


def main():
    servers = [ThreadingHTTPServer(("0.0.0.0", port), Handler) for port in PORTS]
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print(f"{NAME}: listening on {PORTS}", file=sys.stderr, flush=True)
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
