#!/usr/bin/env python3
"""End-to-end test run by the e2e service of docker/docker-compose.yml.

Creates a scope and a 3-segment stream through stratactl, writes keyed
events in batches (one stratactl process each), kills -9 one segment store
container halfway (Docker API over the mounted socket), writes more, waits
until tier 2 (S3) holds data, reads the stream back and checks that every
acknowledged event is there exactly once, that events of one routing key
come in write order, and that the cluster took writes again after the kill.
Then strata-connect from the image: a file imported into a stream, the
sealed stream mirrored into another through the strata connector, and
the http and mqtt connectors loaded (--check-config).
Exit 0 = pass. Every wait is bounded.

Environment: E2E_CONTROLLER (controller URLs), E2E_PROJECT (compose
project), E2E_KILL_SERVICE (service to kill; "leader": the store leading
the containers of most of the stream's segments), E2E_EVENTS (events in all),
E2E_S3_HOST / E2E_S3_PORT / E2E_S3_BUCKET (tier 2, listed unsigned).
The stratactl command lines are in STRATACTL_* below.
"""
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse

CONTROLLER = os.environ.get("E2E_CONTROLLER", "tcp://ctrl1:9090")
PROJECT = os.environ.get("E2E_PROJECT", "strata-e2e")
# "leader": the store leading the containers of most of the stream's
# segments, so the kill forces a Raft leader change under the writers.
KILL_SERVICE = os.environ.get("E2E_KILL_SERVICE", "leader")
STORE_SERVICE = "store{}"  # compose service of a store, by its node id
EVENTS = int(os.environ.get("E2E_EVENTS", "3000"))
S3_HOST = os.environ.get("E2E_S3_HOST", "s3")
S3_PORT = int(os.environ.get("E2E_S3_PORT", "4569"))
S3_BUCKET = os.environ.get("E2E_S3_BUCKET", "strata")
BATCHES = 6
KEYS = 17
SCOPE, STREAM = "e2e", "events"

# stratactl usage this test relies on (docs/stratactl.md). --timeout bounds
# every command, retries included; --quiet keeps stderr for errors only.
STRATACTL = ["stratactl", "--controller", CONTROLLER, "--quiet",
             "--timeout", "60s"]
# Exit 0 once a controller leader exists, a store lives and every
# container has a replica and a leader.
STRATACTL_STATUS = STRATACTL + ["cluster", "status"]
# --if-not-exists: a retried create whose first try timed out succeeds.
STRATACTL_SCOPE = STRATACTL + ["scope", "create", SCOPE, "--if-not-exists"]
STRATACTL_STREAM = STRATACTL + ["stream", "create", f"{SCOPE}/{STREAM}",
                                "--segments", "3", "--if-not-exists"]
# One event per stdin line, "routing-key<TAB>payload" ('\t' is decoded);
# exit 0 once every event is acknowledged (Raft-committed).
STRATACTL_WRITE = STRATACTL + ["write", f"{SCOPE}/{STREAM}",
                               "--key-separator", "\\t"]
# Every event from the head to the tail, one payload per line.
STRATACTL_READ = STRATACTL + ["read", f"{SCOPE}/{STREAM}", "--from", "head",
                              "--to", "tail"]
STRATACTL_DESCRIBE = STRATACTL + ["stream", "describe", f"{SCOPE}/{STREAM}"]


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


def s3_keys():
    """Object keys in the tier-2 bucket (s3rver answers unsigned requests)."""
    c = http.client.HTTPConnection(S3_HOST, S3_PORT, timeout=10)
    try:
        c.request("GET", f"/{S3_BUCKET}?list-type=2&max-keys=1000")
        r = c.getresponse()
        body = r.read().decode("utf-8", "replace")
    finally:
        c.close()
    if r.status != 200:
        raise SystemExit(f"e2e: listing s3://{S3_BUCKET} on "
                         f"{S3_HOST}:{S3_PORT}: HTTP {r.status} {body[:200]}")
    return re.findall(r"<Key>([^<]*)</Key>", body)


def wait_tier2(seconds=60):
    """Wait until the stores flushed something to S3 (flush.age is 5 s)."""
    deadline = time.monotonic() + seconds
    while True:
        keys = s3_keys()
        if keys:
            log(f"tier 2: {len(keys)} objects in s3://{S3_BUCKET}, e.g. "
                f"{keys[0]}")
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"e2e: nothing was flushed to s3://{S3_BUCKET} "
                             f"within {seconds}s; see the store logs")
        time.sleep(2)


