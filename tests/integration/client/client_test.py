#!/usr/bin/env python3
"""libstrata integration: a real strata-controller and three
strata-segmentstore processes on 127.0.0.1 (free ports, temporary
directories), driven through client_tool (the public API of libstrata.so).

Scenarios:
  failover  a writer runs while the segment store leading its segments'
            containers is killed with SIGKILL; every event is acknowledged
            and the stream holds each exactly once, in order per key.
  failover_twice  the same with a restart and a second kill (chaos).
  scale     two splits under a writer: order per key across successors.
  manage    stream manager round trip (info/head/tail, scale under a
            writer, successors, batch ranges, truncate, seal, delete).
  segments  revisioned segment (conditional appends from two handles), the
            iterator's long poll at the tail, attributes, truncation.
  txn       transactions: flushed events invisible until the commit,
            then all there in per-key order; an aborted one leaves
            nothing; one idle for twice its lease stays open (renewed in
            the background) and commits; one open across a scale
            commits (rolled into new epochs) between the events a writer
            wrote before and after the commit; one whose process died
            expires and leaves
            nothing; bad input.
  txn_failover  the failover scenario with the events written in
            transactions of 700 (one open at the kill): every transaction
            commits, every event once, in order per key.
  badinput  unknown stream, malformed stream cut, event over the size
            limit, bad names: clear messages and codes.
  diskfail  under a writer, the disk of the store leading the stream's
            containers starts failing every Raft log write (faultyio.so,
            preloaded into every store): its containers leave their groups,
            the other replicas take over; every event is acknowledged once,
            in order per key, and the store's log names the failed disk.
            Exits 77 (skipped) where the log does not use KAIO.
  diskfull  the same with that store's disk full instead (no new Raft log
            segment gets its space: ENOSPC from posix_fallocate); the log
            says "not enough space". Then the disk gets space again and the
            store restarts those replicas itself (containers.recover_after,
            30 s), without a process restart: they follow their groups
            again and every event is still there once.
usage: client_test.py SCENARIO --controller BIN --store BIN --tool BIN
                      --plugin-dir DIR [--faultyio SO]
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
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from ports import free_ports  # noqa: E402

CONTAINERS = 4


def fnv1a(text):
    h = 0xcbf29ce484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return h


class Cluster:
    def __init__(self, args, n_stores):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix="strata-client-")
        self.procs = {}
        self.logs = {}
        self.ctl_port = free_ports(1)[0]
        self.ctl_url = "tcp://127.0.0.1:%d" % self.ctl_port
        self.stores = {}
        self.start_controller()
        for i in range(1, n_stores + 1):
            self.start_new_store(i)

    def start_new_store(self, i):
        """Start store i on free ports; free_ports() releases them before
        the store binds, so a test beside this one may take one first:
        then pick others (a fresh-check once ran a failover test on two
        stores, the third had died with 'address already in use')."""
        for _ in range(3):
            p = free_ports(2)
            self.stores[i] = {"port": p[0], "raft": p[1]}
            path = os.path.join(self.dir, "store%d.log" % i)
            seen = os.path.getsize(path) if os.path.exists(path) else 0
            self.start_store(i)
            proc = self.procs["store%d" % i]
            end = time.time() + 60
            while time.time() < end:
                with open(path, errors="replace") as f:
                    f.seek(seen)
                    text = f.read()
                if "strata-segmentstore ready" in text:
                    return
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
            if proc.poll() is None or "address already in use" not in text:
                raise RuntimeError("store %d did not start: %s"
                                   % (i, text[-2000:]))
            del self.procs["store%d" % i]
        raise RuntimeError("store %d: no free ports after 3 tries" % i)

    def spawn(self, name, cmd, env=None):
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        self.logs[name] = log.name
        e = dict(os.environ)
        e.update(env or {})
        self.procs[name] = subprocess.Popen(cmd, stdout=log,
                                            stderr=subprocess.STDOUT,
                                            env=e)

    def start_controller(self):
        raft = free_ports(1)[0]
        self.spawn("controller", [
            self.args.controller,
            "--node.id=1",
            "--data-dir=" + os.path.join(self.dir, "controller"),
            "--listen=" + self.ctl_url,
            "--http.listen=http://127.0.0.1:0",
            "--raft.listen=127.0.0.1:%d" % raft,
            "--containers.count=%d" % CONTAINERS,
            "--store.lease=3s",
            "--tick.interval=200ms",
            "--raft.election-timeout=500ms",
            "--watermark.interval=200ms",
            "--watermark.writer-timeout=3s",
        ])

    def arm_file(self, i):
        """faultyio.so fails store i's log writes once this file exists."""
        return os.path.join(self.dir, "diskfail-store%d" % i)

    def start_store(self, i):
        s = self.stores[i]
        env = None
        if getattr(self.args, "faultyio", None):
            asan = os.environ.get("ASAN_OPTIONS", "")
            env = {"LD_PRELOAD": self.args.faultyio,
                   "FAULTYIO_PATH": os.path.join(self.dir, "store%d" % i)
                   + "/",
                   "FAULTYIO_ARM": self.arm_file(i),
                   "FAULTYIO_MODE": "full" if self.args.scenario ==
                   "diskfull" else "fail",
                   # ASan wants its runtime first; the shim needs none.
                   "ASAN_OPTIONS": (asan + ":" if asan else "")
                   + "verify_asan_link_order=0"}
        self.spawn("store%d" % i, [
            self.args.store,
            "--node.id=%d" % i,
            "--data-dir=" + os.path.join(self.dir, "store%d" % i),
            "--listen=tcp://127.0.0.1:%d" % s["port"],
            # Store 2 is known to clients by a host name (as docker-compose
            # and Helm advertise stores): libstrata looks it up at every
            # connect, also after its kill -9 and restart.
            "--advertise=tcp://%s:%d" % ("localhost" if i == 2 else
                                         "127.0.0.1", s["port"]),
            "--raft.listen=127.0.0.1:%d" % s["raft"],
            "--http.listen=http://127.0.0.1:0",
            "--controller=" + self.ctl_url,
            "--containers.count=%d" % CONTAINERS,
            # A new group bootstraps with the stores registered within
            # this long of each other: 1 s was not enough for the third
            # store of an ASan build on a loaded 2-core machine (its
            # groups then had 2 voters, and a kill -9 left no majority;
            # fresh-check, session 17). 3 s is the default.
            "--cluster.settle=3s",
            "--raft.election-timeout=500ms",
            "--tier2.plugin=local",
            "--tier2.plugin_dir=" + self.args.plugin_dir,
            # One tier 2 shared by every store (a new container owner
            # reads the chunks the old one flushed).
            "--tier2.options.root=" + os.path.join(self.dir, "tier2"),
            "--tier2.options.fsync=false",
        ] + ([
            # Small Raft log segments (their floor is 2 x the largest
            # entry), so the writer below makes each log need new ones.
            "--limits.max_append=64KiB",
            "--limits.max_event=60KiB",
            "--limits.batch_bytes=64KiB",
            "--raft.segment_bytes=1MiB",
        ] if getattr(self.args, "scenario", None) == "diskfull" else []),
            env)

    def leaders(self):
        """container -> node id of its newest owner, from the logs."""
        best = {}
        for i in self.stores:
            path = self.logs.get("store%d" % i)
            if path is None:
                continue
            with open(path, errors="replace") as f:
                for line in f:
                    m = re.search(r"container (\d+): node (\d+) owns it "
                                  r"in term (\d+)", line)
                    if m:
                        c, n, t = (int(x) for x in m.groups())
                        if c not in best or t > best[c][1]:
                            best[c] = (n, t)
        return {c: nt[0] for c, nt in best.items()}

    def leader_of_stream(self, scope, stream, nseg):
        """The store leading the containers of most of the stream's
        epoch-0 segments (FNV-1a 64 of the name mod the count)."""
        leaders = self.leaders()
        votes = {}
        for n in range(nseg):
            c = fnv1a("%s/%s/%d.#epoch.0" % (scope, stream, n)) % CONTAINERS
            node = leaders.get(c)
            if node is not None:
                votes[node] = votes.get(node, 0) + 1
        if not votes:
            raise RuntimeError("no container leader found in the logs")
        return max(votes, key=votes.get)

    def kill(self, name):
        p = self.procs.pop(name)
        p.send_signal(signal.SIGKILL)
        p.wait()

    def stop(self):
        for p in self.procs.values():
            p.send_signal(signal.SIGKILL)
        for p in self.procs.values():
            p.wait()
        self.procs = {}

    def dump_logs(self):
        for name, path in self.logs.items():
            with open(path, "rb") as f:
                data = f.read()[-4000:].decode(errors="replace")
            sys.stderr.write("---- %s (tail)\n%s\n" % (name, data))

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def tool(args, cluster, *cmd, timeout=120, check=True):
    full = [args.tool, cluster.ctl_url] + [str(c) for c in cmd]
    r = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d)" % (" ".join(map(str, cmd)),
                                               r.returncode))
    return r


