#!/usr/bin/env python3
"""Independent checks of the s3 tier-2 plugin against real s3rver processes.

usage: s3_checks.py <check> --tool T2TOOL --state DIR [--install DIR]
  interop   objects the plugin writes are read back by boto3 and objects
            boto3 writes (in the plugin's layout) are read by the plugin,
            for both transports (v4 on the strict server, v2 on the
            lenient one)
  sigv4     every request of a SigV4 session (create, write, read, list,
            truncate, concat, delete) goes through a recording proxy; each
            captured Authorization header is recomputed with botocore's
            S3SigV4Auth and must match (s3rver does not verify SigV4)
  outage    a private s3rver is killed -9 (then another is stopped with
            SIGSTOP): the plugin fails within its retry bounds with
            STRATA_ECONNREFUSED / STRATA_ETIMEDOUT and names the endpoint
The fixture servers come from s3rver.py (ctest fixture "s3rver").
"""
import argparse
import hashlib
import http.client
import http.server
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3rver  # noqa: E402

ECONNREFUSED = 14
ETIMEDOUT = 13
ENOENT = 3
STRATA_ECORRUPT = 7


def endpoint_of(state, name):
    with open(os.path.join(state, name + ".endpoint")) as f:
        return f.read().strip()


def config(endpoint, prefix, extra=""):
    c = ("endpoint=%s;bucket=%s;prefix=%s;access_key_id=%s;"
         "secret_access_key=%s" % (endpoint, s3rver.BUCKET, prefix,
                                   s3rver.ACCESS_KEY, s3rver.SECRET_KEY))
    return c + (";" + extra if extra else "")


class Tool:
    """Runs t2tool: one plugin op per process."""

    def __init__(self, path, conf):
        self.path = path
        self.conf = conf

    def run(self, *args, want=0, timeout=120):
        p = subprocess.run([self.path, "s3", self.conf] + [str(a)
                                                          for a in args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=timeout)
        if p.returncode != want:
            raise AssertionError("t2tool %s: exit %d, want %d\n%s" % (
                " ".join(map(str, args)), p.returncode, want, p.stderr))
        return p

    def write_bytes(self, tmp, name, off, data):
        path = os.path.join(tmp, "in")
        with open(path, "wb") as f:
            f.write(data)
        self.run("write", name, off, path)

    def read_bytes(self, tmp, name, off, n):
        path = os.path.join(tmp, "out")
        self.run("read", name, off, n, path)
        with open(path, "rb") as f:
            return f.read()


def boto(endpoint):
    import boto3
    from botocore.config import Config
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=s3rver.ACCESS_KEY,
        aws_secret_access_key=s3rver.SECRET_KEY,
        config=Config(s3={"addressing_style": "path"},
                      retries={"max_attempts": 1}))


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok: " + what)


