#!/usr/bin/env python3
"""Segment store integration scenarios: real strata-segmentstore processes
on 127.0.0.1, driven with ss_tool; kill -9 where the scenario says.

  restart       standalone store; data older than the flush threshold is
                in tier 2 as chunks; kill -9 mid-stream, restart: every
                acknowledged event is there exactly once, in order; the
                restarted owner starts chunks of a new generation (never
                an old chunk name); SIGTERM + restart keeps everything
                too; tier-2, Raft and append metrics are exported.
  tier2_outage  tier 2 (faulty plugin, fail_file) fails while writing:
                ingest continues, then back-pressure (EAGAIN), no ack lost,
                flushing resumes when tier 2 is back.
  bad_input     malformed/oversize messages, unknown segments, appends to
                sealed segments each get a clear error while another
                writer carries on.
  connections   limits.connections=3 and 3 idle connections: a 4th client
                waits (the store logs why) and is served, every event
                acknowledged, once one of them closes.
  damaged_log   a byte of a closed Raft log segment flipped while the
                store is down: it refuses to start naming the file and
                changes nothing; with the byte back every event is there.
  diskfull      (needs --faultyio) a standalone store's disk fills up under
                a writer: its one container leaves its group, the store
                restarts it (containers.recover_after) and it fails again
                while the disk is full; with space again the next restart
                holds, without a process restart, and the writer ends with
                every acknowledged event stored once.
  cluster       3 stores + 1 controller; writers append with known event
                numbers; kill -9 the leader of a container mid-stream; the
                reader sees every acknowledged event exactly once and in
                order, and the new owner keeps serving.

Usage: ss_test.py SCENARIO --store PATH --tool PATH --plugin-dir DIR
                  [--controller PATH]
Exit 0 on success, 1 with a reason on failure.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from ports import free_ports  # noqa: E402


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class Failure(Exception):
    pass


def health_status(body):
    """The "status" field of a /health/ready JSON body ("" if unparsable)."""
    try:
        return json.loads(body).get("status", "")
    except ValueError:
        return ""


def check(cond, msg):
    if not cond:
        raise Failure(msg)


class Store:
    """One strata-segmentstore process with fixed ports."""

    def __init__(self, args, base, node_id, extra=None, ports=None):
        self.args, self.node_id = args, node_id
        self.dir = os.path.join(base, "store%d" % node_id)
        os.makedirs(self.dir, exist_ok=True)
        self.ports = ports or free_ports(3)
        self.url = "tcp://127.0.0.1:%d" % self.ports[0]
        self.http = "http://127.0.0.1:%d" % self.ports[2]
        self.extra = list(extra or [])
        self.proc = None
        self.ready_line = None
        self.env = {}
        self.started = False
        self.fixed_ports = ports is not None

    def start(self, timeout=30):
        # Ports are picked when the Store is made and used when it first
        # starts, perhaps seconds later: another test may have bound one
        # meanwhile. A first start that fails to bind picks new ones (a
        # restart keeps its ports: the Raft address is recorded).
        for attempt in range(3):
            try:
                self.try_start(timeout)
                self.started = True
                return
            except Failure:
                if (self.started or self.fixed_ports or attempt == 2 or
                        not self._bind_failed()):
                    raise
                log("store %d: a port was taken meanwhile; new ports"
                    % self.node_id)
                self.ports = free_ports(3)
                self.url = "tcp://127.0.0.1:%d" % self.ports[0]
                self.http = "http://127.0.0.1:%d" % self.ports[2]

    def _bind_failed(self):
        text = "".join(self.output)
        try:
            with open(os.path.join(self.dir, "store.log"),
                      errors="replace") as f:
                text += f.read()
        except OSError:
            pass
        return "in use" in text.lower() or "eaddrinuse" in text.lower()

    def try_start(self, timeout):
        cmd = [self.args.store,
               "--node.id=%d" % self.node_id,
               "--data-dir=%s" % os.path.join(self.dir, "data"),
               "--listen=%s" % self.url,
               "--raft.listen=127.0.0.1:%d" % self.ports[1],
               "--http.listen=%s" % self.http,
               "--raft.election-timeout=1s",
               "--log.file=%s" % os.path.join(self.dir, "store.log"),
               ] + self.extra
        env = dict(os.environ, STRATA_PLUGIN_DIR=self.args.plugin_dir,
                   **self.env)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=env,
                                     text=True)
        deadline = time.time() + timeout
        self.output = []
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if line.startswith("strata-segmentstore ready"):
                self.ready_line = line.strip()
                threading.Thread(target=self._drain, daemon=True).start()
                log("store %d up (pid %d)" % (self.node_id, self.proc.pid))
                return
        raise Failure("store %d did not start: %s; see %s" % (
            self.node_id, self.proc.poll(),
            os.path.join(self.dir, "store.log")))

    def _drain(self):
        for _ in self.proc.stdout:
            pass

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            log("store %d killed -9" % self.node_id)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()
                raise Failure("store %d did not stop on SIGTERM"
                              % self.node_id)
            check(rc == 0, "store %d exited %d on SIGTERM (see %s)" % (
                self.node_id, rc, os.path.join(self.dir, "store.log")))

    def get(self, path):
        try:
            with urllib.request.urlopen(self.http + path, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metric(self, name):
        _, text = self.get("/metrics")
        total = 0.0
        found = False
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
                found = True
        return total if found else None

    def wait_ready(self, timeout=30, allow_degraded=False):
        deadline = time.time() + timeout
        body = ""
        while time.time() < deadline:
            code, body = self.get("/health/ready")
            if code == 200 and ('"ready"' in body or allow_degraded):
                return
            time.sleep(0.1)
        raise Failure("store %d not ready: %s" % (self.node_id, body))


def ready_store(args, base, extra):
    """Store 1 with the extra flags, started and ready."""
    st = Store(args, base, 1, extra)
    st.start()
    st.wait_ready()
    return st


def tool(args, cmd, urls, segments, *opts, timeout=120):
    argv = [args.tool, cmd, "--url", ",".join(urls), "--segment",
            ",".join(segments)] + [str(o) for o in opts]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def tool_bg(args, cmd, urls, segments, *opts):
    argv = [args.tool, cmd, "--url", ",".join(urls), "--segment",
            ",".join(segments)] + [str(o) for o in opts]
    return subprocess.Popen(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def parse_acks(out):
    """writer -> last acknowledged event, from ss_tool append output."""
    acks = {}
    for line in out.splitlines():
        if line.startswith("acked "):
            kv = dict(p.split("=", 1) for p in line.split()[1:])
            acks[int(kv["writer"])] = (kv["segment"], int(kv["last"]),
                                       kv)
    return acks


def verify(args, urls, segments, acks):
    for seg in segments:
        exp = ",".join("%d:%d" % (w, a[1]) for w, a in sorted(acks.items())
                       if a[0] == seg)
        rc, out, err = tool(args, "verify", urls, [seg], "--expect", exp)
        sys.stdout.write(out)
        check(rc == 0, "verify %s failed: %s %s" % (seg, out, err))


def segment_info(args, urls, seg):
    rc, out, err = tool(args, "info", urls, [seg])
    check(rc == 0, "info %s: %s %s" % (seg, out, err))
    line = [l for l in out.splitlines() if l.startswith("info ")][0]
    return {k: int(v) if v.isdigit() else v for k, v in
            (p.split("=", 1) for p in line.split()[1:])}


def wait_flushed(args, urls, seg, timeout=20):
    deadline = time.time() + timeout
    info = None
    while time.time() < deadline:
        info = segment_info(args, urls, seg)
        if info["flushed"] == info["length"] and info["length"] > 0:
            return info
        time.sleep(0.2)
    raise Failure("%s not flushed to tier 2 in %ds: %s" % (seg, timeout,
                                                           info))


def dir_bytes(path):
    total, files = 0, 0
    for root, _, names in os.walk(path):
        for n in names:
            total += os.path.getsize(os.path.join(root, n))
            files += 1
    return total, files


CHUNK_RE = None


def chunk_gens(tier2):
    """container -> {chunk name: owner generation} of the tier-2 directory
    (local plugin: one file per chunk at <root>/<name>)."""
    import re
    global CHUNK_RE
    if CHUNK_RE is None:
        CHUNK_RE = re.compile(r"^c(\d+)/s(\d+)/t(\d+)-g(\d+)-o(\d+)-(\d+)$")
    out = {}
    for root, _, names in os.walk(tier2):
        for n in names:
            name = os.path.relpath(os.path.join(root, n), tier2)
            m = CHUNK_RE.match(name)
            check(m is not None, "unexpected chunk name %r in tier 2" % name)
            out.setdefault(int(m.group(1)), {})[name] = int(m.group(4))
    return out


def check_new_generation(before, after, what):
    """Chunks that appeared since `before` belong to a newer owner
    generation than every chunk of `before`, per container."""
    for ct, names in after.items():
        old = before.get(ct, {})
        top = max(old.values()) if old else 0
        for name, gen in names.items():
            if name not in old:
                check(gen > top, "%s: new chunk %s has generation %d, not "
                      "above the previous owner's %d" % (what, name, gen,
                                                         top))


# --------------------------------------------------------------- scenarios

def scenario_restart(args, base):
    tier2 = os.path.join(base, "tier2")
    st = Store(args, base, 1, ["--flush.age=500ms", "--flush.bytes=256KiB",
                               "--tier2.options.root=%s" % tier2,
                               "--tier2.options.fsync=false"])
    st.start()
    st.wait_ready()
    segs = ["sc/st/0.#epoch.0", "sc/st/1.#epoch.0", "sc/st/2.#epoch.0"]
    rc, out, err = tool(args, "append", [st.url], segs, "--create",
                        "--writers", 3, "--events", 3000, "--batch", 20,
                        "--event-size", 200)
    check(rc == 0, "phase 1 append: %s %s" % (out, err))
    acks = parse_acks(out)
    # Data older than the flush threshold is in tier 2, as chunks.
    for seg in segs:
        info = wait_flushed(args, [st.url], seg)
        log("flushed %s" % info)
    nbytes, nfiles = dir_bytes(tier2)
    phase1 = sum(segment_info(args, [st.url], s)["length"] for s in segs)
    check(nfiles >= len(segs) and nbytes >= phase1,
          "tier-2 directory holds %d bytes in %d chunks, expected >= %d "
          "bytes" % (nbytes, nfiles, phase1))
    log("tier 2: %d chunk files, %d bytes (>= %d appended)" % (
        nfiles, nbytes, phase1))
    # Metrics: tier 2, Raft and appends, per container.
    for name in ("strata_segmentstore_tier2_writes_total",
                 "strata_segmentstore_tier2_written_bytes_total",
                 "strata_segmentstore_tier2_write_seconds_count",
                 "strata_segmentstore_container_appends_total",
                 "strata_segmentstore_container_append_seconds_count",
                 "strata_raft_term", "strata_raft_applied_index"):
        v = st.metric(name)
        check(v is not None and v > 0, "metric %s missing or 0: %s" % (
            name, v))
    written = st.metric("strata_segmentstore_tier2_written_bytes_total")
    check(written >= phase1, "tier-2 written bytes %d < %d appended" % (
        written, phase1))
    # Phase 2: writers mid-stream when the store is killed -9. Paced (400
    # blocks/s each: 5 s of writing) so that they are still writing at the
    # kill however fast the store is.
    w = tool_bg(args, "append", [st.url], segs, "--writers", 6,
                "--writer0", 10, "--events", 20000, "--batch", 10,
                "--window", 8, "--event-size", 200, "--rate", 400,
                "--deadline-s", 90)
    time.sleep(1.0)
    gens2 = chunk_gens(tier2)
    st.kill9()
    time.sleep(1.0)
    st.start()
    out, err = w.communicate(timeout=120)
    check(w.returncode == 0, "phase 2 writers: %s %s" % (out, err))
    acks.update(parse_acks(out))
    resyncs = sum(int(a[2]["resyncs"]) for a in acks.values())
    log("phase 2 done; writer resyncs after the kill: %d" % resyncs)
    check(resyncs > 0, "the kill did not interrupt the writers")
    verify(args, [st.url], segs, acks)
    for seg in segs:
        wait_flushed(args, [st.url], seg)
    gens3 = chunk_gens(tier2)
    check_new_generation(gens2, gens3, "after kill -9")
    log("chunk generations before/after kill -9: %s -> %s" % (
        {c: max(g.values()) for c, g in gens2.items()},
        {c: max(g.values()) for c, g in gens3.items()}))
    # SIGTERM, restart: still all there, and appends continue.
    st.stop()
    st.start()
    verify(args, [st.url], segs, acks)
    rc, out, err = tool(args, "append", [st.url], segs, "--writers", 3,
                        "--writer0", 30, "--events", 2000, "--batch", 20,
                        "--event-size", 200)
    check(rc == 0, "append after SIGTERM restart: %s %s" % (out, err))
    acks.update(parse_acks(out))
    for seg in segs:
        wait_flushed(args, [st.url], seg)
    check_new_generation(gens3, chunk_gens(tier2), "after SIGTERM")
    verify(args, [st.url], segs, acks)
    # A crash in the middle of a tier-2 write leaves a torn tail after the
    # chunk's last record (as a kill -9 above may have). Every flushed
    # byte before it must still read back: the store cuts the tail off.
    st.stop()
    torn = []
    for ct, names in sorted(chunk_gens(tier2).items()):
        newest = max(sorted(names), key=lambda n: names[n])
        with open(os.path.join(tier2, newest), "ab") as f:
            f.write(b"\x07torn")  # shorter than a record header
        torn.append(newest)
    log("tore the tails of %s" % ", ".join(torn))
    st.start()
    verify(args, [st.url], segs, acks)
    with open(os.path.join(st.dir, "store.log")) as f:
        cut = f.read().count("had a torn tail")
    check(cut >= 1, "no torn tail was cut (expected up to %d)" % len(torn))
    log("torn tails cut by the store: %d" % cut)
    # Damage below what was flushed is not a torn write: the store must
    # not cut it off (that drops acknowledged records), nor call it
    # transient. It answers that the chunk is damaged, changes nothing,
    # and once the chunk is restored every event reads back.
    st.stop()
    names = chunk_gens(tier2)[min(chunk_gens(tier2))]
    victim = os.path.join(tier2, max(sorted(names), key=lambda n: names[n]))
    with open(victim, "rb") as f:
        saved = f.read()
    heads, pos = [], 0
    while pos + 36 <= len(saved):
        heads.append(pos)
        pos += 36 + struct.unpack_from("<I", saved, pos + 4)[0]
    check(pos == len(saved) and heads, "%s: records do not tile the file"
          % victim)
    with open(victim, "r+b") as f:  # the magic of its last record
        f.seek(heads[-1])
        f.write(b"XXXX")
    log("damaged record %d of %d of %s (flushed)"
        % (len(heads), len(heads), victim))
    st.start()
    damaged = 0
    for seg in segs:
        rc, out, err = tool(args, "verify", [st.url], [seg], "--expect",
                            ",".join("%d:%d" % (w, a[1]) for w, a in
                                     sorted(acks.items()) if a[0] == seg))
        if rc != 0:
            check("is damaged" in out + err and
                  "restore the chunk" in out + err,
                  "a damaged chunk: %s %s" % (out, err))
            damaged += 1
    check(damaged >= 1, "no read failed on the damaged chunk")
    check(os.path.getsize(victim) == len(saved),
          "the store cut a chunk below its flushed bytes: %d -> %d bytes"
          % (len(saved), os.path.getsize(victim)))
    st.stop()
    with open(victim, "wb") as f:
        f.write(saved)
    st.start()
    verify(args, [st.url], segs, acks)
    log("damaged chunk refused, not cut; restored, all events read back")
    st.stop()


def scenario_tier2_outage(args, base):
    fail = os.path.join(base, "tier2_down")
    tier2 = os.path.join(base, "tier2")
    st = Store(args, base, 1, [
        "--containers.count=1",
        "--tier2.plugin=faulty",
        "--tier2.options.parent_plugin=local",
        "--tier2.options.parent.root=%s" % tier2,
        "--tier2.options.parent.fsync=false",
        "--tier2.options.fail_file=%s" % fail,
        "--limits.unflushed_budget=2MiB",
        "--flush.age=200ms", "--flush.bytes=128KiB"])
    st.start()
    st.wait_ready()
    seg = "sc/st/0.#epoch.0"
    rc, out, err = tool(args, "append", [st.url], [seg], "--create",
                        "--writers", 2, "--events", 1000,
                        "--event-size", 200)
    check(rc == 0, "warm-up append: %s %s" % (out, err))
    acks = parse_acks(out)
    wait_flushed(args, [st.url], seg)
    # Tier 2 goes down.
    open(fail, "w").close()
    log("tier 2 failing (fail_file created)")
    # Ingest continues while the unflushed budget has room.
    rc, out, err = tool(args, "append", [st.url], [seg], "--writers", 2,
                        "--writer0", 10, "--events", 1000,
                        "--event-size", 200, "--deadline-s", 30)
    check(rc == 0, "append during the outage: %s %s" % (out, err))
    a = parse_acks(out)
    check(all(int(v[2]["backpressure"]) == 0 for v in a.values()),
          "back-pressure before the budget was used: %s" % out)
    acks.update(a)
    info = segment_info(args, [st.url], seg)
    check(info["flushed"] < info["length"],
          "tier 2 is failing but everything was flushed: %s" % info)
    # Health says degraded once a flush failed.
    deadline = time.time() + 15
    body = ""
    while time.time() < deadline:
        code, body = st.get("/health/ready")
        if code == 200 and health_status(body) == "degraded":
            break
        time.sleep(0.2)
    check(health_status(body) == "degraded",
          "/health/ready not degraded: %s" % body)
    log("health: %s" % body)
    # More than the budget: back-pressure.
    w = tool_bg(args, "append", [st.url], [seg], "--writers", 2,
                "--writer0", 20, "--events", 8000, "--event-size", 500,
                "--batch", 20, "--deadline-s", 90)
    deadline = time.time() + 30
    bp = 0
    while time.time() < deadline:
        bp = st.metric("strata_segmentstore_backpressure_total") or 0
        if bp > 0:
            break
        time.sleep(0.2)
    check(bp > 0, "no back-pressure while tier 2 was down")
    unflushed = st.metric("strata_segmentstore_unflushed_bytes")
    log("back-pressure seen (%d refusals), unflushed %d bytes" % (
        bp, unflushed))
    check(unflushed <= 3 * 1024 * 1024,
          "unflushed bytes %d exceed the 2 MiB budget" % unflushed)
    time.sleep(1.0)
    os.unlink(fail)
    log("tier 2 back (fail_file removed)")
    out, err = w.communicate(timeout=120)
    check(w.returncode == 0, "writers after the outage: %s %s" % (out,
                                                                   err))
    a = parse_acks(out)
    check(sum(int(v[2]["backpressure"]) for v in a.values()) > 0,
          "writers saw no back-pressure: %s" % out)
    acks.update(a)
    wait_flushed(args, [st.url], seg, timeout=30)
    st.wait_ready(timeout=15)
    verify(args, [st.url], [seg], acks)
    st.stop()


def scenario_bad_input(args, base):
    st = ready_store(args, base, ["--limits.max_append=64KiB",
                                  "--limits.max_event=60KiB",
                                  "--limits.max_message=256KiB",
                                  "--tier2.options.fsync=false"])
    good, sealed, other = ("sc/st/0.#epoch.0", "sc/st/1.#epoch.0",
                           "sc/st/2.#epoch.0")
    rc, out, err = tool(args, "append", [st.url], [sealed], "--create",
                        "--events", 10)
    check(rc == 0, out + err)
    rc, out, err = tool(args, "seal", [st.url], [sealed])
    check(rc == 0 and "sealed=1" in out, out + err)
    rc, out, err = tool(args, "create", [st.url], [good, other])
    check(rc == 0, out + err)
    # Another client keeps writing throughout.
    w = tool_bg(args, "append", [st.url], [other], "--writers", 2,
                "--writer0", 50, "--events", 3000, "--rate", 100,
                "--batch", 5)
    rc, out, err = tool(args, "bad", [st.url], [good, sealed],
                        "--event-size", 100000)
    sys.stdout.write(out)
    check(rc == 0, "bad input: %s %s" % (out, err))
    rc, out, err = tool(args, "oversize", [st.url], [good],
                        "--event-size", 1000000)
    sys.stdout.write(out)
    check(rc == 0, "oversize message: %s %s" % (out, err))
    out, err = w.communicate(timeout=120)
    check(w.returncode == 0, "the other writer failed: %s %s" % (out, err))
    acks = parse_acks(out)
    check(all(int(a[2]["failures"]) == 0 for a in acks.values()),
          "the other writer saw failures: %s" % out)
    verify(args, [st.url], [other], acks)
    bad = st.metric("strata_segmentstore_bad_requests_total")
    log("bad requests counted: %s" % bad)
    check(bad and bad >= 4, "bad requests not counted: %s" % bad)
    # A second store on the same data directory refuses to start.
    ports = free_ports(3)
    p = subprocess.run(
        [args.store, "--node.id=2",
         "--data-dir=%s" % os.path.join(st.dir, "data"),
         "--listen=tcp://127.0.0.1:%d" % ports[0],
         "--raft.listen=127.0.0.1:%d" % ports[1],
         "--http.listen=http://127.0.0.1:%d" % ports[2]],
        capture_output=True, text=True, timeout=30,
        env=dict(os.environ, STRATA_PLUGIN_DIR=args.plugin_dir))
    check(p.returncode == 1 and "is in use by another process (pid %d)"
          % st.proc.pid in p.stderr,
          "a second store on one data dir: exit %d %s"
          % (p.returncode, p.stderr))
    st.stop()


SP_GREETING = b"\x00SP\x00\x00\x31\x00\x00"  # SP header, protocol rep0


def scenario_diskfull(args, base):
    if not args.faultyio:
        raise Failure("diskfull needs --faultyio FILE (faultyio.so)")
    data = os.path.join(base, "store1", "data")
    arm = os.path.join(base, "disk-full")
    st = Store(args, base, 1, ["--containers.count=1",
                               "--containers.recover-after=2s",
                               # Small log segments: new ones are needed
                               # all the time (their floor is 2 x the
                               # largest entry).
                               "--limits.max_append=64KiB",
                               "--limits.max_event=60KiB",
                               "--limits.max_message=128KiB",
                               "--limits.batch_bytes=64KiB",
                               "--raft.segment_bytes=1MiB",
                               "--tier2.options.fsync=false"])
    asan = os.environ.get("ASAN_OPTIONS", "")
    st.env = {"LD_PRELOAD": args.faultyio, "FAULTYIO_PATH": data + "/",
              "FAULTYIO_ARM": arm, "FAULTYIO_MODE": "full",
              "ASAN_OPTIONS": (asan + ":" if asan else "")
              + "verify_asan_link_order=0"}
    st.start()
    st.wait_ready()
    seg = "sc/st/0.#epoch.0"
    log_path = os.path.join(st.dir, "store.log")
    w = tool_bg(args, "append", [st.url], [seg], "--create", "--events",
                40000, "--rate", 2000, "--batch", 10, "--deadline-s", 90)
    time.sleep(1.5)
    open(arm, "w").close()
    log("disk full")

    def log_has(text, n=1, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            with open(log_path, errors="replace") as f:
                if f.read().count(text) >= n:
                    return True
            time.sleep(0.2)
        return False
    check(log_has("not enough space"), "the store never ran out of space")
    # Restarted once while still full: it fails again (to start, or at
    # its first new log segment), and the next try waits longer.
    check(log_has("restarting its replica after a Raft log failure"),
          "the failed replica was not restarted")
    check(log_has("replica did not start again") or
          log_has("left the group: a write to its Raft log", 2, 5),
          "the replica restarted on a full disk did not fail again")
    check(log_has("again in 4 s") or log_has("restarting it in 4 s"),
          "no longer wait after that")
    os.remove(arm)
    log("space again")
    check(log_has("starting its replica again") or
          log_has("restarting its replica after a Raft log failure", 2),
          "no restart after the disk got space")
    out, err = w.communicate(timeout=120)
    check(w.returncode == 0, "the writer failed: %s %s" % (out, err))
    acks = parse_acks(out)
    check(acks and all(a[2]["done"] == "1" for a in acks.values()),
          "not every event acknowledged: %s" % out)
    verify(args, [st.url], [seg], acks)
    code, body = st.get("/health/ready")
    check(code == 200 and '"log_failed":0' in body,
          "store not healthy after recovering: %d %s" % (code, body))
    check(st.proc.poll() is None, "the store process exited")
    with open(log_path, errors="replace") as f:
        text = f.read()
    log("recovered in-process after %d restart(s)" %
        (text.count("restarting its replica after a Raft log failure") +
         text.count("starting its replica again")))
    st.stop()


def scenario_damaged_log(args, base):
    """A byte of a container's Raft log flipped while the store is down:
    it refuses to start, names the file, changes nothing; with the byte
    back it starts with every acknowledged event."""
    st = ready_store(args, base, ["--containers.count=1",
                                  "--tier2.options.fsync=false"])
    seg = "sc/st/0.#epoch.0"
    rc, out, err = tool(args, "append", [st.url], [seg], "--create",
                        "--events", 2000, "--batch", 20, "--event-size", 200)
    check(rc == 0, "append: %s %s" % (out, err))
    acks = parse_acks(out)
    st.stop()  # SIGTERM: the open log segment is closed
    ldir = os.path.join(st.dir, "data", "container-0")
    closed = [n for n in os.listdir(ldir)
              if re.fullmatch(r"\d+-\d+", n)]
    check(closed, "no closed log segment in %s: %s" % (ldir,
                                                      os.listdir(ldir)))
    name = max(closed, key=lambda n: os.path.getsize(os.path.join(ldir, n)))
    path = os.path.join(ldir, name)
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        orig = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([orig[0] ^ 0x5A]))
    before = sorted(os.listdir(ldir))
    log("flipped a byte of %s" % name)
    try:
        st.start(timeout=20)
        raise Failure("the store started on a damaged Raft log")
    except Failure as e:
        if "started on a damaged" in str(e):
            raise
    rc = st.proc.wait(timeout=20)
    with open(os.path.join(st.dir, "store.log"), errors="replace") as f:
        text = f.read()
    check(rc != 0, "the store exited 0 on a damaged log")
    check("is damaged" in text and name in text,
          "the store's log does not name the damaged file %s" % name)
    check(sorted(os.listdir(ldir)) == before,
          "files changed in %s: %s -> %s" % (ldir, before,
                                             sorted(os.listdir(ldir))))
    log("refused to start (exit %d), naming %s; nothing changed" % (rc, name))
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        f.write(orig)
    st.start()
    st.wait_ready()
    verify(args, [st.url], [seg], acks)
    st.stop()


def scenario_connections(args, base):
    """limits.connections: at the limit a new client waits (the store says
    why in its log) and is served once a connection closes; the store
    keeps serving the connections it has meanwhile."""
    st = ready_store(args, base, ["--limits.connections=3",
                                  "--tier2.options.fsync=false"])
    seg = "sc/st/0.#epoch.0"
    port = int(st.url.rsplit(":", 1)[1])
    held = []
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        check(s.recv(8) == SP_GREETING, "no SP greeting from the store")
        held.append(s)
    log("3 connections held, the store's limit")
    w = tool_bg(args, "append", [st.url], [seg], "--create", "--events", 20)
    time.sleep(2.0)
    check(w.poll() is None,
          "a 4th client was served past limits.connections=3")
    with open(os.path.join(st.dir, "store.log")) as f:
        text = f.read()
    check("3 connections open, the most this server accepts "
          "(limits.connections)" in text,
          "the store did not log why it stopped accepting")
    # The store still answers on what it accepted: an HTTP probe and the
    # held sockets stay open.
    code, _ = st.get("/health/ready")
    check(code == 200, "store not ready while at its connection limit")
    held.pop().close()
    log("one held connection closed")
    out, err = w.communicate(timeout=60)
    check(w.returncode == 0, "the waiting client failed: %s %s" % (out, err))
    acks = parse_acks(out)
    check(acks and all(int(a[2]["failures"]) == 0 for a in acks.values()),
          "the waiting client saw failures: %s" % out)
    verify(args, [st.url], [seg], acks)
    for s in held:
        s.close()
    st.stop()


class Controller:
    """One strata-controller process."""

    def __init__(self, args, base):
        self.args = args
        self.dir = os.path.join(base, "controller")
        os.makedirs(self.dir, exist_ok=True)
        self.ports = free_ports(3)
        self.url = "tcp://127.0.0.1:%d" % self.ports[0]
        self.proc = None

    def start(self, extra):
        cmd = [self.args.controller,
               "--node.id=1",
               "--data-dir=%s" % os.path.join(self.dir, "data"),
               "--listen=%s" % self.url,
               "--raft.listen=127.0.0.1:%d" % self.ports[1],
               "--http.listen=http://127.0.0.1:%d" % self.ports[2],
               "--log.file=%s" % os.path.join(self.dir, "controller.log"),
               ] + extra
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        time.sleep(1.0)
        check(self.proc.poll() is None,
              "controller exited at start: see %s" % self.dir)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def container_of(name, count):
    """common/segname.c: FNV-1a 64 of the parent name modulo count."""
    parent = name.split("#transaction.")[0]
    h = 14695981039346656037
    for b in parent.encode():
        h ^= b
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h % count


def container_leader(args, stores, container):
    """Node id of the store leading container, or None."""
    for st in stores:
        if st.proc is None or st.proc.poll() is not None:
            continue
        led = st.metric('strata_segmentstore_container_leader{container="%d"}'
                        % container)
        if led == 1:
            return st
    return None


def scenario_cluster(args, base):
    check(args.controller is not None, "--controller is required")
    ctl = Controller(args, base)
    ctl.start(args.controller_arg or [])
    stores = [Store(args, base, i, ["--controller=%s" % ctl.url,
                                    "--cluster.settle=2s",
                                    "--containers.count=4",
                                    "--tier2.options.root=%s" %
                                    os.path.join(base, "tier2"),
                                    "--tier2.options.fsync=false"])
              for i in (1, 2, 3)]
    try:
        for st in stores:
            st.start()
        for st in stores:
            st.wait_ready(timeout=60)
        urls = [st.url for st in stores]
        segs = ["sc/st/%d.#epoch.0" % i for i in range(4)]
        rc, out, err = tool(args, "create", urls, segs)
        check(rc == 0, out + err)
        # Writers with known event numbers, mid-stream when the leader of
        # the first segment's container is killed.
        from_seg = segs[0]
        w = tool_bg(args, "append", urls, segs, "--writers", 8,
                    "--events", 6000, "--batch", 10, "--window", 8,
                    "--rate", 150, "--event-size", 200,
                    "--deadline-s", 100)
        time.sleep(1.5)
        victim = container_leader(args, stores, container_of(segs[0], 4))
        check(victim is not None, "no leader found for %s" % segs[0])
        victim.kill9()
        out, err = w.communicate(timeout=150)
        check(w.returncode == 0, "writers: %s %s" % (out, err))
        acks = parse_acks(out)
        resyncs = sum(int(a[2]["resyncs"]) for a in acks.values())
        log("writers done; resyncs after killing store %d: %d" % (
            victim.node_id, resyncs))
        check(resyncs > 0, "the kill did not interrupt the writers")
        live = [st for st in stores if st is not victim]
        verify(args, [st.url for st in live], segs, acks)
        # The new owner keeps serving: more appends succeed.
        rc, out, err = tool(args, "append", [st.url for st in live], segs,
                            "--writers", 4, "--writer0", 100,
                            "--events", 500)
        check(rc == 0, "appends after failover: %s %s" % (out, err))
        acks.update(parse_acks(out))
        verify(args, [st.url for st in live], segs, acks)
    finally:
        for st in stores:
            st.kill9()
        ctl.stop()


def voters_by_container(stores, count):
    """container -> voters in the configuration its leader follows."""
    out = {}
    for c in range(count):
        st = container_leader(None, stores, c)
        if st is not None:
            v = st.metric('strata_raft_voters{container="%d"}' % c)
            out[c] = int(v) if v is not None else None
    return out


def wait_voters(stores, count, want, timeout=40):
    """Every container led, and its leader's configuration has want
    voters."""
    deadline = time.time() + timeout
    seen = {}
    while time.time() < deadline:
        seen = voters_by_container(stores, count)
        if len(seen) == count and all(v == want for v in seen.values()):
            log("every container has %d voters" % want)
            return
        time.sleep(0.3)
    raise Failure("containers did not reach %d voters in %ds: %s" % (
        want, timeout, seen))


def refused_duplicate(args, base, extra, holder):
    """A second store started with holder's node id (own data, own
    ports) is refused by the controller, says so in its log, and is not
    ready; then it is killed."""
    dup = Store(args, base, holder.node_id, extra)
    dup.dir = os.path.join(base, "dup%d" % holder.node_id)
    os.makedirs(dup.dir, exist_ok=True)
    dup.start()
    logf = os.path.join(dup.dir, "store.log")
    deadline = time.time() + 20
    text = ""
    while time.time() < deadline:
        with open(logf, errors="replace") as f:
            text = f.read()
        if "STRATA_EEXIST" in text:
            break
        time.sleep(0.2)
    try:
        check("held by a live store at %s" % holder.url in text
              and "own node.id" in text,
              "a second store with node id %d was not refused: %s"
              % (holder.node_id, text[-1500:]))
        code, body = dup.get("/health/ready")
        check(code != 200, "the refused store says ready: %s" % body)
        log("a second store %d was refused" % holder.node_id)
    finally:
        dup.kill9()


def scenario_membership(args, base):
    """Raft voters follow the controller's assignment: a store that
    registers after the groups formed is added to them, a dead one is
    removed, a new one takes its place; every acknowledged event stays.
    A second store started under a live store's node id is refused."""
    check(args.controller is not None, "--controller is required")
    count = 4
    ctl = Controller(args, base)
    ctl.start(args.controller_arg or [])
    extra = ["--controller=%s" % ctl.url, "--cluster.settle=1s",
             "--containers.count=%d" % count,
             "--tier2.options.root=%s" % os.path.join(base, "tier2"),
             "--tier2.options.fsync=false"]
    stores = [Store(args, base, i, extra) for i in (1, 2, 3, 4)]
    segs = ["mb/st/%d.#epoch.0" % i for i in range(count)]
    acks = {}

    def live():
        return [st for st in stores
                if st.proc is not None and st.proc.poll() is None]

    def append(writer0, events):
        urls = [st.url for st in live()]
        rc, out, err = tool(args, "append", urls, segs, "--writers", 4,
                            "--writer0", writer0, "--events", events,
                            "--deadline-s", 60)
        check(rc == 0, "appends: %s %s" % (out, err))
        acks.update(parse_acks(out))
        verify(args, urls, segs, acks)

    try:
        for st in stores[:2]:
            st.start()
        for st in stores[:2]:
            st.wait_ready(timeout=60)
        wait_voters(stores, count, 2)
        rc, out, err = tool(args, "create", [st.url for st in live()], segs)
        check(rc == 0, out + err)
        append(0, 400)
        # Another store under store 1's id (a copied config) is refused
        # and takes nothing: the groups keep their voters.
        refused_duplicate(args, base, extra, stores[0])
        wait_voters(stores, count, 2)
        append(5, 400)
        # A third store registers late: the leaders add it.
        stores[2].start()
        stores[2].wait_ready(timeout=60)
        wait_voters(stores, count, 3)
        append(10, 400)
        # Store 1 dies for good: once its lease ends the controller drops
        # it and the leaders remove it; two voters of two keep serving.
        stores[0].kill9()
        wait_voters(stores, count, 2)
        append(20, 400)
        # Store 4 takes its place.
        stores[3].start()
        stores[3].wait_ready(timeout=60)
        wait_voters(stores, count, 3)
        # With three voters again, one more loss keeps a majority: kill the
        # leader of the first container under no load, then write and read.
        victim = container_leader(args, stores, container_of(segs[0], count))
        check(victim is not None, "no leader found for %s" % segs[0])
        victim.kill9()
        append(30, 400)
    finally:
        for st in stores:
            st.kill9()
        ctl.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("scenario", choices=["restart", "tier2_outage",
                                         "bad_input", "connections",
                                         "damaged_log", "diskfull",
                                         "cluster", "membership"])
    ap.add_argument("--store", required=True)
    ap.add_argument("--tool", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--controller")
    ap.add_argument("--faultyio", help="faultyio.so (diskfull)")
    ap.add_argument("--controller-arg", action="append")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory")
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="ss_%s." % args.scenario, dir="/tmp")
    t0 = time.time()
    ok = False
    stores_dir = base
    try:
        globals()["scenario_" + args.scenario](args, base)
        ok = True
    except Failure as e:
        log("FAIL: %s" % e)
    except subprocess.TimeoutExpired as e:
        log("FAIL: timeout: %s" % e)
    finally:
        # Kill anything still running that we started.
        for p in list(_children):
            if p.poll() is None:
                p.kill()
        if ok and not args.keep:
            shutil.rmtree(stores_dir, ignore_errors=True)
        else:
            log("kept %s" % stores_dir)
    log("%s %s in %.1fs" % (args.scenario, "PASSED" if ok else "FAILED",
                            time.time() - t0))
    return 0 if ok else 1


_children = []
_orig_popen = subprocess.Popen


class _TrackedPopen(_orig_popen):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        _children.append(self)


subprocess.Popen = _TrackedPopen

if __name__ == "__main__":
    sys.exit(main())