def setup_stream(args, cluster, scope, stream, nseg, deadline_s=60):
    """Create the stream once the cluster can (stores registered)."""
    end = time.time() + deadline_s
    while True:
        r = tool(args, cluster, "setup", scope, stream, nseg, check=False)
        if r.returncode == 0:
            return
        if time.time() > end:
            raise RuntimeError("cluster not ready in %ds" % deadline_s)
        time.sleep(1)


def run_failover(args, cluster, n, plan, stream="failover", rate=600,
                 per_txn=0):
    """A writer of n events while plan [(written, "kill"|"restart"|
    "scale")] is carried out: kill -9 the store leading the stream's
    containers, restart the last victim, or split the widest segment.
    Then every event once, in order per key."""
    scope = "it"
    setup_stream(args, cluster, scope, stream, 3)
    keys = 16
    full = [args.tool, cluster.ctl_url, "write", scope, stream, n, keys,
            rate]
    if per_txn:
        full = [args.tool, cluster.ctl_url, "txnwrite", scope, stream, n,
                keys, rate, per_txn]
    w = subprocess.Popen([str(c) for c in full], stdout=subprocess.PIPE,
                         text=True)
    victim = None
    done = ""
    for line in w.stdout:
        sys.stdout.write(line)
        if line.startswith("done"):
            done = line
        if not line.startswith("written") or not plan:
            continue
        written = int(line.split()[1])
        acked = int(line.split()[3])
        if written < plan[0][0]:
            continue
        action = plan.pop(0)[1]
        if action == "scale":
            tool(args, cluster, "scale", scope, stream)
        elif action == "diskfail":
            victim = cluster.leader_of_stream(scope, stream, 3)
            print("the disk of store%d (leads the containers of the most "
                  "segments) %s from %d written, %d acknowledged" %
                  (victim, "is full" if args.scenario == "diskfull"
                   else "fails", written, acked))
            open(cluster.arm_file(victim), "w").close()
        elif action == "kill":
            victim = cluster.leader_of_stream(scope, stream, 3)
            print("kill -9 store%d (leads the containers of the most "
                  "segments) at %d written, %d acknowledged" %
                  (victim, written, acked))
            cluster.kill("store%d" % victim)
        else:
            print("restart store%d" % victim)
            cluster.start_store(victim)
        sys.stdout.flush()
    w.wait(timeout=150)
    if w.returncode != 0:
        raise RuntimeError("writer failed (%d)" % w.returncode)
    if "acked=%d failed=0" % n not in done:
        raise RuntimeError("not every event was acknowledged")
    tool(args, cluster, "verify", scope, stream, n, keys)
    return victim


