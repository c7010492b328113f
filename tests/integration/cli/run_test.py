#!/usr/bin/env python3
"""The `make run` flow: run what `make run` runs except the apt step and
the build (make -o deps -o build run, on free ports and a temporary data
directory), wait until strata-standalone says it is ready, run the two
stratactl commands it prints, and check the event comes back.

Usage: run_test.py --source-dir DIR --build-dir DIR
Exit 0 on success, 1 with a reason on failure.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from ports import free_ports  # noqa: E402


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--build-dir", required=True)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="strata-run-", dir="/tmp")
    p = free_ports(6)
    run_args = " ".join([
        "--data-dir=%s" % os.path.join(base, "data"),
        "--listen=tcp://127.0.0.1:%d" % p[0],
        "--http.listen=http://127.0.0.1:%d" % p[1],
        "--raft.listen=127.0.0.1:%d" % p[2],
        "--store.listen=tcp://127.0.0.1:%d" % p[3],
        "--store.raft.listen=127.0.0.1:%d" % p[4],
        "--store.http.listen=http://127.0.0.1:%d" % p[5],
        "--log.file=%s" % os.path.join(base, "log")])
    out_path = os.path.join(base, "out")
    out = open(out_path, "w+")
    cmd = ["make", "--no-print-directory", "-o", "deps", "-o", "build",
           "run", "BUILD=%s" % args.build_dir, "RUN_ARGS=%s" % run_args]
    log("running: %s" % " ".join(cmd))
    # A `make test` around ctest must not leak its flags into this make.
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    make = subprocess.Popen(cmd, cwd=args.source_dir, stdout=out,
                            stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    ok = False
    try:
        deadline = time.monotonic() + 90
        text = ""
        while time.monotonic() < deadline:
            out.seek(0)
            text = out.read()
            if "Stop with Ctrl-C" in text or make.poll() is not None:
                break
            time.sleep(0.2)
        if "strata-standalone ready " not in text:
            raise RuntimeError("not ready (make exit %s): %s"
                               % (make.poll(), text[-3000:]))
        # The two printed commands, run as a user would paste them.
        m = re.search(r"first event[^\n]*:\n  (.*)\n  (.*)\n", text)
        if m is None:
            raise RuntimeError("no stratactl commands printed: %s" % text)
        results = []
        for line in (m.group(1), m.group(2)):
            log("$ " + line)
            r = subprocess.run(line, shell=True, cwd=args.source_dir,
                               capture_output=True, text=True, timeout=60)
            log("exit %d; stdout %r; stderr %r"
                % (r.returncode, r.stdout, r.stderr))
            if r.returncode != 0:
                raise RuntimeError("'%s' exited %d" % (line, r.returncode))
            results.append(r.stdout)
        if "hello, strata" not in results[1].splitlines():
            raise RuntimeError("the event did not come back: %r"
                               % results[1])
        ok = True
        log("PASS: make run, then the printed commands round-trip an "
            "event")
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        log("FAIL: %s" % e)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGTERM)
            try:
                make.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(make.pid, signal.SIGKILL)
                make.wait()
        out.close()
        shutil.rmtree(base, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