def interop_one(args, server, sig):
    ep = endpoint_of(args.state, server)
    prefix = "interop-%s-%d" % (sig, os.getpid())
    # checksum=none: plain objects, the bytes themselves (framed ones:
    # framed_one below).
    extra = "checksum=none;" + ("signature=v2" if sig == "v2"
                                else "multipart_min_part=1k")
    tool = Tool(args.tool, config(ep, prefix, extra))
    s3 = boto(ep)
    rnd = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="strata-s3interop-") as tmp:
        # plugin -> boto3: three writes of a chunk, read as its objects.
        pieces = [rnd.randbytes(n) for n in (1 << 20, 12345, 3)]
        tool.run("create", "seg/a")
        off = 0
        for p in pieces:
            tool.write_bytes(tmp, "seg/a", off, p)
            off += len(p)
        listed = s3.list_objects_v2(Bucket=s3rver.BUCKET,
                                    Prefix=prefix + "/seg/a/")
        keys = [o["Key"] for o in listed.get("Contents", [])]
        want_keys = ["%s/seg/a/%020d" % (prefix, o)
                     for o in (0, 1 << 20, (1 << 20) + 12345)]
        check(keys == want_keys, "[%s] boto3 lists the plugin's objects "
              "named by offset: %s" % (sig, keys))
        got = b"".join(s3.get_object(Bucket=s3rver.BUCKET, Key=k)
                       ["Body"].read() for k in keys)
        check(got == b"".join(pieces),
              "[%s] boto3 reads back the bytes the plugin wrote" % sig)

        # boto3 -> plugin: objects in the plugin's layout form a chunk.
        b0, b1 = rnd.randbytes(100), rnd.randbytes(50)
        s3.put_object(Bucket=s3rver.BUCKET, Key="%s/seg/b/%020d" % (
            prefix, 0), Body=b0)
        s3.put_object(Bucket=s3rver.BUCKET, Key="%s/seg/b/%020d" % (
            prefix, 100), Body=b1)
        out = tool.run("stat", "seg/b").stdout.strip()
        check(out == "150", "[%s] the plugin stats boto3's objects as one "
              "150-byte chunk (got %s)" % (sig, out))
        check(tool.read_bytes(tmp, "seg/b", 0, 1000) == b0 + b1,
              "[%s] the plugin reads the bytes boto3 wrote" % sig)
        check(tool.read_bytes(tmp, "seg/b", 90, 20) == (b0 + b1)[90:110],
              "[%s] a range across boto3's two objects reads right" % sig)

        # concat: the result is plain objects boto3 reads.
        tool.run("concat", "seg/a", "seg/b")
        total = b"".join(pieces) + b0 + b1
        listed = s3.list_objects_v2(Bucket=s3rver.BUCKET,
                                    Prefix=prefix + "/seg/")
        keys = [o["Key"] for o in listed.get("Contents", [])]
        got = b"".join(s3.get_object(Bucket=s3rver.BUCKET, Key=k)
                       ["Body"].read() for k in keys)
        check(all(k.startswith(prefix + "/seg/a/") for k in keys) and
              got == total, "[%s] after concat boto3 sees only seg/a, "
              "holding both chunks (%d objects)" % (sig, len(keys)))
        tool.run("delete", "seg/a")
        listed = s3.list_objects_v2(Bucket=s3rver.BUCKET, Prefix=prefix)
        check(listed.get("KeyCount", 0) == 0,
              "[%s] delete leaves no object behind" % sig)


BLOCK = 65536


