#!/usr/bin/env python3
"""A small real HTTP server for the http connector's tests (unit and
integration): serves the files of --dir with ranges and takes POSTs.

  GET  /doc/NAME        the file, honouring "Range: bytes=N-" / "N-M"
                        (206 + Content-Range; 416 + "bytes */LEN" past it)
  GET  /norange/NAME    the whole file with 200 whatever Range says
  GET  /cut/NAME        like /doc but the connection drops after --cut bytes
                        of every body (the client must go on from there)
  GET  /redirect/NAME   302 to /doc/NAME
  GET  /status/CODE     answers CODE
  GET  /header/NAME     the request's header NAME as the body
  POST /sink/NAME       appends the body to the file NAME, answers 204
  POST /status/CODE     answers CODE with the body "status CODE"
  any  ...?fail=K       the first K requests to that path answer 503

Listens on 127.0.0.1 only; --port 0 takes a free port. Once listening it
prints "ready <port>" and, with --port-file F, writes the port to F
(atomically: F.tmp renamed).
"""
import argparse
import http.server
import os
import re
import sys
import threading
import urllib.parse

FAILS = {}
LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: tests print what matters
        pass

    def _path(self):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        return u.path, q

    def _fail_first(self, path, q):
        k = int(q.get("fail", ["0"])[0])
        with LOCK:
            n = FAILS.get(path, 0)
            FAILS[path] = n + 1
        return n < k

    def _send(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _file(self, name):
        p = os.path.join(self.server.dir, os.path.basename(name))
        try:
            with open(p, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def do_GET(self):
        path, q = self._path()
        if self._fail_first(path, q):
            self._send(503, b"busy")
            return
        parts = path.strip("/").split("/", 1)
        kind, name = parts[0], parts[1] if len(parts) > 1 else ""
        if kind == "status":
            self._send(int(name), b"status " + name.encode())
            return
        if kind == "header":
            self._send(200, (self.headers.get(name) or "").encode())
            return
        if kind == "redirect":
            self._send(302, b"", [("Location", "/doc/" + name)])
            return
        data = self._file(name)
        if data is None or kind not in ("doc", "norange", "cut"):
            self._send(404, b"no such document")
            return
        total = len(data)
        rng = self.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
        if kind == "norange" or m is None:
            self._send(200, data)
            return
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else total - 1
        if start >= total:
            self._send(416, b"", [("Content-Range", f"bytes */{total}")])
            return
        end = min(end, total - 1)
        body = data[start:end + 1]
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{total}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if kind == "cut" and len(body) > self.server.cut:
            self.wfile.write(body[:self.server.cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def do_POST(self):
        path, q = self._path()
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n) if n > 0 else b""
        if self._fail_first(path, q):
            self._send(503, b"busy")
            return
        parts = path.strip("/").split("/", 1)
        kind, name = parts[0], parts[1] if len(parts) > 1 else ""
        if kind == "status":
            self._send(int(name), b"status " + name.encode())
            return
        if kind != "sink":
            self._send(404, b"no such endpoint")
            return
        p = os.path.join(self.server.dir, os.path.basename(name))
        with LOCK:
            with open(p, "ab") as f:
                f.write(body)
            with open(p + ".posts", "a") as f:
                f.write(f"{len(body)}\n")
        self._send(204)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cut", type=int, default=1000,
                    help="bytes of a /cut/ body sent before the drop")
    a = ap.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.dir = a.dir
    srv.cut = a.cut
    port = srv.server_address[1]
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.rename(a.port_file + ".tmp", a.port_file)
    print(f"ready {port}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