def scenario_failover(args, cluster):
    """kill -9 the leading store under a writer (issue 6, (d))."""
    run_failover(args, cluster, 6000, [(1500, "kill")])


def scenario_txn_failover(args, cluster):
    """kill -9 the leading store under a writer of transactions of 700
    events, one of them open (600 events in its shadows at the kill):
    every transaction commits, every event once, in order per key
    (shadows fail over with their containers, merged by the new
    leaders)."""
    run_failover(args, cluster, 6000, [(1500, "kill")], stream="txnfo",
                 per_txn=700)


def scenario_scale(args, cluster):
    """Two splits under a writer: events follow the successors, in order
    per key, none lost or doubled."""
    run_failover(args, cluster, 6000,
                 [(1500, "scale"), (3500, "scale")], stream="scaled")


def scenario_failover_twice(args, cluster):
    """kill -9, restart, kill -9 the new leader: needs container
    membership changes in the stores (chaos label)."""
    run_failover(args, cluster, 9000,
                 [(1500, "kill"), (4000, "restart"), (6000, "kill")])


def scenario_two_stores(args, cluster):
    """Two of the three stores killed -9, restarted 12 s later: the
    third, whose containers lose their quorum and get it back, stays up
    (it crashed: libraft failed its leader barrier while stepping down,
    and the barrier was issued again inside that callback), and every
    event written before is read back."""
    setup_stream(args, cluster, "it", "two", 3)
    tool(args, cluster, "write", "it", "two", 2000, 16, 2000)
    for i in (1, 2):
        cluster.kill("store%d" % i)
    time.sleep(12)
    for i in (1, 2):
        cluster.start_store(i)
    time.sleep(20)
    dead = ["%s (exit %s)" % (n, p.returncode)
            for n, p in cluster.procs.items() if p.poll() is not None]
    if dead:
        raise RuntimeError("died after two stores came back: %s"
                           % ", ".join(dead))
    tool(args, cluster, "verify", "it", "two", 2000, 16)


