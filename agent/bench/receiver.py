#!/usr/bin/env python3
"""Tiny stand-in for the StatusMonitor server: answers 200 to POST /api/ingest
and GET /api/health, keep-alive, and counts the reports it received.
Usage: receiver.py PORT  (prints "reports=N requests=M" on SIGTERM/Ctrl-C)"""
import gzip, json, signal, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

counts = {"requests": 0, "reports": 0}

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, code, body=b'{"ok":true}'):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._answer(200 if self.path == "/api/health" else 404)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        counts["requests"] += 1
        counts["reports"] += len(json.loads(body).get("reports", []))
        self._answer(200)

    def log_message(self, *args):
        pass

def stop(*_):
    print(f"reports={counts['reports']} requests={counts['requests']}", flush=True)
    sys.exit(0)

signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