def framed_size(n):
    """Bytes of an object framing n data bytes (a CRC per 64 KiB)."""
    return n + 4 * ((n + BLOCK - 1) // BLOCK)


def framed_one(args, server, sig):
    """The default checksum=block: ".crc" objects, a CRC32C per 64 KiB
    block checked on every read, so a byte changed in the store is an
    error, never data."""
    ep = endpoint_of(args.state, server)
    prefix = "framed-%s-%d" % (sig, os.getpid())
    extra = "signature=v2" if sig == "v2" else "multipart_min_part=1k"
    tool = Tool(args.tool, config(ep, prefix, extra))
    s3 = boto(ep)
    rnd = random.Random(11)
    with tempfile.TemporaryDirectory(prefix="strata-s3framed-") as tmp:
        pieces = [rnd.randbytes(n) for n in (200000, 12345, 3)]
        tool.run("create", "seg/c")
        off = 0
        for p in pieces:
            tool.write_bytes(tmp, "seg/c", off, p)
            off += len(p)
        data = b"".join(pieces)
        listed = s3.list_objects_v2(Bucket=s3rver.BUCKET,
                                    Prefix=prefix + "/seg/c/")
        objs = [(o["Key"], o["Size"]) for o in listed.get("Contents", [])]
        want = [("%s/seg/c/%020d.crc" % (prefix, o), framed_size(len(p)))
                for o, p in zip((0, 200000, 212345), pieces)]
        check(objs == want, "[%s] framed objects are <offset>.crc, "
              "a CRC per 64 KiB block: %s" % (sig, objs))
        check(tool.run("stat", "seg/c").stdout.strip() == str(len(data)),
              "[%s] stat gives the data length" % sig)
        check(tool.read_bytes(tmp, "seg/c", 0, len(data)) == data,
              "[%s] the framed chunk reads back" % sig)
        check(tool.read_bytes(tmp, "seg/c", 65530, 70000) ==
              data[65530:135530],
              "[%s] a range across blocks reads back" % sig)

        # One byte changed in the store: its block fails, others read.
        key = want[0][0]
        body = bytearray(s3.get_object(Bucket=s3rver.BUCKET, Key=key)
                         ["Body"].read())
        body[BLOCK + 4 + 10] ^= 0x20  # block 1, data byte 65546
        s3.put_object(Bucket=s3rver.BUCKET, Key=key, Body=bytes(body))
        bad = tool.run("read", "seg/c", 65540, 10,
                       os.path.join(tmp, "out"), want=STRATA_ECORRUPT)
        check("fails its checksum" in bad.stderr and
              "65536..131072" in bad.stderr,
              "[%s] a changed byte fails the read of its block: %s" % (
                  sig, bad.stderr.strip().splitlines()[-1]))
        check(tool.read_bytes(tmp, "seg/c", 0, 1000) == data[:1000] and
              tool.read_bytes(tmp, "seg/c", 200000, 12348) ==
              data[200000:],
              "[%s] the other blocks still read" % sig)
        body[BLOCK + 4 + 10] ^= 0x20
        s3.put_object(Bucket=s3rver.BUCKET, Key=key, Body=bytes(body))

        # concat into a framed chunk, truncate inside a block.
        tool.run("create", "seg/d")
        tail = rnd.randbytes(5000)
        tool.write_bytes(tmp, "seg/d", 0, tail)
        tool.run("concat", "seg/c", "seg/d")
        data += tail
        check(tool.read_bytes(tmp, "seg/c", 0, len(data)) == data,
              "[%s] concat of framed chunks reads back" % sig)
        tool.run("truncate", "seg/c", 100001)
        check(tool.read_bytes(tmp, "seg/c", 0, len(data)) ==
              data[:100001], "[%s] truncate inside a block" % sig)
        tool.run("delete", "seg/c")
        listed = s3.list_objects_v2(Bucket=s3rver.BUCKET, Prefix=prefix)
        check(listed.get("KeyCount", 0) == 0,
              "[%s] delete leaves no object behind" % sig)


def cmd_interop(args):
    interop_one(args, "strict", "v4")
    interop_one(args, "lenient", "v2")
    framed_one(args, "strict", "v4")
    framed_one(args, "lenient", "v2")


class Recorder(http.server.BaseHTTPRequestHandler):
    """Forwards every request to the upstream and records it."""
    protocol_version = "HTTP/1.1"
    upstream = None
    records = []
    lock = threading.Lock()

    def log_message(self, fmt, *a):
        pass

    def _any(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        body = self.rfile.read(n) if n else b""
        with self.lock:
            self.records.append({
                "method": self.command, "path": self.path,
                "headers": [(k, v) for k, v in self.headers.items()],
                "body_sha256": hashlib.sha256(body).hexdigest()})
        c = http.client.HTTPConnection(*self.upstream, timeout=60)
        hdrs = {k: v for k, v in self.headers.items()
                if k.lower() not in ("connection", "expect",
                                     "transfer-encoding")}
        c.request(self.command, self.path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "transfer-encoding",
                                 "content-length", "keep-alive"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        c.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any


def recompute(rec, secret, token):
    """Signature botocore computes for a captured request."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    headers = dict((k.lower(), v) for k, v in rec["headers"])
    auth = headers["authorization"]
    parts = dict(p.strip().split("=", 1) for p in
                 auth[len("AWS4-HMAC-SHA256 "):].split(","))
    signed = parts["SignedHeaders"].split(";")
    akid, date, region, service, _ = parts["Credential"].split("/")
    url = "http://%s%s" % (headers["host"], rec["path"])
    req = AWSRequest(method=rec["method"], url=url,
                     headers={h: headers[h] for h in signed})
    req.context["timestamp"] = headers["x-amz-date"]
    a = S3SigV4Auth(Credentials(akid, secret, token), service, region)
    # The request carries exactly the headers the client signed.
    creq = a.canonical_request(req)
    sts = a.string_to_sign(req, creq)
    return parts["Signature"], a.signature(sts, req), signed


def cmd_sigv4(args):
    ep = endpoint_of(args.state, "strict")
    up = urllib.parse.urlsplit(ep)
    Recorder.upstream = (up.hostname, up.port)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    proxy = "http://127.0.0.1:%d" % srv.server_address[1]
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY+/="
    token = "FwoGZXIvYXdzE//token+with/odd=chars"
    conf = ("endpoint=%s;bucket=%s;prefix=sigv4-%d;access_key_id=S3RVER;"
            "secret_access_key=%s;session_token=%s;region=eu-central-1;"
            "multipart_min_part=1k" % (proxy, s3rver.BUCKET, os.getpid(),
                                       secret, token))
    tool = Tool(args.tool, conf)
    with tempfile.TemporaryDirectory(prefix="strata-s3sigv4-") as tmp:
        tool.run("create", "c/a")
        tool.write_bytes(tmp, "c/a", 0, b"x" * 3000)
        tool.write_bytes(tmp, "c/a", 3000, b"y" * 10)
        tool.read_bytes(tmp, "c/a", 2990, 20)
        tool.run("create", "c/b")
        tool.write_bytes(tmp, "c/b", 0, b"z" * 1500)
        tool.run("list", "c/")
        tool.run("concat", "c/a", "c/b")
        tool.run("truncate", "c/a", 3005)
        tool.run("delete", "c/a")
        tool.run("stat", "c/a", want=ENOENT)
    srv.shutdown()
    recs = Recorder.records
    methods = sorted(set(r["method"] for r in recs))
    queries = set(urllib.parse.urlsplit(r["path"]).query.split("=")[0]
                  for r in recs)
    check(len(recs) >= 20 and {"GET", "PUT", "POST", "DELETE"} <=
          set(methods), "captured %d requests (%s; query kinds %s)" % (
              len(recs), ",".join(methods), sorted(queries)))
    bad = 0
    for r in recs:
        got, want, signed = recompute(r, secret, token)
        if got != want:
            bad += 1
            print("MISMATCH %s %s signed=%s\n  curl %s\n  boto %s" % (
                r["method"], r["path"], signed, got, want))
        elif "x-amz-security-token" not in signed or \
                "x-amz-content-sha256" not in signed:
            bad += 1
            print("UNSIGNED token/payload header: %s %s %s" % (
                r["method"], r["path"], signed))
    check(bad == 0, "all %d Authorization headers equal botocore's "
          "S3SigV4Auth recomputation (token and payload hash signed)" %
          len(recs))


def cmd_outage(args):
    state = tempfile.mkdtemp(prefix="strata-s3outage-")
    srv = s3rver.S3rver(state, "victim", install_dir=args.install).start()
    tool = Tool(args.tool, config(
        srv.endpoint, "outage",
        "retries=2;retry_base_ms=50;retry_max_ms=200;io_timeout_ms=1000;"
        "connect_timeout_ms=1000"))
    try:
        with tempfile.TemporaryDirectory(prefix="strata-s3out-") as tmp:
            tool.run("create", "k")
            tool.write_bytes(tmp, "k", 0, b"before the crash")
            srv.kill(signal.SIGKILL)
            t0 = time.time()
            p = tool.run("stat", "k", want=ECONNREFUSED)
            dt = time.time() - t0
            print(p.stderr.strip())
            check(srv.endpoint in p.stderr and "3 attempts" in p.stderr,
                  "killed server: STRATA_ECONNREFUSED naming %s after 3 "
                  "attempts" % srv.endpoint)
            check(dt < 5, "bounded: gave up after %.2f s" % dt)

        stopped = s3rver.S3rver(state, "frozen",
                                install_dir=args.install).start()
        tool.conf = config(stopped.endpoint, "outage",
                           "retries=1;retry_base_ms=50;io_timeout_ms=1000")
        tool.run("create", "k")
        stopped.kill(signal.SIGSTOP)
        t0 = time.time()
        p = tool.run("stat", "k", want=ETIMEDOUT)
        dt = time.time() - t0
        print(p.stderr.strip())
        stopped.kill(signal.SIGCONT)
        stopped.stop()
        check(stopped.endpoint in p.stderr and "timed out" in p.stderr,
              "stopped server: STRATA_ETIMEDOUT naming %s" %
              stopped.endpoint)
        check(dt < 10, "bounded: gave up after %.2f s (2 attempts of "
              "~1 s)" % dt)
    finally:
        srv.stop()
        subprocess.run(["rm", "-rf", state])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("check", choices=["interop", "sigv4", "outage"])
    ap.add_argument("--tool", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--install")
    args = ap.parse_args()
    {"interop": cmd_interop, "sigv4": cmd_sigv4,
     "outage": cmd_outage}[args.check](args)
    print("PASS s3 %s" % args.check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