def scenario_diskfail(args, cluster):
    """The leading store's disk fails (diskfail) or fills up (diskfull)
    under a writer: its containers stop, the other replicas take over,
    nothing acknowledged is lost."""
    if not args.faultyio or not os.path.isfile(args.faultyio):
        raise RuntimeError("%s needs --faultyio FILE (faultyio.so), "
                           "got %r" % (args.scenario, args.faultyio))
    full = args.scenario == "diskfull"
    # diskfull: ~5 MB, so the logs of the stream's containers roll.
    n = 30000 if full else 6000
    victim = run_failover(args, cluster, n, [(1500, "diskfail")],
                          stream=args.scenario, rate=3000 if full else 600)
    if not os.path.exists(cluster.arm_file(victim) + ".failed"):
        if full:
            raise RuntimeError("no Raft log of store%d needed a new "
                               "segment after its disk filled up" % victim)
        print("SKIP diskfail: no Raft log write of store%d went through "
              "KAIO (the file system under %s has no async direct I/O), "
              "so none could be failed" % (victim, cluster.dir))
        sys.exit(77)
    with open(cluster.logs["store%d" % victim], errors="replace") as f:
        log = f.read()
    if "a write to its Raft log" not in log:
        raise RuntimeError("store%d's log does not say its Raft log "
                           "failed" % victim)
    if full and "not enough space" not in log:
        raise RuntimeError("store%d's log does not say its disk is "
                           "full" % victim)
    left = len(re.findall(r"left the group: a write to its Raft log", log))
    print("store%d: %d group(s) left after the disk %s; every event "
          "acknowledged once, in order per key" %
          (victim, left, "filled up" if full else "failed"))
    # Health and metrics say so too.
    http = re.search(r"strata-segmentstore ready .* http=(\S+)", log).group(1)
    try:
        r = urllib.request.urlopen(http + "/health/ready", timeout=5)
        code, body = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        code, body = e.code, e.read().decode()
    if '"log_failed":%d' % left not in body or '"status":"ready"' in body:
        raise RuntimeError("store%d /health/ready: %d %s" %
                           (victim, code, body))
    print("store%d /health/ready: %d %s" % (victim, code, body))
    metrics = urllib.request.urlopen(http + "/metrics",
                                     timeout=5).read().decode()
    m = re.search(r"^strata_segmentstore_log_failed_containers (\S+)$",
                  metrics, re.M)
    if m is None or float(m.group(1)) != left:
        raise RuntimeError("store%d log_failed_containers: %s" %
                           (victim, m and m.group(1)))
    if full:
        recover_in_process(args, cluster, victim, log, left, http, n)
        return
    # The disk replaced, the store restarts on its data: it reloads its
    # logs up to their last good write and follows its groups again.
    cluster.kill("store%d" % victim)
    os.remove(cluster.arm_file(victim))
    offset = os.path.getsize(cluster.logs["store%d" % victim])
    cluster.start_store(victim)
    end = time.time() + 30
    following = set()
    while len(following) < CONTAINERS and time.time() < end:
        time.sleep(0.5)
        with open(cluster.logs["store%d" % victim], errors="replace") as f:
            f.seek(offset)
            following |= set(re.findall(r"group (\d+): node \d+ sees "
                                        r"leader", f.read()))
    if len(following) < CONTAINERS:
        raise RuntimeError("restarted store%d follows %d of %d groups" %
                           (victim, len(following), CONTAINERS))
    tool(args, cluster, "verify", "it", args.scenario, n, 16)
    print("store%d restarted: follows all %d groups again" %
          (victim, CONTAINERS))