def pick_victim():
    """The compose service of the store leading most of our segments."""
    if KILL_SERVICE != "leader":
        return KILL_SERVICE
    rc, out, err = run(STRATACTL_DESCRIBE + ["--json"], timeout=90)
    if rc != 0:
        raise SystemExit(f"e2e: stream describe failed: {err.strip()}")
    segs = json.loads(out)["segments"]
    _, out, err = run(STRATACTL_STATUS + ["--json"], timeout=90)
    try:
        leaders = {c["id"]: c["leader"]
                   for c in json.loads(out)["containers"]}
    except (ValueError, KeyError):
        raise SystemExit(f"e2e: cluster status --json: {err.strip()}")
    count = {}
    for seg in segs:
        lead = leaders.get(seg["container"], 0)
        if lead:
            count[lead] = count.get(lead, 0) + 1
    if not count:
        raise SystemExit(f"e2e: no leader known for the containers of "
                         f"{SCOPE}/{STREAM}: {leaders}")
    store = max(count, key=count.get)
    log(f"store {store} leads the containers of {count[store]} of "
        f"{len(segs)} segments (container leaders: {leaders})")
    return STORE_SERVICE.format(store)


def write_batch(b, ids):
    """Write one batch with one stratactl process; True when acknowledged."""
    lines = "".join(f"key-{i % KEYS}\t{e}\n" for i, e in enumerate(ids))
    t = time.monotonic()
    # Odd batches load the zstd codec plugin from the image's install
    # directory (/usr/lib/strata/plugins); events it cannot shrink stay
    # plain, so the read-back is unchanged.
    cmd = STRATACTL_WRITE + (["--codec", "zstd"] if b % 2 else [])
    rc, _, err = run(cmd, stdin=lines, timeout=120)
    if rc == 0:
        log(f"batch {b}: {len(ids)} events acknowledged in "
            f"{time.monotonic() - t:.1f}s")
        return True
    log(f"batch {b}: write failed with exit {rc} ({err.strip()}); "
        "not counted")
    return False


def check_order(events):
    """Events of one routing key must come back in the order written."""
    last = {}
    bad = []
    for ev in events:
        try:
            _, b, i = ev.split("-")
            b, i = int(b), int(i)
        except ValueError:
            continue  # reported as unknown by the caller
        key = i % KEYS
        if key in last and last[key] >= (b, i):
            bad.append(f"{ev} after ev-{last[key][0]}-{last[key][1]}")
        last[key] = (b, i)
    return bad


def connect_check():
    """strata-connect in the image: a file imported into a stream, the
    sealed stream mirrored into another through the strata connector
    (libstrata.so and the plugins in place), the http and mqtt connectors
    loaded; [] or the problems."""
    lines = "".join(f"line {i}\n" for i in range(2000))
    with open("/tmp/connect-in.txt", "w") as f:
        f.write(lines)
    base = ["strata-connect", f"--controller={CONTROLLER}",
            "--checkpoint.interval=200ms"]
    for stream in ("connect-src", "connect-mirror"):
        retry(f"create {stream}", STRATACTL + [
            "stream", "create", f"{SCOPE}/{stream}", "--if-not-exists"], 60)
    steps = [
        ("import", base + ["--mode=import", f"--stream={SCOPE}/connect-src",
                           "--connector.plugin=file",
                           "--connector.options.path=/tmp/connect-in.txt",
                           "--checkpoint.file=/tmp/connect-import.ckpt"]),
        ("seal", STRATACTL + ["stream", "seal", f"{SCOPE}/connect-src"]),
        ("mirror", base + ["--mode=export", f"--stream={SCOPE}/connect-src",
                           "--connector.plugin=strata",
                           f"--connector.options.controller={CONTROLLER}",
                           f"--connector.options.stream={SCOPE}/connect-mirror",
                           "--checkpoint.file=/tmp/connect-export.ckpt"]),
    ]
    # The network connectors load in the image (their libraries are in
    # the runtime stage) and accept their options; nothing is contacted.
    check = base + ["--mode=import", f"--stream={SCOPE}/connect-src",
                    "--checkpoint.file=/tmp/connect-check.ckpt",
                    "--check-config"]
    steps += [
        ("check http", check + [
            "--connector.plugin=http",
            "--connector.options.url=http://127.0.0.1:1/doc"]),
        ("check mqtt", check + [
            "--connector.plugin=mqtt", "--guarantee=at-least-once",
            "--connector.options.topic=sensors/#",
            "--connector.options.client_id=e2e"]),
    ]
    for what, cmd in steps:
        rc, _, err = run(cmd, timeout=180)
        if rc != 0:
            return [f"strata-connect {what}: exit {rc}: {err.strip()[-500:]}"]
    rc, out, err = run(STRATACTL + ["read", f"{SCOPE}/connect-mirror",
                                    "--to", "tail"])
    if rc != 0 or out != lines:
        return [f"mirror stream: exit {rc}, {out.count(chr(10))} of 2000 "
                f"lines: {err.strip()[-300:]}"]
    log("strata-connect: file -> stream -> mirror stream, 2000 lines once; "
        "http and mqtt connectors load")
    return []


