#!/usr/bin/env python3
"""Tier 2 end to end: a real standalone strata-segmentstore over real
tier-2 backends (s3rver through the s3 plugin, the faulty plugin wrapping
s3, the mem plugin), driven with ss_tool (writer ids, known event numbers,
read-back of every acknowledged event).

  s3_bulk     the store writes --mib MiB through the s3 plugin; every byte
              lands as objects in the bucket (listed with boto3, named by
              the chunk layout); after a restart (read cache dropped) a
              reader from the head gets all of it back, from S3.
  s3_outage   s3rver is killed -9 while writers run and restarted on the
              same port and data a while later: ingest goes on into Tier 1
              up to the unflushed budget, then clean back-pressure
              (STRATA_EAGAIN), /health/ready says "degraded", tier-2 write
              errors are counted; when S3 is back flushing resumes, health
              is "ready" again, no acknowledged event is lost and every
              byte is in the bucket.
  s3_hung     s3rver is frozen (SIGSTOP) instead: requests time out
              (io_timeout_ms), same outcome once it continues (SIGCONT).
  slow        the faulty plugin adds delay_ms to every op of s3: flushing
              falls behind, appends get back-pressure, nothing fails
              (health stays "ready", no write errors), the write latency
              histogram shows the delay; everything flushes in the end.
  full        the faulty plugin answers ENOSPC (fail_file) over s3: as
              s3_outage, and the log names "no space"; then space is back.
  mem_full    the mem plugin with max_bytes: a real plugin running out of
              space; flushing stops at max_bytes, ingest continues up to
              the budget, back-pressure, degraded; reads of everything
              still work (tier 2 below, Tier 1 above).

Usage: t2e2e_test.py SCENARIO --store PATH --tool PATH --plugin-dir DIR
                     [--s3-install DIR] [--mib N] [--keep]
Exit 0 on success, 1 with a reason on failure.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "segmentstore"))
sys.path.insert(0, os.path.join(HERE, "..", "s3"))
import s3rver  # noqa: E402
import ss_test  # noqa: E402
from ss_test import (Failure, Store, check, log, parse_acks,  # noqa: E402
                     segment_info, tool, tool_bg, verify, wait_flushed)

MIB = 1 << 20
CHUNK_KEY_RE = re.compile(
    r"^c(\d+)/s(\d+)/t(\d+)-g(\d+)-o(\d+)-(\d+)/(\d{20})(\.crc)?$")


# ------------------------------------------------------------ s3 helpers

class S3Server(s3rver.S3rver):
    """A private s3rver that can be killed and brought back on the same
    port with the same data (S3rver.start always starts empty, port 0)."""

    def restart(self, timeout=60):
        exe = s3rver.install(self.install_dir)
        self.log_file = os.path.join(self.state_dir, "%s.%d.log" % (
            self.name, int(time.time() * 1000)))
        cmd = [exe, "-d", self.data, "-a", "127.0.0.1", "-p",
               str(self.port), "--configure-bucket", s3rver.BUCKET]
        deadline = time.time() + timeout
        while True:
            logf = open(self.log_file, "w")
            self.proc = subprocess.Popen(cmd, stdout=logf, stderr=logf,
                                         stdin=subprocess.DEVNULL,
                                         start_new_session=True)
            logf.close()
            while time.time() < deadline:
                with open(self.log_file) as f:
                    text = f.read()
                if "listening on 127.0.0.1:%d" % self.port in text:
                    log("s3rver back on port %d (pid %d)" % (
                        self.port, self.proc.pid))
                    return
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
            if time.time() >= deadline:
                self.kill()
                raise Failure("s3rver did not come back on port %d; see "
                              "%s" % (self.port, self.log_file))
            time.sleep(0.5)  # port still held: try again

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)


def s3_start(args, base):
    s = S3Server(os.path.join(base, "s3"), "t2e2e",
                 install_dir=args.s3_install)
    s.start()
    log("s3rver on %s (pid %d)" % (s.endpoint, s.proc.pid))
    ss_test._children.append(s.proc)
    return s


def s3_options(s3, prefix, key="tier2.options."):
    """Flags configuring the s3 plugin (key: where its options go)."""
    opts = {"endpoint": s3.endpoint, "bucket": s3rver.BUCKET,
            "prefix": prefix, "access_key_id": s3rver.ACCESS_KEY,
            "secret_access_key": s3rver.SECRET_KEY,
            # Fail fast when S3 is down: the storage writer retries.
            "retries": "1", "retry_budget_ms": "2000",
            "connect_timeout_ms": "1000", "io_timeout_ms": "3000"}
    flags = ["--%s%s=%s" % (key, k, v) for k, v in opts.items()]
    if key == "tier2.options.":
        flags.insert(0, "--tier2.plugin=s3")
    return flags


def boto(s3):
    import boto3
    from botocore.config import Config
    return boto3.client(
        "s3", endpoint_url=s3.endpoint, region_name="us-east-1",
        aws_access_key_id=s3rver.ACCESS_KEY,
        aws_secret_access_key=s3rver.SECRET_KEY,
        config=Config(s3={"addressing_style": "path"},
                      retries={"max_attempts": 2}))


def bucket_chunks(s3, prefix):
    """chunk name -> [(offset, size)] of the objects under prefix/, each
    key checked against the storage writer's chunk layout."""
    cli = boto(s3)
    chunks = {}
    pages = cli.get_paginator("list_objects_v2").paginate(
        Bucket=s3rver.BUCKET, Prefix=prefix + "/")
    for page in pages:
        for o in page.get("Contents", []):
            key = o["Key"][len(prefix) + 1:]
            m = CHUNK_KEY_RE.match(key)
            check(m is not None, "unexpected object %r in the bucket"
                  % o["Key"])
            chunk = key.rsplit("/", 1)[0]
            size = o["Size"]
            if m.group(8):  # framed: a 4-byte CRC per 64 KiB block
                size -= 4 * ((size + 65539) // 65540)
            chunks.setdefault(chunk, []).append((int(m.group(7)), size))
    for name, objs in chunks.items():
        objs.sort()
        pos = 0
        for off, size in objs:
            check(off == pos, "chunk %s: object at %d, expected %d" % (
                name, off, pos))
            pos += size
    return chunks


def check_bucket_holds(s3, prefix, st, segs):
    """Every flushed byte of segs is in the bucket: per segment, the
    chunks of that segment hold at least its length."""
    chunks = bucket_chunks(s3, prefix)
    per_seg = {}
    for name, objs in chunks.items():
        sid = int(name.split("/")[1][1:])
        per_seg[sid] = per_seg.get(sid, 0) + sum(s for _, s in objs)
    total = sum(per_seg.values())
    want = sum(segment_info(st.args, [st.url], s)["length"] for s in segs)
    log("bucket: %d chunks, %d objects, %d bytes; segments hold %d bytes"
        % (len(chunks), sum(len(o) for o in chunks.values()), total,
           want))
    check(total >= want, "bucket holds %d bytes, segments %d" % (total,
                                                                 want))
    return chunks, total


# --------------------------------------------------------- store helpers

def health(st):
    code, body = st.get("/health/ready")
    try:
        return code, json.loads(body)
    except ValueError:
        raise Failure("/health/ready answered %d %r (not JSON)" % (code,
                                                                    body))


def wait_status(st, status, timeout):
    deadline = time.time() + timeout
    h = None
    while time.time() < deadline:
        code, h = health(st)
        if code == 200 and h.get("status") == status:
            return h
        time.sleep(0.2)
    raise Failure("/health/ready not %r within %ds: %s" % (status, timeout,
                                                           h))


def wait_metric(st, name, pred, timeout, what):
    deadline = time.time() + timeout
    v = None
    while time.time() < deadline:
        v = st.metric(name)
        if v is not None and pred(v):
            return v
        time.sleep(0.2)
    raise Failure("%s: %s = %s after %ds" % (what, name, v, timeout))


def metric0(st, name):
    return st.metric(name) or 0


def log_text(st):
    with open(os.path.join(st.dir, "store.log"), errors="replace") as f:
        return f.read()


def total_length(st, segs):
    return sum(segment_info(st.args, [st.url], s)["length"] for s in segs)


def wait_all_flushed(st, segs, timeout):
    for s in segs:
        wait_flushed(st.args, [st.url], s, timeout=timeout)


def store_args(tier2, budget="4MiB", extra=()):
    return ["--containers.count=1", "--limits.unflushed-budget=%s" % budget,
            "--flush.age=200ms", "--flush.bytes=256KiB",
            "--raft.election-timeout=1s"] + tier2 + list(extra)


# ------------------------------------------------------------- scenarios

def scenario_s3_bulk(args, base):
    s3 = s3_start(args, base)
    prefix = "bulk"
    st = Store(args, base, 1, [
        "--containers.count=2", "--flush.age=500ms",
        "--limits.cache-budget=64MiB", "--flush.chunk-bytes=16MiB"] +
        s3_options(s3, prefix))
    st.start()
    st.wait_ready()
    segs = ["sc/bulk/0.#epoch.0", "sc/bulk/1.#epoch.0"]
    writers, size, batch = 4, 4000, 50
    events = max(1, (args.mib * MIB + writers * size - 1) //
                 (writers * size))
    t0 = time.time()
    rc, out, err = tool(args, "append", [st.url], segs, "--create",
                        "--writers", writers, "--events", events,
                        "--event-size", size, "--batch", batch,
                        "--window", 8, "--deadline-s", 600, timeout=900)
    check(rc == 0, "append: %s %s" % (out, err))
    acks = parse_acks(out)
    total = total_length(st, segs)
    log("appended %.1f MiB in %.1fs" % (total / MIB, time.time() - t0))
    check(total >= args.mib * MIB, "only %d bytes appended" % total)
    wait_all_flushed(st, segs, timeout=300)
    log("all flushed to S3 %.1fs after the start" % (time.time() - t0))
    chunks, in_bucket = check_bucket_holds(s3, prefix, st, segs)
    written = metric0(st, "strata_segmentstore_tier2_written_bytes_total")
    check(written >= total, "tier-2 written bytes %d < %d" % (written,
                                                              total))
    # Drop the cache: restart the store, then read from the head.
    st.stop()
    st.start()
    st.wait_ready()
    before = metric0(st, "strata_segmentstore_tier2_read_bytes_total")
    check(before == 0, "fresh store already read %d bytes" % before)
    t1 = time.time()
    verify(args, [st.url], segs, acks)
    got = metric0(st, "strata_segmentstore_tier2_read_bytes_total")
    log("read back %.1f MiB in %.1fs; %d bytes came from S3" % (
        total / MIB, time.time() - t1, got))
    check(got >= total, "only %d of %d bytes were read from tier 2" % (
        got, total))
    check(metric0(st, "strata_segmentstore_tier2_read_errors_total") == 0,
          "tier-2 read errors")
    damaged_object_is_an_error(args, st, s3, prefix, segs, acks)
    st.stop()


def damaged_object_is_an_error(args, st, s3, prefix, segs, acks):
    """A byte changed in an object behind Strata's back: the read of the
    segment holding it fails as damaged (the block's CRC32C), never
    returns the changed event; the other segment still reads."""
    cli = boto(s3)
    keys = sorted(o["Key"] for page in cli.get_paginator(
        "list_objects_v2").paginate(Bucket=s3rver.BUCKET,
                                    Prefix=prefix + "/")
        for o in page.get("Contents", []) if o["Key"].endswith(".crc"))
    check(keys, "no framed (.crc) object in %s" % prefix)
    key = keys[0]
    body = bytearray(cli.get_object(Bucket=s3rver.BUCKET, Key=key)
                     ["Body"].read())
    body[1000] ^= 0x01  # inside an event of block 0
    cli.put_object(Bucket=s3rver.BUCKET, Key=key, Body=bytes(body))
    st.stop()
    st.start()
    st.wait_ready()
    failed = []
    for seg in segs:
        exp = ",".join("%d:%d" % (w, a[1]) for w, a in sorted(acks.items())
                       if a[0] == seg)
        rc, out, err = tool(args, "verify", [st.url], [seg], "--expect",
                            exp)
        if rc != 0:
            check("damaged" in out + err,
                  "%s fails naming the damage, not with wrong data: "
                  "%s %s" % (seg, out[-300:], err[-300:]))
            failed.append(seg)
    check(len(failed) == 1, "exactly the segment holding %s fails to "
          "read (failed: %s)" % (key, failed))
    check("fails its checksum" in log_text(st),
          "the store's log names the object that fails its checksum")
    log("a changed byte in %s failed the read of %s only" % (key,
                                                             failed[0]))


def outage_common(args, base, st, segs, s3, prefix, break_fn, heal_fn,
                  budget, expect_log=None, down_s=8.0):
    """Writers run; break_fn() breaks tier 2; checks the degraded phase;
    heal_fn() repairs it; checks recovery. Returns the acks."""
    rc, out, err = tool(args, "append", [st.url], segs, "--create",
                        "--writers", 2, "--events", 500,
                        "--event-size", 1000, "--batch", 20)
    check(rc == 0, "warm-up append: %s %s" % (out, err))
    acks = parse_acks(out)
    wait_all_flushed(st, segs, timeout=30)
    check(health(st)[1].get("status") == "ready", "not ready before")
    err0 = metric0(st, "strata_segmentstore_tier2_write_errors_total")
    check(err0 == 0, "tier-2 write errors before the fault: %d" % err0)
    # Writers that outlast the fault: 8 MiB against a smaller budget.
    w = tool_bg(args, "append", [st.url], segs, "--writers", 2,
                "--writer0", 10, "--events", 4000, "--event-size", 1000,
                "--batch", 20, "--window", 4, "--rate", 50,
                "--deadline-s", 100)
    time.sleep(1.0)
    break_fn()
    t_break = time.time()
    # Degraded, errors counted, ingest continues into Tier 1.
    # (hung: only once the plugin's timeouts end the job in progress)
    h = wait_status(st, "degraded", 60)
    log("health while tier 2 is broken: %s" % h)
    errs = wait_metric(st, "strata_segmentstore_tier2_write_errors_total",
                       lambda v: v > 0, 10, "write errors not counted")
    unfl = wait_metric(st, "strata_segmentstore_unflushed_bytes",
                       lambda v: v >= MIB, 30,
                       "ingest did not continue into Tier 1")
    check(metric0(st, "strata_segmentstore_tier2_degraded_containers") >= 1,
          "tier2_degraded_containers gauge not set")
    log("tier 2 broken for %.1fs: %d write errors, %d unflushed bytes, "
        "writers still acknowledged" % (time.time() - t_break, errs, unfl))
    # Budget reached: clean back-pressure, bounded memory.
    bp = wait_metric(st, "strata_segmentstore_backpressure_total",
                     lambda v: v > 0, 60, "no back-pressure")
    unfl = metric0(st, "strata_segmentstore_unflushed_bytes")
    log("back-pressure: %d refusals; unflushed %d bytes (budget %d)" % (
        bp, unfl, budget))
    check(unfl <= budget + 2 * MIB, "unflushed %d bytes exceed the budget "
          "%d" % (unfl, budget))
    check(w.poll() is None, "writers ended while tier 2 was broken")
    # Stay broken a while longer: writers keep getting back-pressure.
    time.sleep(max(2.0, down_s - (time.time() - t_break)))
    text = log_text(st)
    check("tier 2 failed" in text, "no WARN 'tier 2 failed' in the log")
    if expect_log is not None:
        check(re.search(expect_log, text, re.I) is not None,
              "the log does not say %r" % expect_log)
    heal_fn()
    log("tier 2 back after %.1fs" % (time.time() - t_break))
    out, err = w.communicate(timeout=150)
    check(w.returncode == 0, "writers after the fault: %s %s" % (out, err))
    a = parse_acks(out)
    check(sum(int(v[2]["backpressure"]) for v in a.values()) > 0,
          "writers saw no back-pressure: %s" % out)
    acks.update(a)
    wait_all_flushed(st, segs, timeout=60)
    wait_status(st, "ready", 30)
    check("flushing resumed" in log_text(st),
          "no INFO 'flushing resumed' in the log")
    verify(args, [st.url], segs, acks)
    if s3 is not None:
        check_bucket_holds(s3, prefix, st, segs)
    return acks


def scenario_s3_outage(args, base, hung=False):
    s3 = s3_start(args, base)
    prefix = "outage"
    budget = 4 * MIB
    st = Store(args, base, 1, store_args(s3_options(s3, prefix), "4MiB"))
    st.start()
    st.wait_ready()
    segs = ["sc/out/0.#epoch.0", "sc/out/1.#epoch.0"]
    if hung:
        acks = outage_common(args, base, st, segs, s3, prefix, s3.pause,
                             s3.resume, budget, "timed out|timeout")
    else:
        acks = outage_common(args, base, st, segs, s3, prefix,
                             lambda: (s3.kill(), log("s3rver killed -9")),
                             s3.restart, budget, "connection refused")
    # And it all comes back from S3 alone: restart, read from the head.
    st.stop()
    st.start()
    st.wait_ready()
    verify(args, [st.url], segs, acks)
    check(metric0(st, "strata_segmentstore_tier2_read_bytes_total") >=
          total_length(st, segs), "reads after the restart not from S3")
    st.stop()
    s3.stop()


def scenario_s3_hung(args, base):
    scenario_s3_outage(args, base, hung=True)


def scenario_full(args, base):
    s3 = s3_start(args, base)
    prefix = "full"
    fail = os.path.join(base, "tier2_full")
    budget = 4 * MIB
    st = Store(args, base, 1, store_args(
        ["--tier2.plugin=faulty", "--tier2.options.parent_plugin=s3",
         "--tier2.options.fail_code=ENOSPC",
         "--tier2.options.fail_file=%s" % fail] +
        s3_options(s3, prefix, "tier2.options.parent."), "4MiB"))
    st.start()
    st.wait_ready()
    segs = ["sc/full/0.#epoch.0"]
    outage_common(args, base, st, segs, s3, prefix,
                  lambda: open(fail, "w").close(),
                  lambda: os.unlink(fail), budget, "no space")
    st.stop()
    s3.stop()


def scenario_slow(args, base):
    s3 = s3_start(args, base)
    prefix = "slow"
    delay_ms = 300
    budget = MIB
    st = Store(args, base, 1, store_args(
        ["--tier2.plugin=faulty", "--tier2.options.parent_plugin=s3",
         "--tier2.options.delay_ms=%d" % delay_ms,
         # Small chunks: each flush job is at most 128 KiB per segment.
         "--flush.chunk-bytes=128KiB"] +
        s3_options(s3, prefix, "tier2.options.parent."), "1MiB"))
    st.start()
    st.wait_ready()
    segs = ["sc/slow/0.#epoch.0"]
    t0 = time.time()
    w = tool_bg(args, "append", [st.url], segs, "--create", "--writers", 2,
                "--events", 1500, "--event-size", 1000, "--batch", 20,
                "--window", 4, "--deadline-s", 100)
    statuses = set()
    peak = 0
    while w.poll() is None and time.time() - t0 < 110:
        statuses.add(health(st)[1].get("status"))
        peak = max(peak, metric0(st, "strata_segmentstore_unflushed_bytes"))
        time.sleep(0.2)
    out, err = w.communicate(timeout=30)
    check(w.returncode == 0, "writers: %s %s" % (out, err))
    acks = parse_acks(out)
    log("writers done in %.1fs; health seen: %s" % (time.time() - t0,
                                                   sorted(statuses)))
    check(statuses == {"ready"}, "health was %s while tier 2 was only slow"
          % sorted(statuses))
    log("peak unflushed %d bytes (budget %d)" % (peak, budget))
    check(peak <= budget + MIB, "unflushed %d bytes exceed the budget" %
          peak)
    bp = metric0(st, "strata_segmentstore_backpressure_total")
    check(bp > 0, "no back-pressure although tier 2 was slow")
    check(sum(int(v[2]["backpressure"]) for v in acks.values()) > 0,
          "writers saw no back-pressure")
    check(metric0(st, "strata_segmentstore_tier2_write_errors_total") == 0,
          "a slow tier 2 produced write errors")
    n = metric0(st, "strata_segmentstore_tier2_write_seconds_count")
    s = metric0(st, "strata_segmentstore_tier2_write_seconds_sum")
    log("back-pressure %d refusals; tier-2 writes %d, mean %.3fs" % (
        bp, n, s / n if n else 0))
    check(n > 0 and s / n >= delay_ms / 1000.0 * 0.9,
          "write latency histogram does not show the %d ms delay" %
          delay_ms)
    wait_all_flushed(st, segs, timeout=60)
    verify(args, [st.url], segs, acks)
    check_bucket_holds(s3, prefix, st, segs)
    st.stop()
    s3.stop()


def scenario_mem_full(args, base):
    max_bytes = MIB
    budget = 4 * MIB
    st = Store(args, base, 1, store_args(
        ["--tier2.plugin=mem", "--tier2.options.max_bytes=%d" % max_bytes],
        "4MiB"))
    st.start()
    st.wait_ready()
    segs = ["sc/mem/0.#epoch.0"]
    w = tool_bg(args, "append", [st.url], segs, "--create", "--writers", 2,
                "--events", 4000, "--event-size", 1000, "--batch", 20,
                "--window", 4, "--deadline-s", 12)
    h = wait_status(st, "degraded", 30)
    log("health: %s" % h)
    wait_metric(st, "strata_segmentstore_backpressure_total",
                lambda v: v > 0, 30, "no back-pressure")
    out, err = w.communicate(timeout=60)
    acks = parse_acks(out)
    # The writers give up at their deadline: tier 2 stays full (nothing
    # deletes chunks here) and the budget stays used.
    check(w.returncode != 0 and "STRATA_EAGAIN" in out,
          "writers finished although tier 2 was full: %s" % out)
    info = segment_info(args, [st.url], segs[0])
    log("segment: %s" % info)
    check(0 < info["flushed"] <= max_bytes,
          "flushed %d, max_bytes %d" % (info["flushed"], max_bytes))
    unfl = metric0(st, "strata_segmentstore_unflushed_bytes")
    check(unfl <= budget + 2 * MIB, "unflushed %d exceeds the budget" %
          unfl)
    check(metric0(st, "strata_segmentstore_tier2_write_errors_total") > 0,
          "write errors not counted")
    check(re.search("max_bytes", log_text(st)) is not None,
          "the log does not name max_bytes")
    # Every acknowledged event reads back: tier 2 below, Tier 1 above.
    verify(args, [st.url], segs, acks)
    st.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("scenario", choices=["s3_bulk", "s3_outage", "s3_hung",
                                         "slow", "full", "mem_full"])
    ap.add_argument("--store", required=True)
    ap.add_argument("--tool", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--s3-install",
                    help="where setup-s3rver.sh installs s3rver")
    ap.add_argument("--mib", type=int, default=100,
                    help="s3_bulk: MiB to write (default 100)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory")
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="t2e2e_%s." % args.scenario, dir="/tmp")
    t0 = time.time()
    ok = False
    try:
        globals()["scenario_" + args.scenario](args, base)
        ok = True
    except Failure as e:
        log("FAIL: %s" % e)
    except subprocess.TimeoutExpired as e:
        log("FAIL: timeout: %s" % e)
    finally:
        for p in list(ss_test._children):
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)
                except OSError:
                    pass
                p.kill()
                p.wait()
        if ok and not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            log("kept %s" % base)
    log("%s %s in %.1fs" % (args.scenario, "PASSED" if ok else "FAILED",
                            time.time() - t0))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
