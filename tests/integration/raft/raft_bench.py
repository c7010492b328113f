#!/usr/bin/env python3
"""Raft benchmark (issue 11): committed entries/s, MB/s and commit latency
p50/p99 of raft_node processes on 127.0.0.1, over entry size x replicas x
groups per process x TCP_NODELAY, beside the disk's own O_DIRECT append rate
measured in the same run. Prints Markdown tables.

Each run starts R raft_node processes (one per replica; every process hosts
G groups, replicas of group g on every process), waits for a ready leader
in every group, turns the load on (each leader keeps its in-flight budget
full with entries of the given size), discards a warm-up, then reads the
acks of a measured window from every leader: their count, bytes and a
latency histogram (apply -> callback on the leader). CPU is utime+stime
of each process over the window (100 % = one core).

usage: raft_bench.py --node build/tests/raft_node
                     [--diskbench build/bin/strata-diskbench]
                     [--seconds 5] [--quick] [--perf]
Every run is bounded (start 60 s, window --seconds, stop 20 s, then kill -9).
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from ports import free_ports  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


def parse_kv(line):
    parts = line.split()
    return parts[0], dict(p.split("=", 1) for p in parts[1:] if "=" in p)


def bucket_value(b):
    """Middle of latency bucket b of raft_node's lat_bucket (us)."""
    if b < 64:
        return b + 0.5
    e = (b - 64) // 32 + 6
    sub = (b - 64) % 32
    lo = (32 + sub) << (e - 5)
    return lo + (1 << (e - 5)) / 2.0


def percentile(hist, q):
    total = sum(hist.values())
    if total == 0:
        return 0.0
    rank = q * total
    acc = 0
    for b in sorted(hist):
        acc += hist[b]
        if acc >= rank:
            return bucket_value(b)
    return bucket_value(max(hist))


def cpu_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