def main():
    t0 = time.monotonic()
    log(f"waiting for a healthy cluster ({CONTROLLER})")
    retry("cluster status", STRATACTL_STATUS, 180)
    retry("create scope", STRATACTL_SCOPE, 60)
    retry("create stream", STRATACTL_STREAM, 60)
    log(f"created stream {SCOPE}/{STREAM} with 3 segments")

    acked, unacked = set(), set()
    per_batch = EVENTS // BATCHES
    killed_at = BATCHES // 2
    ok = []
    victim = None
    for b in range(BATCHES):
        if b == killed_at:
            victim = pick_victim()
            kill_service(victim)
        ids = [f"ev-{b}-{i}" for i in range(per_batch)]
        if write_batch(b, ids):
            acked.update(ids)
            ok.append(True)
        else:
            # A failed batch may be partly written: those events may appear
            # (at most once), but are not required.
            unacked.update(ids)
            ok.append(False)
    problems = []
    if not all(ok[:killed_at]):
        problems.append("a write failed before any store was killed")
    if not ok[-1]:
        problems.append(f"the last write failed: the cluster does not take "
                        f"writes with {victim} dead")
    t = time.monotonic()
    status = retry(f"cluster status with {victim} dead", STRATACTL_STATUS,
                   120)
    log(f"cluster healthy again without {victim} "
        f"({time.monotonic() - t:.0f}s after the last write)")
    # Healthy, yet with less redundancy: once the dead store's lease
    # ran out (store.lease), the status line says so.
    deadline = time.monotonic() + 60
    while ("1 of 3 segment stores down" not in status
           and time.monotonic() < deadline):
        time.sleep(2)
        status = retry(f"cluster status with {victim} dead",
                       STRATACTL_STATUS, 60)
    if "1 of 3 segment stores down" not in status:
        problems.append(f"cluster status with {victim} dead does not say "
                        f"a store is down: {status.strip()[-300:]}")
    else:
        log("cluster status: " + status.strip().splitlines()[-1])

    wait_tier2()
    out = retry("read", STRATACTL_READ, 120)
    events = out.splitlines()
    seen = {}
    for ev in events:
        seen[ev] = seen.get(ev, 0) + 1
    lost = sorted(acked - seen.keys())
    dup = sorted(e for e, n in seen.items() if n > 1)
    alien = sorted(seen.keys() - acked - unacked)
    disorder = check_order(events)
    log(f"acknowledged {len(acked)} of {BATCHES * per_batch}, read "
        f"{len(events)}, lost {len(lost)}, duplicated {len(dup)}, unknown "
        f"{len(alien)}, out of order {len(disorder)}")
    for name, xs in (("lost", lost), ("duplicated", dup),
                     ("unknown", alien), ("out of order", disorder)):
        if xs:
            problems.append(f"{len(xs)} {name}: {xs[:10]}")
    rc, out, _ = run(STRATACTL_DESCRIBE, timeout=90)
    if rc == 0:
        print(out, end="", flush=True)
    problems += connect_check()
    if problems:
        for p in problems:
            log("FAIL: " + p)
        return 1
    log(f"PASS in {time.monotonic() - t0:.0f}s: every acknowledged event "
        f"read back once and in key order after kill -9 of {victim}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
