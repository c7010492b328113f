#!/usr/bin/env python3
"""Reader groups of libstrata against a real strata-controller and three
strata-segmentstore processes on 127.0.0.1 (the cluster of
client_test.py). Each reader is its own rg_tool process, so kill -9 is
real. Readers print every event with a CLOCK_MONOTONIC timestamp (shared
by all processes of the machine): sorting every reader's events by it
gives the order in which the group handed them out.

Scenarios:
  group       one writer, a group of 3 readers over a 4-segment stream:
              every event read exactly once, in order per routing key;
              every reader gets a share; a reader declared offline;
              delete; bad group names.
  scale       manual scale 1 -> 3 -> 2 segments while writing and
              reading: exactly once, per-key order across predecessors
              and successors.
  checkpoint  a checkpoint taken while 3 readers read, the readers killed
              with SIGKILL, the group reset to the checkpoint: new readers
              resume exactly at the checkpoint's positions (what the old
              readers read before the checkpoint plus what the new ones
              read is every event exactly once).
  watermark   two writers (both counted: each notes time 0 before the
              test goes on) note time while a reader of a 2-segment stream
              asks for its time window after every event: every event read
              after a window has a time >= its lower bound; the lower bound
              never falls, stays at the slower writer's last note while
              both count, and moves to the faster one's once the slower
              writer's mark times out (3 s) though it is still open.
usage: rg_test.py SCENARIO --controller BIN --store BIN --tool BIN
                  --rg-tool BIN --stratactl BIN --plugin-dir DIR
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import client_test  # noqa: E402  (the cluster and client_tool helpers)

SCOPE = "it"
KEYS = 16


def rg(args, cluster, *cmd, check=True, timeout=90):
    full = [args.rg_tool, cluster.ctl_url] + [str(c) for c in cmd]
    r = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    if check and r.returncode != 0:
        raise RuntimeError("rg_tool %s failed (%d)" %
                           (" ".join(map(str, cmd)), r.returncode))
    return r


class Reader:
    """One rg_tool reader process; its output is collected by a thread."""

    def __init__(self, args, cluster, group, name, delay_us=0, limit_s=100):
        self.name = name
        self.stop = os.path.join(cluster.dir, "stop-" + name)
        self.events = []  # (ts, segment id, offset, payload)
        self.cp = {}      # checkpoint name -> events read before it
        self.lines = []
        self.joined = threading.Event()
        self.lock = threading.Lock()
        cmd = [args.rg_tool, cluster.ctl_url, "read", SCOPE, group, name,
               self.stop, delay_us, limit_s]
        self.proc = subprocess.Popen([str(c) for c in cmd],
                                     stdout=subprocess.PIPE, text=True)
        self.thread = threading.Thread(target=self.collect, daemon=True)
        self.thread.start()

    def collect(self):
        for line in self.proc.stdout:
            parts = line.split()
            with self.lock:
                if line.startswith("joined"):
                    self.joined.set()
                elif len(parts) == 5 and parts[0] == "ev":
                    self.events.append((int(parts[1]), int(parts[2]),
                                        int(parts[3]), parts[4]))
                elif len(parts) == 3 and parts[0] == "cp":
                    self.cp[parts[2]] = len(self.events)
                else:
                    self.lines.append(line)

    def count(self):
        with self.lock:
            return len(self.events)

    def finish(self, timeout=30):
        """Ask the reader to leave the group; wait for it."""
        open(self.stop, "w").close()
        self.proc.wait(timeout=timeout)
        self.thread.join(timeout=5)
        sys.stdout.write("reader %s: %d events, %s exit %d\n" %
                         (self.name, len(self.events),
                          "".join(self.lines).strip(),
                          self.proc.returncode))
        if self.proc.returncode != 0:
            raise RuntimeError("reader %s failed (%d)" %
                               (self.name, self.proc.returncode))

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.thread.join(timeout=5)
        sys.stdout.write("reader %s killed (-9) after %d events\n" %
                         (self.name, len(self.events)))


def start_readers(args, cluster, group, names, delay_us=0):
    readers = [Reader(args, cluster, group, n, delay_us) for n in names]
    for r in readers:
        if not r.joined.wait(60):
            raise RuntimeError("reader %s did not join" % r.name)
    return readers


def wait_count(readers, n, deadline_s, what):
    end = time.time() + deadline_s
    while sum(r.count() for r in readers) < n:
        if time.time() > end:
            raise RuntimeError("%s: %d of %d events read in %ds" %
                               (what, sum(r.count() for r in readers), n,
                                deadline_s))
        for r in readers:
            if r.proc.poll() is not None:
                raise RuntimeError("reader %s exited (%d)" %
                                   (r.name, r.proc.returncode))
        time.sleep(0.1)


def write(args, cluster, stream, n, rate):
    full = [args.tool, cluster.ctl_url, "write", SCOPE, stream, n, KEYS,
            rate]
    return subprocess.Popen([str(c) for c in full], stdout=subprocess.PIPE,
                            text=True)


def wait_writer(w, n):
    out, _ = w.communicate(timeout=120)
    sys.stdout.write(out)
    if w.returncode != 0 or "acked=%d failed=0" % n not in out:
        raise RuntimeError("writer failed or lost events")


def parse(payload):
    key, seq, _ = payload.split(":", 2)
    return key, int(seq)


def check_exactly_once(events, n, what):
    """events: (ts, seg, off, payload) of every reader; every one of the
    n events written (KEYS keys, seq 0.. per key) exactly once, and per
    key in increasing seq when sorted by time."""
    seen = {}
    for ts, seg, off, payload in events:
        seen[payload] = seen.get(payload, 0) + 1
    dups = [p for p, c in seen.items() if c > 1]
    if dups:
        raise RuntimeError("%s: %d events read twice, e.g. %s" %
                           (what, len(dups), dups[:3]))
    if len(seen) != n:
        raise RuntimeError("%s: %d distinct events read, %d written" %
                           (what, len(seen), n))
    last = {}
    for ts, seg, off, payload in sorted(events):
        key, seq = parse(payload)
        if seq != last.get(key, -1) + 1:
            raise RuntimeError("%s: key %s: event %d after %d (segment "
                               "%d @%d)" % (what, key, seq,
                                            last.get(key, -1), seg, off))
        last[key] = seq
    print("%s: %d events exactly once, in order for each of %d keys" %
          (what, n, len(last)))


def scenario_group(args, cluster):
    """One writer, 3 readers, 4 segments (issue 6, (a))."""
    n = 4000
    client_test.setup_stream(args, cluster, SCOPE, "rg4", 4)
    rg(args, cluster, "group", SCOPE, "rg4", "g4", 300)
    readers = start_readers(args, cluster, "g4", ["r1", "r2", "r3"])
    w = write(args, cluster, "rg4", n, 800)
    wait_writer(w, n)
    wait_count(readers, n, 60, "group")
    time.sleep(1)  # a late duplicate would show now
    for r in readers:
        r.finish()
    events = [e for r in readers for e in r.events]
    check_exactly_once(events, n, "group")
    for r in readers:
        if not r.events:
            raise RuntimeError("reader %s got no segment" % r.name)
    # A reader declared offline while it runs gets STRATA_ENOENT.
    x = Reader(args, cluster, "g4", "rx")
    if not x.joined.wait(60):
        raise RuntimeError("reader rx did not join")
    rg(args, cluster, "offline", SCOPE, "g4", "rx")
    # A new reader of the same name joins at once (a restarted process):
    # the old one is told by its id, not its name, that it is out (it
    # read on beside the new one, every event twice).
    y = Reader(args, cluster, "g4", "rx")
    if not y.joined.wait(60):
        raise RuntimeError("the new reader rx did not join")
    x.proc.wait(timeout=30)
    x.thread.join(timeout=5)
    if x.proc.returncode == 0:
        raise RuntimeError("reader rx went on after being declared "
                           "offline")
    print("reader rx stopped after being declared offline, beside a new "
          "reader of its name")
    y.finish()
    rg(args, cluster, "delete", SCOPE, "g4")


def scenario_scale(args, cluster):
    """Manual scale 1 -> 3 -> 2 while writing and reading (issue 6,
    (b))."""
    n = 4000
    client_test.setup_stream(args, cluster, SCOPE, "rgs", 1)
    rg(args, cluster, "group", SCOPE, "rgs", "gs", 300)
    readers = start_readers(args, cluster, "gs", ["r1", "r2", "r3"])
    w = write(args, cluster, "rgs", n, 600)
    wait_count(readers, 1000, 60, "scale: before the split")
    rg(args, cluster, "scale", SCOPE, "rgs", "split3")
    wait_count(readers, 2500, 60, "scale: before the merge")
    rg(args, cluster, "scale", SCOPE, "rgs", "merge")
    wait_writer(w, n)
    wait_count(readers, n, 60, "scale")
    time.sleep(1)
    for r in readers:
        r.finish()
    events = [e for r in readers for e in r.events]
    check_exactly_once(events, n, "scale")
    segs = sorted(set(e[1] for e in events))
    print("segments read: %s" % ", ".join("%d.%d" % (s & 0xffffffff,
                                                    s >> 32)
                                          for s in segs))
    if len(segs) != 5:
        raise RuntimeError("expected events in 5 segments (1, split in "
                           "3, two of them merged in 1), got %d" %
                           len(segs))


def parse_cut(line):
    """'cut it/rgc:0.0=12,1.0=0' -> {segment id: offset}"""
    body = line.split(":", 1)[1].strip()
    cut = {}
    for item in filter(None, body.split(",")):
        seg, off = item.split("=")
        num, epoch = (int(x) for x in seg.split("."))
        cut[(epoch << 32) | num] = int(off)
    return cut


def scenario_checkpoint(args, cluster):
    """Checkpoint while reading, kill -9 the readers, reset (issue 6,
    (c))."""
    n = 3000
    client_test.setup_stream(args, cluster, SCOPE, "rgc", 3)
    w = write(args, cluster, "rgc", n, 0)
    wait_writer(w, n)
    rg(args, cluster, "group", SCOPE, "rgc", "gc", 300)
    # Slow readers (2 ms per event): the checkpoint lands mid-stream.
    old = start_readers(args, cluster, "gc", ["r1", "r2", "r3"],
                        delay_us=2000)
    wait_count(old, 600, 60, "checkpoint: before")
    r = rg(args, cluster, "checkpoint", SCOPE, "gc", "cp1", 30000)
    cuts = [parse_cut(l) for l in r.stdout.splitlines()
            if l.startswith("cut ")]
    if len(cuts) != 1:
        raise RuntimeError("expected one cut, got %d" % len(cuts))
    cut = cuts[0]
    wait_count(old, sum(o.count() for o in old) + 300, 60,
               "checkpoint: after")
    for o in old:
        o.kill()
    before = []
    for o in old:
        if "cp1" not in o.cp:
            raise RuntimeError("reader %s never returned the checkpoint"
                               % o.name)
        before += o.events[:o.cp["cp1"]]
    read_total = sum(len(o.events) for o in old)
    print("old readers: %d events before the checkpoint, %d in all" %
          (len(before), read_total))
    if len(before) >= n or len(before) == 0:
        raise RuntimeError("checkpoint not taken mid-stream")
    # Positions of the cut = where each segment's events before it end.
    for ts, seg, off, payload in before:
        if seg in cut and off >= cut[seg]:
            raise RuntimeError("event at %d.%d @%d read before the "
                               "checkpoint lies after its position %d" %
                               (seg & 0xffffffff, seg >> 32, off,
                                cut[seg]))
    rg(args, cluster, "reset", SCOPE, "gc", "cp1")
    new = start_readers(args, cluster, "gc", ["r1", "r2", "r3"])
    wait_count(new, n - len(before), 60, "checkpoint: after the reset")
    time.sleep(1)
    for r2 in new:
        r2.finish()
    after = [e for r2 in new for e in r2.events]
    # Reading resumed exactly at the checkpoint: the first event read in
    # each segment of the cut is at its position.
    first = {}
    for ts, seg, off, payload in after:
        first[seg] = min(off, first.get(seg, off))
    for seg, off in cut.items():
        if seg in first and first[seg] != off:
            raise RuntimeError("segment %d.%d resumed at %d, the "
                               "checkpoint says %d" %
                               (seg & 0xffffffff, seg >> 32, first[seg],
                                off))
    check_exactly_once(before + after, n, "checkpoint + reset")


def scenario_retention(args, cluster):
    """Consumption-based retention (AUTO_CHECKPOINT): a checkpoint taken
    while readers read completes in the reader that passes it last, which
    releases the checkpoint's positions to the controller: the group's
    released cut is exactly where its readers stood. Then automatic
    checkpoints: silent for the readers, and the release follows them."""
    n = 3000
    client_test.setup_stream(args, cluster, SCOPE, "rgr", 3)
    w = write(args, cluster, "rgr", n, 0)
    wait_writer(w, n)
    rg(args, cluster, "group", SCOPE, "rgr", "gr", 300, "auto")

    def released_of(group):
        out = subprocess.run([args.stratactl, "--controller",
                              cluster.ctl_url, "group", "describe",
                              SCOPE + "/" + group, "--json"],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError("group describe: %s" % out.stderr)
        return json.loads(out.stdout)["streams"][0]["released"]

    def released():
        return released_of("gr")

    if released() != "head":
        raise RuntimeError("a new group released %s" % released())
    old = start_readers(args, cluster, "gr", ["r1", "r2", "r3"],
                        delay_us=2000)
    wait_count(old, 600, 60, "retention: before")
    r = rg(args, cluster, "cp-start", SCOPE, "gr", "cp1")
    if "pending" not in r.stdout:
        raise RuntimeError("the checkpoint did not wait for the readers")
    deadline = time.time() + 60
    while not all("cp1" in o.cp for o in old):
        if time.time() > deadline:
            raise RuntimeError("the readers did not pass cp1")
        time.sleep(0.05)
    deadline = time.time() + 30
    while released() == "head":
        if time.time() > deadline:
            raise RuntimeError("no reader released cp1's positions")
        time.sleep(0.1)
    cut = parse_cut("cut " + released())
    for o in old:
        o.finish()
    for o in old:
        for i, (ts, seg, off, payload) in enumerate(o.events):
            if seg not in cut:
                continue
            if i < o.cp["cp1"] and off >= cut[seg]:
                raise RuntimeError("event @%d of segment %d read before "
                                   "cp1 lies past the released %d"
                                   % (off, seg, cut[seg]))
            if i >= o.cp["cp1"] and off < cut[seg]:
                raise RuntimeError("event @%d of segment %d read after "
                                   "cp1 lies before the released %d"
                                   % (off, seg, cut[seg]))
    print("released cut of cp1: %s" % released())
    rg(args, cluster, "delete", SCOPE, "gr")

    # Automatic checkpoints every 400 ms: readers pass them without
    # returning them, and each one releases where the readers were, so
    # the release follows the reading with no checkpoint asked for.
    rg(args, cluster, "group", SCOPE, "rgr", "ga", 200, "auto", 400)
    readers = start_readers(args, cluster, "ga", ["a1", "a2"],
                            delay_us=1000)
    seen = []
    deadline = time.time() + 90
    while sum(o.count() for o in readers) < n:
        rel = released_of("ga")
        if rel != "head" and (not seen or seen[-1] != rel):
            seen.append(rel)
        if time.time() > deadline:
            raise RuntimeError("automatic checkpoints: the readers "
                               "did not finish")
        time.sleep(0.2)
    for o in readers:
        o.finish()
    check_exactly_once([e for o in readers for e in o.events], n,
                       "automatic checkpoints")
    if any(o.cp for o in readers):
        raise RuntimeError("a reader returned an automatic checkpoint: "
                           "%s" % [o.cp for o in readers])
    if len(seen) < 2:
        raise RuntimeError("the release did not follow the readers: %s"
                           % seen)
    totals = [sum(parse_cut("cut " + c).values()) for c in seen]
    if totals != sorted(totals):
        raise RuntimeError("the release went back: %s" % seen)
    print("automatic checkpoints released %d times, last %s"
          % (len(seen), seen[-1]))
    rg(args, cluster, "delete", SCOPE, "ga")


def timed_writer(args, cluster, stream, name, n, note_every, hold_ms, go):
    """Start rg_tool timed-write; return once it noted its first time
    (it then waits for the file go)."""
    cmd = [args.rg_tool, cluster.ctl_url, "timed-write", SCOPE, stream, name,
           n, note_every, hold_ms, go]
    p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE,
                         text=True)
    line = p.stdout.readline()
    if line.strip() != "ready":
        p.kill()
        raise RuntimeError("writer %s did not start: %r" % (name, line))
    return p


def scenario_watermark(args, cluster):
    """Watermarks: writers' notes -> controller -> reader windows."""
    na, nb = 2000, 1000
    client_test.setup_stream(args, cluster, SCOPE, "rgw", 2)
    rg(args, cluster, "group", SCOPE, "rgw", "gw", 300)
    stop = os.path.join(cluster.dir, "stop-rw")
    cmd = [args.rg_tool, cluster.ctl_url, "read-windows", SCOPE, "gw", "rw",
           "rgw", na + nb + 2, stop, 90]
    reader = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE,
                              text=True)
    lines = []
    seen = threading.Event()  # the final lower bound was shown

    def collect():
        for line in reader.stdout:
            lines.append(line)
            if line.startswith("win ") and line.split()[2] == str(10 * na):
                seen.set()
    t = threading.Thread(target=collect, daemon=True)
    t.start()
    # Both note time 0 first (a writer counts from its first note), then
    # A notes up to 20000, B up to 10000; both then hold without noting
    # for 8 s (B's mark times out after 3 s).
    go = os.path.join(cluster.dir, "go-writers")
    wa = timed_writer(args, cluster, "rgw", "A", na, 100, 8000, go)
    wb = timed_writer(args, cluster, "rgw", "B", nb, 100, 8000, go)
    open(go, "w").close()
    if not seen.wait(60):
        reader.kill()
        raise RuntimeError("the reader never saw lower bound %d:\n%s" %
                           (10 * na, "".join(lines[-20:])))
    open(stop, "w").close()
    for p, name in ((reader, "reader"), (wa, "writer A"), (wb, "writer B")):
        out, _ = p.communicate(timeout=60)
        if p.returncode != 0:
            raise RuntimeError("%s failed (%d): %s" % (name, p.returncode,
                                                       out))
        if p is not reader:
            sys.stdout.write("%s: %s\n" % (name, out.strip().splitlines()[-3]))
    t.join(timeout=5)
    events, windows = [], []  # (time, payload), (ts, lower, upper)
    for line in lines:
        parts = line.split()
        if parts[0] == "ev":
            events.append((int(parts[4].split(":")[2]), parts[4],
                           int(parts[2]), int(parts[3])))
            windows.append((int(parts[1]), parts[5], parts[6]))
        elif parts[0] == "win":
            windows.append((int(parts[1]), parts[2], parts[3]))
    check_exactly_once([(i, 0, 0, e[1]) for i, e in enumerate(events)],
                       na + nb + 2, "watermark")
    # The guarantee: after a window with lower L, every event read has a
    # time >= L.
    low, since = None, None
    for i, (tm, payload, seg, off) in enumerate(events):
        if low is not None and tm < low:
            wm = subprocess.run([args.stratactl, "--controller",
                                 cluster.ctl_url, "stream", "watermarks",
                                 SCOPE + "/rgw"], capture_output=True,
                                text=True, timeout=60)
            raise RuntimeError(
                "event %d %s (time %d, segment %d.%d @%d) read after the "
                "lower bound reached %d at event %d %s (segment %d.%d "
                "@%d); watermarks:\n%s" %
                (i, payload, tm, seg & 0xffffffff, seg >> 32, off, low,
                 since, events[since][1], events[since][2] & 0xffffffff,
                 events[since][2] >> 32, events[since][3], wm.stdout))
        if windows[i][1] != "-":
            if low is None or int(windows[i][1]) > low:
                since = i
            low = int(windows[i][1])
    # Lower bounds never fall; upper >= lower.
    prev = None
    for ts, lo, up in windows:
        if lo == "-":
            if prev is not None:
                raise RuntimeError("the lower bound went away")
            continue
        if prev is not None and int(lo) < prev:
            raise RuntimeError("lower bound fell from %d to %s" % (prev, lo))
        if up != "-" and int(up) < int(lo):
            raise RuntimeError("window [%s, %s]" % (lo, up))
        prev = int(lo)
    # Held at B's last note while B counted, for a while; then A's.
    held = [ts for ts, lo, up in windows if lo == str(10 * nb)]
    final = [ts for ts, lo, up in windows if lo == str(10 * na)]
    if not held:
        raise RuntimeError("the lower bound never stood at writer B's "
                           "last note %d" % (10 * nb))
    span = (final[0] - held[0]) / 1e9
    print("lower bound %d (writer B's last note) for %.1f s, then %d "
          "after B's mark timed out; %d windows, %d events" %
          (10 * nb, span, 10 * na, len(windows), len(events)))
    if span < 1.0:
        raise RuntimeError("writer B's note held the watermark back only "
                           "%.1f s (timeout 3 s)" % span)
    # stratactl lists them; the newest is A's.
    ctl = [args.stratactl, "--controller", cluster.ctl_url, "stream",
           "watermarks", SCOPE + "/rgw"]
    r = subprocess.run(ctl, capture_output=True, text=True, timeout=60)
    sys.stdout.write(r.stdout[-600:])
    rows = r.stdout.splitlines()
    if r.returncode != 0 or not rows[0].startswith("INDEX") or \
            rows[-1].split()[1] != str(10 * na):
        raise RuntimeError("stratactl stream watermarks: exit %d, %s" %
                           (r.returncode, r.stderr))
    r = subprocess.run(ctl + ["--json", "--last", "1"], capture_output=True,
                       text=True, timeout=60)
    last = json.loads(r.stdout)
    if len(last) != 1 or last[0]["lower"] != 10 * na or \
            last[0]["index"] != len(rows) - 1:
        raise RuntimeError("stratactl --json --last 1: %s" % r.stdout)
    r = subprocess.run(ctl[:-1] + [SCOPE + "/nope"], capture_output=True,
                       text=True, timeout=60)
    if r.returncode == 0 or "nope" not in r.stderr:
        raise RuntimeError("watermarks of an unknown stream: exit %d, %s" %
                           (r.returncode, r.stderr))
    print("stratactl: %d watermarks, newest lower %d; unknown stream: %s" %
          (len(rows) - 1, last[0]["lower"], r.stderr.strip()))
    # A transactional producer notes time at the tail after its commit
    # (A and B are closed: their marks are gone): the next watermark is
    # its time.
    rg(args, cluster, "txn-note", SCOPE, "rgw", 10, 30000, "note")
    end = time.time() + 20
    while True:
        r = subprocess.run(ctl + ["--json", "--last", "1"],
                           capture_output=True, text=True, timeout=60)
        last = json.loads(r.stdout)
        if last and last[0]["lower"] == 30010:
            break
        if time.time() > end:
            raise RuntimeError("no watermark at the transactional "
                               "producer's time 30010: %s" % r.stdout)
        time.sleep(0.2)
    rg(args, cluster, "txn-note", SCOPE, "rgw", 0, 0, "remove")
    print("strata_stream_note_time after a commit: watermark %d at %s" %
          (last[0]["lower"], last[0]["positions"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=["group", "scale", "checkpoint",
                                         "watermark", "retention"])
    ap.add_argument("--controller", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--tool", required=True)
    ap.add_argument("--rg-tool", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--stratactl", required=True)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    cluster = client_test.Cluster(args, 3)
    ok = False
    try:
        {"group": scenario_group,
         "scale": scenario_scale,
         "checkpoint": scenario_checkpoint,
         "watermark": scenario_watermark,
         "retention": scenario_retention}[args.scenario](args, cluster)
        ok = True
    finally:
        if not ok:
            cluster.dump_logs()
        if args.keep:
            cluster.stop()
            print("kept", cluster.dir)
        else:
            cluster.cleanup()
    print("PASS", args.scenario)


if __name__ == "__main__":
    main()