class Proc:
    """One raft_node and what it printed."""

    def __init__(self, cmd, log):
        self.lock = threading.Lock()
        self.status = {}
        self.bench = {}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=log,
                                     bufsize=0)
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            tag, kv = parse_kv(line)
            with self.lock:
                if tag == "STATUS":
                    self.status[int(kv["group"])] = kv
                elif tag == "BENCH":
                    self.bench[int(kv["group"])] = kv

    def send(self, cmd):
        try:
            self.proc.stdin.write((cmd + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def stop(self):
        if self.proc.poll() is None:
            self.send("quit")
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait()


def wait(pred, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise RuntimeError("timed out after %.0f s waiting for %s"
                       % (timeout, what))


def run_one(a, base, size, replicas, groups, nodelay, perf_out=None):
    d = tempfile.mkdtemp(prefix="run-", dir=base)
    ports = free_ports(replicas)
    peers = ",".join("%d=127.0.0.1:%d" % (i + 1, p)
                     for i, p in enumerate(ports))
    log = open(os.path.join(d, "nodes.log"), "ab")
    procs = []
    try:
        for i in range(replicas):
            cmd = [a.node, "--id", str(i + 1),
                   "--listen", "127.0.0.1:%d" % ports[i], "--peers", peers,
                   "--dir", os.path.join(d, "node%d" % (i + 1)),
                   "--groups", str(groups), "--entry-bytes", str(size),
                   "--status-ms", "200"]
            if not nodelay:
                cmd.append("--nodelay-off")
            procs.append(Proc(cmd, log))

        def all_led():
            for g in range(1, groups + 1):
                ok = False
                for p in procs:
                    with p.lock:
                        s = p.status.get(g, {})
                    ok |= s.get("role") == "3" and s.get("ready") == "1"
                if not ok:
                    return False
            return True
        wait(all_led, 60, "a ready leader in every group")
        for p in procs:
            p.send("load on")
        time.sleep(a.warmup)
        for p in procs:
            p.send("bench reset")
        t0 = [cpu_ticks(p.proc.pid) for p in procs]
        w0 = time.time()
        perf = None
        if perf_out is not None:
            leader = None
            for p in procs:
                with p.lock:
                    if p.status.get(1, {}).get("role") == "3":
                        leader = p
            perf = subprocess.Popen(
                ["perf", "record", "-F", "499", "-g", "-o", perf_out,
                 "-p", str(leader.proc.pid), "--", "sleep",
                 str(a.seconds)], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
        time.sleep(a.seconds)
        for p in procs:
            p.send("bench report")
        wall = time.time() - w0
        t1 = [cpu_ticks(p.proc.pid) for p in procs]
        if perf is not None:
            perf.wait(timeout=30)
        wait(lambda: all(len(p.bench) == groups for p in procs), 10,
             "bench reports")
        for p in procs:
            p.send("load off")
        entries = nbytes = 0
        secs = 0.0
        hist = {}
        changes = 0
        for p in procs:
            with p.lock:
                reps = list(p.bench.values())
                sts = list(p.status.values())
            for kv in reps:
                e = int(kv["entries"])
                entries += e
                nbytes += int(kv["bytes"])
                secs = max(secs, int(kv["us"]) / 1e6)
                if kv["hist"] != "-":
                    for item in kv["hist"].split(","):
                        b, n = item.split(":")
                        hist[int(b)] = hist.get(int(b), 0) + int(n)
            for s in sts:
                # the first leader counts as one change
                changes = max(changes,
                              int(s.get("leader_changes", 1)) - 1)
        cpu = [100.0 * (y - x) / CLK / wall for x, y in zip(t0, t1)]
        return {"eps": entries / secs if secs else 0,
                "mbs": nbytes / secs / 1e6 if secs else 0,
                "p50": percentile(hist, 0.50) / 1e3,
                "p99": percentile(hist, 0.99) / 1e3,
                "cpu": cpu, "changes": changes}
    finally:
        for p in procs:
            p.stop()
        log.close()
        shutil.rmtree(d, ignore_errors=True)


def disk_table(a, base):
    if a.diskbench and os.path.exists(a.diskbench):
        r = subprocess.run([a.diskbench, base, str(a.disk_seconds)],
                           stdout=subprocess.PIPE, timeout=600)
        return r.stdout.decode()
    return "(strata-diskbench not built: pass --diskbench)\n"


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--node", required=True, help="path to raft_node")
    p.add_argument("--diskbench", help="path to strata-diskbench")
    p.add_argument("--dir", help="data dir on the disk to measure "
                   "(default: a temp dir in the current directory)")
    p.add_argument("--seconds", type=float, default=5.0,
                   help="measured window per run")
    p.add_argument("--warmup", type=float, default=1.5)
    p.add_argument("--disk-seconds", type=float, default=2.0)
    p.add_argument("--sizes", default="4096,65536,262144")
    p.add_argument("--replicas", default="1,3")
    p.add_argument("--groups", default="1,4,8")
    p.add_argument("--nodelay", default="on,off")
    p.add_argument("--quick", action="store_true",
                   help="64 KiB only, 1 and 3 replicas, 1 group, "
                   "NODELAY on, 3 s windows")
    p.add_argument("--perf", action="store_true",
                   help="also profile the group-1 leader of a 3-replica "
                   "64 KiB run with perf record and print the top "
                   "symbols")
    a = p.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    replicas = [int(x) for x in a.replicas.split(",")]
    groups = [int(x) for x in a.groups.split(",")]
    nodelays = [x == "on" for x in a.nodelay.split(",")]
    if a.quick:
        sizes, groups, nodelays, a.seconds = [65536], [1], [True], 3.0
    base = tempfile.mkdtemp(prefix="strata-raft-bench-",
                            dir=a.dir or os.getcwd())
    try:
        with open("/proc/loadavg") as f:
            load = " ".join(f.read().split()[:3])
        print("## Raft bench (%s, %d CPUs, load average %s at start)\n"
              % (time.strftime("%Y-%m-%d %H:%M"), os.cpu_count(), load))
        print("Disk's own rate, same directory, same run:\n")
        print(disk_table(a, base))
        print("Committed by the leaders, %.0f s window after %.1f s warm-up"
              "; latency is apply -> callback on the leader; CPU per "
              "process (100 %% = one core).\n" % (a.seconds, a.warmup))
        print("| entry | replicas | groups/process | TCP_NODELAY | "
              "entries/s | MB/s | p50 ms | p99 ms | CPU % per process "
              "| leader changes |")
        print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | "
              "--- | ---: |")
        sys.stdout.flush()
        for size in sizes:
            for r in replicas:
                for g in groups:
                    for nd in nodelays:
                        if r == 1 and not nd and len(nodelays) > 1:
                            continue  # no network with one replica
                        try:
                            res = run_one(a, base, size, r, g, nd)
                        except RuntimeError as e:
                            print("| %d KiB | %d | %d | %s | failed: %s |"
                                  % (size // 1024, r, g,
                                     "on" if nd else "off", e))
                            continue
                        print("| %d KiB | %d | %d | %s | %.0f | %.1f | "
                              "%.2f | %.2f | %s | %d |"
                              % (size // 1024, r, g, "on" if nd else "off",
                                 res["eps"], res["mbs"], res["p50"],
                                 res["p99"],
                                 " / ".join("%.0f" % c for c in res["cpu"]),
                                 res["changes"]))
                        sys.stdout.flush()
        if a.perf:
            out = os.path.join(base, "perf.data")
            run_one(a, base, 65536, 3, 1, True, perf_out=out)
            rep = subprocess.run(
                ["perf", "report", "-i", out, "--stdio", "--no-children",
                 "--sort", "dso,symbol", "--percent-limit", "1.5",
                 "-g", "none"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                timeout=120)
            print("\nperf record of the 3-replica 64 KiB leader "
                  "(self time, symbols above 1.5 %):\n")
            print("```")
            for line in rep.stdout.decode(errors="replace").splitlines():
                if line.strip() and not line.startswith("#"):
                    print(line)
            print("```")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