def recover_in_process(args, cluster, victim, log, left, http, n):
    """The full disk gets space again: the store restarts the replicas
    whose log failed (containers.recover_after after the failure), they
    reload their logs and follow their groups; no process restart."""
    failed = set(re.findall(r"group (\d+): node \d+ left the group: a "
                            r"write to its Raft log", log))
    path = cluster.logs["store%d" % victim]
    offset = os.path.getsize(path)
    os.remove(cluster.arm_file(victim))
    print("store%d: space again; waiting for it to restart group(s) %s" %
          (victim, ",".join(sorted(failed))))
    end = time.time() + 90
    back = set()
    body = ""
    while time.time() < end:
        time.sleep(1.0)
        with open(path, errors="replace") as f:
            f.seek(offset)
            since = f.read()
        back = set(re.findall(r"group (\d+): node \d+ sees leader", since))
        try:
            r = urllib.request.urlopen(http + "/health/ready", timeout=5)
            body = r.read().decode()
        except urllib.error.HTTPError as e:
            body = e.read().decode()
        if failed <= back and '"log_failed":0' in body:
            break
    if not failed <= back or '"log_failed":0' not in body:
        raise RuntimeError("store%d did not recover group(s) %s in-process "
                           "(following %s; health %s)" %
                           (victim, ",".join(sorted(failed - back)),
                            ",".join(sorted(back)), body))
    restarts = len(re.findall(r"restarting its replica after a Raft log "
                              r"failure", since))
    if restarts < left or cluster.procs["store%d" % victim].poll() is not None:
        raise RuntimeError("store%d: %d in-process restart(s) for %d failed "
                           "group(s)" % (victim, restarts, left))
    tool(args, cluster, "verify", "it", args.scenario, n, 16)
    print("store%d recovered in-process: %d replica(s) restarted, all "
          "groups followed, health %s" % (victim, restarts, body))


def scenario_manage(args, cluster):
    setup_stream(args, cluster, "it", "managed", 2)
    tool(args, cluster, "manage", "it", "managed")
    # Readers that retention or a truncate overtook go on past it.
    setup_stream(args, cluster, "it", "overtaken", 1)
    tool(args, cluster, "truncread", "it", "overtaken")


