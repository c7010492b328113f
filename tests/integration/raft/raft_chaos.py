#!/usr/bin/env python3
"""Raft chaos driver: real raft_node processes on 127.0.0.1, kill -9.

Scenarios (each exits 0 on success, 1 with a reason on failure):
  catchup   3 replicas under load; one follower killed -9 and kept down
            while --down-mb are committed; restarted, it must catch up
            within --catchup-s, the leader must not change, no acked entry
            may be lost, and all FSM checksums must agree.
  failover  --kills times: kill -9 the leader under load, time until a new
            leader commits (median <= --median-s, max <= --max-s), restart
            the old leader; no acked entry lost, checksums agree.
  steady    --seconds of load without faults: no leader change.
Usage: raft_chaos.py SCENARIO --node PATH [options]   (see --help)
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from ports import free_ports  # noqa: E402


def now_ms():
    return int(time.time() * 1000)


def parse_kv(line):
    parts = line.split()
    return parts[0], dict(p.split("=", 1) for p in parts[1:] if "=" in p)


class Node:
    """One raft_node process and what it printed."""

    def __init__(self, nid, args, base, peers, port):
        self.nid, self.args, self.port = nid, args, port
        self.dir = os.path.join(base, "node%d" % nid)
        self.peers = peers
        self.lock = threading.Lock()
        self.status = {}      # group -> latest STATUS dict
        self.events = []      # (tag, dict) of LEADER/FIRST_COMMIT/...
        self.acks = {}        # (group, session) -> max seq
        self.sessions = {}    # group -> {session: seq} from the last dump
        self.status_log = []  # (wall_ms, group, role, term, leader)
        self.proc = None
        self.load = False     # "load on" was sent: resend after restart
        self.log = open(os.path.join(base, "node%d.log" % nid), "ab")

    def start(self, env=None):
        cmd = [self.args.node, "--id", str(self.nid),
               "--listen", "127.0.0.1:%d" % self.port,
               "--peers", self.peers, "--dir", self.dir,
               "--groups", str(self.args.groups),
               "--entry-bytes", str(self.args.entry_bytes),
               "--snapshot-mb", str(self.args.snapshot_mb),
               "--trailing-mb", str(self.args.trailing_mb),
               "--retain-mb", str(self.args.retain_mb),
               "--segment-mb", str(self.args.segment_mb),
               "--inflight-kb", str(self.args.inflight_kb),
               "--election-ms", str(self.args.election_ms),
               "--heartbeat-ms", str(self.args.heartbeat_ms),
               "--status-ms", "100"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=self.log, bufsize=0,
                                     env=dict(os.environ, **(env or {})))
        self.started_ms = now_ms()
        with self.lock:
            self.status = {}
        threading.Thread(target=self._reader, args=(self.proc,),
                         daemon=True).start()
        if self.load:
            self.send("load on")

    def _reader(self, proc):
        for raw in proc.stdout:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            tag, kv = parse_kv(line)
            with self.lock:
                if tag == "STATUS":
                    g = int(kv["group"])
                    self.status[g] = kv
                    self.status_log.append((int(kv["wall_ms"]), g,
                                            int(kv["role"]),
                                            int(kv["term"]),
                                            int(kv["leader"])))
                elif tag == "ACK":
                    key = (int(kv["group"]), int(kv["session"]))
                    self.acks[key] = max(self.acks.get(key, 0),
                                         int(kv["seq"]))
                elif tag == "SESSIONS":
                    d = {}
                    if kv.get("list"):
                        for item in kv["list"].split(","):
                            s, q = item.split(":")
                            d[int(s)] = int(q)
                    self.sessions[int(kv["group"])] = d
                else:
                    self.events.append((tag, kv))

    def send(self, cmd):
        if cmd.startswith("load "):
            self.load = cmd == "load on"
        try:
            self.proc.stdin.write((cmd + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def quit(self):
        if self.alive():
            self.send("quit")
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill9()

    def st(self, g=1):
        with self.lock:
            return dict(self.status.get(g, {}))

    def rss_mb(self):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) // 1024
        except OSError:
            pass
        return 0


class Cluster:
    def __init__(self, args):
        self.args = args
        self.base = tempfile.mkdtemp(prefix="strata-raft-chaos-")
        ports = free_ports(3)
        peers = ",".join("%d=127.0.0.1:%d" % (i + 1, p)
                         for i, p in enumerate(ports))
        self.nodes = [Node(i + 1, args, self.base, peers, ports[i])
                      for i in range(3)]

    def start(self):
        for n in self.nodes:
            n.start()

    def leader(self, g=1):
        for n in self.nodes:
            if n.alive():
                s = n.st(g)
                if s.get("role") == "3" and s.get("ready") == "1":
                    return n
        return None

    def wait(self, pred, timeout, what):
        end = time.time() + timeout
        while time.time() < end:
            v = pred()
            if v:
                return v
            time.sleep(0.05)
        raise Failure("timed out after %.0f s waiting for %s"
                      % (timeout, what))

    def all(self, cmd):
        for n in self.nodes:
            if n.alive():
                n.send(cmd)

    def stop(self, keep):
        for n in self.nodes:
            n.quit()
        if not keep:
            shutil.rmtree(self.base, ignore_errors=True)


class Failure(Exception):
    pass


def verify(c, groups):
    """Stop the load, wait for equal FSMs, check acks and order."""
    c.all("load off")
    time.sleep(0.5)
    for g in range(1, groups + 1):
        def same():
            ss = [n.st(g) for n in c.nodes]
            if any(not s for s in ss):
                return False
            keys = {(s["applied"], s["count"], s["hash"]) for s in ss}
            return len(keys) == 1 and ss[0]["count"] != "0"
        c.wait(same, 60, "group %d: all replicas equal" % g)
    for n in c.nodes:
        with n.lock:
            n.sessions = {}
        n.send("dump")
    c.wait(lambda: all(len(n.sessions) == groups for n in c.nodes), 20,
           "session dumps")
    acked = {}
    for n in c.nodes:
        with n.lock:
            for k, v in n.acks.items():
                acked[k] = max(acked.get(k, 0), v)
    total = 0
    for (g, sess), seq in sorted(acked.items()):
        total += seq
        for n in c.nodes:
            have = n.sessions[g].get(sess, 0)
            if have < seq:
                raise Failure("node %d group %d lost acked entries: "
                              "session %d acked up to %d, FSM has %d"
                              % (n.nid, g, sess, seq, have))
    for n in c.nodes:
        for g in range(1, groups + 1):
            if n.st(g).get("gaps") != "0":
                raise Failure("node %d group %d saw %s order gaps"
                              % (n.nid, g, n.st(g).get("gaps")))
    s = c.nodes[0].st(1)
    return {"acked_sessions": len(acked), "acked_entries": total,
            "count": int(s["count"]), "hash": s["hash"]}


def committed_bytes(c, g=1):
    lead = c.leader(g)
    return int(lead.st(g).get("acked_bytes", 0)) if lead else 0


def scenario_catchup(c, a):
    c.start()
    lead = c.wait(c.leader, 30, "a leader")
    c.all("load on")
    c.wait(lambda: committed_bytes(c) >= a.warmup_mb << 20, 60, "warm-up")
    lead = c.leader()
    term = int(lead.st()["term"])
    victim = [n for n in c.nodes if n is not lead][0]
    victim.kill9()
    t_kill = now_ms()
    base = int(lead.st()["acked_bytes"])
    down = a.down_mb << 20
    max_rss = {}

    def enough():
        for n in c.nodes:
            if n.alive():
                max_rss[n.nid] = max(max_rss.get(n.nid, 0), n.rss_mb())
        return int(lead.st()["acked_bytes"]) - base >= down
    c.wait(enough, a.down_mb / 10 + 120, "%d MB committed" % a.down_mb)
    down_s = (now_ms() - t_kill) / 1000.0
    commit_at_restart = int(lead.st()["commit"])
    t0 = time.time()
    victim.start(env={"LIBRAFT_TRACE": "1"} if a.trace_victim else None)
    c.wait(lambda: int(victim.st().get("applied", 0)) >= commit_at_restart,
           a.catchup_s + 60, "the restarted replica to catch up")
    catchup_s = time.time() - t0
    # Then it must follow the live tail: lag below --tail-entries.
    tail_s, lags = None, []
    while time.time() - t0 < a.catchup_s + 10:
        for n in c.nodes:
            max_rss[n.nid] = max(max_rss.get(n.nid, 0), n.rss_mb())
        lag = int(lead.st()["commit"]) - int(victim.st().get("applied", 0))
        lags.append(lag)
        if tail_s is None and lag <= a.tail_entries:
            tail_s = time.time() - t0
            break
        time.sleep(0.1)
    lag = lags[-1] if lags else 0
    res = verify(c, a.groups)
    terms, leaders = set(), set()
    for n in c.nodes:
        with n.lock:
            for (w, _g, _r, t, ld) in n.status_log:
                if w >= t_kill:
                    terms.add(t)
                    if ld:
                        leaders.add(ld)
    out = dict(res, down_s=round(down_s, 1), down_mb=a.down_mb,
               catchup_s=round(catchup_s, 2),
               tail_s=round(tail_s, 2) if tail_s else None,
               max_lag=max(lags) if lags else 0, last_lag=lag,
               installed=victim.st().get("installed"),
               retained=lead.st().get("retained"),
               term=term, terms_seen=sorted(terms), leaders=sorted(leaders),
               max_rss_mb=max_rss)
    print("RESULT catchup %s" % out, flush=True)
    if tail_s is None or tail_s > a.catchup_s:
        raise Failure("the replica did not follow the live tail (lag <= "
                      "%d entries) within %d s" % (a.tail_entries,
                                                   a.catchup_s))
    if catchup_s > a.catchup_s:
        raise Failure("catch-up took %.1f s > %d s" % (catchup_s,
                                                       a.catchup_s))
    if terms != {term} or leaders != {lead.nid}:
        raise Failure("leadership changed during catch-up: terms %s, "
                      "leaders %s" % (sorted(terms), sorted(leaders)))


def scenario_failover(c, a):
    c.start()
    c.wait(c.leader, 30, "a leader")
    c.all("load on")
    c.wait(lambda: committed_bytes(c) >= a.warmup_mb << 20, 60, "warm-up")
    times = []
    for i in range(a.kills):
        lead = c.wait(c.leader, 30, "a leader before kill %d" % (i + 1))
        c.wait(lambda: int(lead.st().get("acked_bytes", 0)) > 0, 30,
               "the leader to commit")

        def healthy():
            commit = int(lead.st().get("commit", 0))
            return all(n.alive() and commit - int(n.st().get("applied", 0))
                       <= a.tail_entries for n in c.nodes)
        # Kill only a healthy cluster: every replica follows the tail.
        c.wait(healthy, 60, "all replicas to follow the tail")
        term = int(lead.st()["term"])
        seen = {n.nid: len(n.events) for n in c.nodes}
        t_kill = now_ms()
        lead.kill9()

        def first_commit():
            for n in c.nodes:
                if n is lead:
                    continue
                with n.lock:
                    for tag, kv in n.events[seen[n.nid]:]:
                        if tag == "FIRST_COMMIT" and int(kv["term"]) > term:
                            return int(kv["wall_ms"])
            return None
        t_fc = c.wait(first_commit, 30, "a new leader to commit")
        times.append((t_fc - t_kill) / 1000.0)
        print("kill %d: leader %d term %d -> first commit after %.2f s"
              % (i + 1, lead.nid, term, times[-1]), flush=True)
        lead.start()
        c.wait(lambda: lead.st().get("role") in ("1", "3") and
               int(lead.st().get("applied", 0)) > 0, 30,
               "the old leader to rejoin")
        time.sleep(a.settle_s)
    res = verify(c, a.groups)
    med, mx = statistics.median(times), max(times)
    print("RESULT failover %s" % dict(res, kills=len(times),
                                      median_s=round(med, 2),
                                      max_s=round(mx, 2),
                                      times=[round(t, 2) for t in times]),
          flush=True)
    if med > a.median_s or mx > a.max_s:
        raise Failure("failover median %.2f s (limit %.1f), max %.2f s "
                      "(limit %.1f)" % (med, a.median_s, mx, a.max_s))


def scenario_steady(c, a):
    c.start()
    lead = c.wait(c.leader, 30, "a leader")
    c.all("load on")
    time.sleep(2)
    lead = c.leader()
    term = int(lead.st()["term"])
    t0 = time.time()
    while time.time() - t0 < a.seconds:
        time.sleep(1)
        for n in c.nodes:
            if n.st().get("term") != str(term):
                raise Failure("term changed from %d to %s on node %d "
                              "after %.0f s without a fault"
                              % (term, n.st().get("term"), n.nid,
                                 time.time() - t0))
    mb = int(lead.st()["acked_bytes"]) >> 20
    res = verify(c, a.groups)
    print("RESULT steady %s" % dict(res, seconds=a.seconds, term=term,
                                    committed_mb=mb,
                                    mb_per_s=round(mb / (time.time() - t0),
                                                   1)), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("scenario", choices=["catchup", "failover", "steady"])
    p.add_argument("--node", required=True, help="path to raft_node")
    p.add_argument("--groups", type=int, default=1)
    p.add_argument("--entry-bytes", type=int, default=65536)
    p.add_argument("--snapshot-mb", type=int, default=16)
    p.add_argument("--trailing-mb", type=int, default=4)
    p.add_argument("--retain-mb", type=int, default=64,
                   help="log a leader's snapshot keeps for lagging followers")
    p.add_argument("--segment-mb", type=int, default=64)
    p.add_argument("--inflight-kb", type=int, default=2048)
    p.add_argument("--election-ms", type=int, default=1000)
    p.add_argument("--heartbeat-ms", type=int, default=100)
    p.add_argument("--warmup-mb", type=int, default=64)
    p.add_argument("--down-mb", type=int, default=1024)
    p.add_argument("--catchup-s", type=int, default=20)
    p.add_argument("--tail-entries", type=int, default=64)
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--settle-s", type=float, default=3.0)
    p.add_argument("--median-s", type=float, default=2.0)
    p.add_argument("--max-s", type=float, default=5.0)
    p.add_argument("--seconds", type=int, default=300)
    p.add_argument("--trace-victim", action="store_true",
                   help="LIBRAFT_TRACE=1 for the restarted replica")
    p.add_argument("--keep", action="store_true", help="keep the data dir")
    a = p.parse_args()
    c = Cluster(a)
    ok = False
    try:
        {"catchup": scenario_catchup, "failover": scenario_failover,
         "steady": scenario_steady}[a.scenario](c, a)
        ok = True
    except Failure as e:
        print("FAIL %s: %s (logs in %s)" % (a.scenario, e, c.base),
              flush=True)
        for n in c.nodes:  # last status of every replica, for the post-mortem
            for g in range(1, a.groups + 1):
                s = n.st(g)
                print("  node %d group %d: %s" % (n.nid, g, " ".join(
                    "%s=%s" % (k, s[k]) for k in
                    ("role", "term", "leader", "commit", "applied",
                     "count", "installed", "snaps", "retained", "contact_ms",
                     "leader_changes") if k in s)), flush=True)
    finally:
        c.stop(keep=a.keep or not ok)
    if ok:
        print("PASS %s" % a.scenario, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
