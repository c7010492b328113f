#!/usr/bin/env python3
"""End-to-end test run by the e2e service of docker/docker-compose.yml.

Creates a scope and a 3-segment stream through stratactl, writes events in
batches, kills -9 one segment store container (Docker API over the mounted
socket), writes more, reads the stream back and checks that every
acknowledged event is there exactly once. Exit 0 = pass.

Environment: E2E_CONTROLLER (controller URLs), E2E_PROJECT (compose
project), E2E_KILL_SERVICE (service to kill), E2E_EVENTS (events in all).
The stratactl command lines are in STRATACTL_* below.
"""
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse

CONTROLLER = os.environ.get("E2E_CONTROLLER", "tcp://ctrl1:9090")
PROJECT = os.environ.get("E2E_PROJECT", "strata-e2e")
KILL_SERVICE = os.environ.get("E2E_KILL_SERVICE", "store2")
EVENTS = int(os.environ.get("E2E_EVENTS", "3000"))
BATCHES = 6
SCOPE, STREAM = "e2e", "events"

# stratactl usage this test relies on (see `stratactl --help`).
STRATACTL = ["stratactl", "--controller", CONTROLLER]
STRATACTL_STATUS = STRATACTL + ["cluster", "status"]
STRATACTL_SCOPE = STRATACTL + ["scope", "create", SCOPE]
STRATACTL_STREAM = STRATACTL + ["stream", "create", f"{SCOPE}/{STREAM}",
                                "--segments", "3"]
# One event per stdin line, "routing-key<TAB>payload"; exit 0 once every
# event is acknowledged.
STRATACTL_WRITE = STRATACTL + ["write", f"{SCOPE}/{STREAM}",
                               "--key-separator", "\t"]
# Every event from the head to the current tail, one per line.
STRATACTL_READ = STRATACTL + ["read", f"{SCOPE}/{STREAM}", "--from", "head",
                              "--to", "tail"]


def log(msg):
    print(f"e2e: {msg}", flush=True)


def run(cmd, stdin=None, timeout=120):
    p = subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def retry(what, cmd, seconds=120):
    deadline = time.monotonic() + seconds
    while True:
        rc, out, err = run(cmd)
        if rc == 0:
            return out
        if time.monotonic() > deadline:
            raise SystemExit(f"e2e: {what} failed for {seconds}s: {err.strip()}")
        time.sleep(2)


class DockerSocket(http.client.HTTPConnection):
    """HTTP to the Docker API over /var/run/docker.sock."""

    def __init__(self, path="/var/run/docker.sock"):
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def docker(method, url):
    c = DockerSocket()
    c.request(method, url)
    r = c.getresponse()
    body = r.read()
    if r.status >= 300:
        raise SystemExit(f"e2e: docker {method} {url}: {r.status} {body!r}")
    return json.loads(body) if body else None


def kill_service(service):
    flt = json.dumps({"label": [f"com.docker.compose.project={PROJECT}",
                                f"com.docker.compose.service={service}"]})
    found = docker("GET", "/containers/json?filters=" + urllib.parse.quote(flt))
    if not found:
        raise SystemExit(f"e2e: no running container for service {service} "
                         f"in compose project {PROJECT}")
    for c in found:
        log(f"kill -9 {c['Names'][0]}")
        docker("POST", f"/containers/{c['Id']}/kill?signal=KILL")


def main():
    log(f"waiting for the cluster ({CONTROLLER})")
    retry("cluster status", STRATACTL_STATUS)
    retry("create scope", STRATACTL_SCOPE, 60)
    retry("create stream", STRATACTL_STREAM, 60)

    acked, unacked = set(), set()
    per_batch = EVENTS // BATCHES
    for b in range(BATCHES):
        if b == BATCHES // 2:
            kill_service(KILL_SERVICE)
        ids = [f"ev-{b}-{i}" for i in range(per_batch)]
        lines = "".join(f"key-{i % 17}\t{e}\n" for i, e in enumerate(ids))
        rc, _, err = run(STRATACTL_WRITE, stdin=lines, timeout=180)
        if rc == 0:
            acked.update(ids)
            log(f"batch {b}: {len(ids)} events acknowledged")
        else:
            # A failed batch may be partly written: those events may appear
            # at most once, but are not required.
            unacked.update(ids)
            log(f"batch {b}: write failed ({err.strip()}); not counted")
    if len(acked) < EVENTS // 2:
        raise SystemExit(f"e2e: only {len(acked)} of {EVENTS} events were "
                         "acknowledged; the cluster did not survive the kill")

    out = retry("read", STRATACTL_READ, 120)
    seen = {}
    for line in out.splitlines():
        ev = line.split("\t")[-1]
        seen[ev] = seen.get(ev, 0) + 1
    lost = sorted(acked - seen.keys())
    dup = sorted(e for e, n in seen.items() if n > 1)
    alien = sorted(seen.keys() - acked - unacked)
    log(f"acknowledged {len(acked)}, read {sum(seen.values())}, lost "
        f"{len(lost)}, duplicated {len(dup)}, unknown {len(alien)}")
    if lost or dup or alien:
        for name, xs in (("lost", lost), ("duplicated", dup),
                         ("unknown", alien)):
            if xs:
                log(f"{name}: {xs[:10]}")
        return 1
    log("PASS: nothing lost or duplicated after kill -9 of " + KILL_SERVICE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
