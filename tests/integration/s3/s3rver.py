#!/usr/bin/env python3
"""Start and stop s3rver (a local S3 server) for tests, by PID.

usage:
  s3rver.py start --state DIR [--install DIR] NAME[:lenient] ...
  s3rver.py stop --state DIR NAME ...

start installs s3rver once (setup-s3rver.sh, cached in --install, default
<state>/../s3rver), then for each NAME starts `s3rver -p 0` on 127.0.0.1
with a fresh data dir and the bucket "strata", waits until it listens, and
writes <state>/NAME.endpoint ("http://127.0.0.1:PORT"), NAME.pid and
NAME.log. ":lenient" adds --allow-mismatched-signatures (needed by libs3's
SigV2 bucket-level requests, see docs/tier2.md). stop kills each by the PID
in NAME.pid (SIGTERM, then SIGKILL after 5 s) and removes its data.

Also importable: S3rver(state_dir, name, lenient).start()/.kill()/.stop()
for tests that need a private server to kill.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUCKET = "strata"
ACCESS_KEY = "S3RVER"
SECRET_KEY = "S3RVER"


def install(install_dir):
    """Path of the s3rver executable, installing it on first use."""
    out = subprocess.run([os.path.join(HERE, "setup-s3rver.sh"),
                          install_dir], check=True,
                         stdout=subprocess.PIPE, text=True, timeout=600)
    return out.stdout.strip().splitlines()[-1]


class S3rver:
    """One s3rver process on 127.0.0.1 with a free port."""

    def __init__(self, state_dir, name, lenient=False, install_dir=None):
        self.state_dir = os.path.abspath(state_dir)
        self.name = name
        self.lenient = lenient
        self.install_dir = install_dir or os.path.join(
            os.path.dirname(self.state_dir), "s3rver")
        self.data = os.path.join(self.state_dir, name + "-data")
        self.pid_file = os.path.join(self.state_dir, name + ".pid")
        self.endpoint_file = os.path.join(self.state_dir, name + ".endpoint")
        self.log_file = os.path.join(self.state_dir, name + ".log")
        self.proc = None
        self.endpoint = None
        self.port = None

    def start(self, timeout=60):
        exe = install(self.install_dir)
        os.makedirs(self.state_dir, exist_ok=True)
        shutil.rmtree(self.data, ignore_errors=True)
        os.makedirs(self.data)
        cmd = [exe, "-d", self.data, "-a", "127.0.0.1", "-p", "0",
               "--configure-bucket", BUCKET]
        if self.lenient:
            cmd.append("--allow-mismatched-signatures")
        log = open(self.log_file, "w")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(self.log_file) as f:
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                raise RuntimeError("s3rver %s exited with %d; see %s" % (
                    self.name, self.proc.returncode, self.log_file))
            time.sleep(0.1)
        else:
            self.kill()
            raise RuntimeError("s3rver %s did not listen within %d s; "
                               "see %s" % (self.name, timeout,
                                           self.log_file))
        self.endpoint = "http://127.0.0.1:%d" % self.port
        with open(self.endpoint_file, "w") as f:
            f.write(self.endpoint + "\n")
        with open(self.pid_file, "w") as f:
            f.write("%d\n" % self.proc.pid)
        return self

    def kill(self, sig=signal.SIGKILL):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            if sig == signal.SIGKILL:
                self.proc.wait(timeout=10)

    def stop(self):
        self.kill()
        shutil.rmtree(self.data, ignore_errors=True)


def stop_by_pid(state_dir, name):
    pid_file = os.path.join(state_dir, name + ".pid")
    try:
        with open(pid_file) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        print("s3rver %s: no pid file %s; nothing to stop" % (name,
                                                              pid_file))
        return
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            time.sleep(0.1)
            os.kill(pid, 0)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.unlink(pid_file)
    shutil.rmtree(os.path.join(state_dir, name + "-data"), ignore_errors=True)
    print("s3rver %s (pid %d) stopped" % (name, pid))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["start", "stop"])
    ap.add_argument("--state", required=True)
    ap.add_argument("--install")
    ap.add_argument("names", nargs="+")
    args = ap.parse_args()
    for spec in args.names:
        name, _, mode = spec.partition(":")
        if args.action == "start":
            stop_by_pid(args.state, name)  # a leftover from a killed run
            s = S3rver(args.state, name, mode == "lenient",
                       args.install).start()
            print("s3rver %s: %s (pid %d)" % (name, s.endpoint, s.proc.pid))
        else:
            stop_by_pid(args.state, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