def scenario_txn(args, cluster):
    setup_stream(args, cluster, "it", "txn", 2)
    tool(args, cluster, "txn", "it", "txn")
    # Its process dies: nothing renews the lease, the controller aborts
    # it and none of its events is ever read.
    out = tool(args, cluster, "txnorphan", "it", "txn").stdout
    txn_id = re.search(r"orphan (\d+)", out).group(1)
    tool(args, cluster, "txnaborted", "it", "txn", txn_id)
    tool(args, cluster, "verify", "it", "txn", 130 * 6, 6)
    # A reader group meets the rolled epochs as successors, in order.
    tool(args, cluster, "rgverify", "it", "txn", 130 * 6, 6)
    # Two-phase commit across processes: one flushes a transaction and
    # dies after "the checkpoint"; another (the restored pipeline)
    # commits it by id, twice; its events are there once.
    setup_stream(args, cluster, "it", "twophase", 2)
    out = tool(args, cluster, "txnprepare", "it", "twophase", 0, 300).stdout
    txn_id = re.search(r"prepared (\d+)", out).group(1)
    tool(args, cluster, "txncommit", "it", "twophase", txn_id)
    tool(args, cluster, "verify", "it", "twophase", 300 * 2, 2)
    # The same with a scale between the checkpoint and the restore: the
    # commit by id rolls the transaction into new epochs.
    out = tool(args, cluster, "txnprepare", "it", "twophase", 300,
               500).stdout
    txn_id = re.search(r"prepared (\d+)", out).group(1)
    tool(args, cluster, "scale", "it", "twophase")
    tool(args, cluster, "txncommit", "it", "twophase", txn_id)
    tool(args, cluster, "verify", "it", "twophase", 500 * 2, 2)


def scenario_segments(args, cluster):
    setup_stream(args, cluster, "it", "sync", 1)
    tool(args, cluster, "segments", "it", "sync")


def scenario_badinput(args, cluster):
    setup_stream(args, cluster, "it", "bad", 1)
    tool(args, cluster, "badinput", "it", "bad")
    # A second controller or store on a running one's data directory
    # refuses to start (it would write the same Raft log).
    ports = free_ports(3)
    for name, cmd in (
            ("controller", [args.controller, "--node.id=1",
                            "--data-dir=" + os.path.join(cluster.dir,
                                                         "controller"),
                            "--listen=tcp://127.0.0.1:%d" % ports[0],
                            "--raft.listen=127.0.0.1:%d" % ports[1],
                            "--http.listen=http://127.0.0.1:%d"
                            % ports[2]]),
            ("store1", [args.store, "--node.id=1",
                        "--data-dir=" + os.path.join(cluster.dir, "store1"),
                        "--listen=tcp://127.0.0.1:%d" % ports[0],
                        "--raft.listen=127.0.0.1:%d" % ports[1],
                        "--http.listen=http://127.0.0.1:%d" % ports[2],
                        "--controller=" + cluster.ctl_url,
                        "--tier2.plugin_dir=" + args.plugin_dir])):
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        want = "in use by another process (pid %d)" % cluster.procs[name].pid
        if p.returncode != 1 or want not in p.stderr:
            raise RuntimeError("a second %s on one data dir: exit %d %s"
                               % (name, p.returncode, p.stderr))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario",
                    choices=["failover", "failover_twice", "scale",
                             "manage", "segments", "badinput", "txn",
                             "txn_failover", "two_stores",
                             "diskfail", "diskfull"])
    ap.add_argument("--controller", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--tool", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--faultyio", help="faultyio.so (diskfail, diskfull)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    cluster = Cluster(args, 3)
    ok = False
    try:
        {"failover": scenario_failover,
         "failover_twice": scenario_failover_twice,
         "scale": scenario_scale,
         "manage": scenario_manage,
         "segments": scenario_segments,
         "badinput": scenario_badinput,
         "txn": scenario_txn,
         "txn_failover": scenario_txn_failover,
         "two_stores": scenario_two_stores,
         "diskfail": scenario_diskfail,
         "diskfull": scenario_diskfail}[args.scenario](args, cluster)
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
