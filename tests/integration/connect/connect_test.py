#!/usr/bin/env python3
"""strata-connect against a real strata-standalone process on 127.0.0.1.

  exactly_once  a file grows while one strata-connect imports it into a
             stream (follow=true, 200 ms checkpoints) and another
             exports that stream into a second file; each is killed
             with SIGKILL five times and restarted. The import stops on
             SIGTERM once caught up: every line is in the stream once,
             in order. The stream is sealed and the export ends (exit
             0): its file is the input, byte for byte; a rerun changes
             nothing.
  mirror     the same, but the export's sink is the strata connector
             writing into a stream of a second strata-standalone (one
             transaction per checkpoint, committed by id): the mirror
             stream holds the input once, in order.
  stdio      at least once through stdin and stdout: lines piped in are
             read back on stdout.
  http       the http connector against a real HTTP server process
             (tests/integration/lib/http_test_server.py): a document
             growing on the server is imported with ranged GETs
             (follow=true) across three SIGKILLs: the stream holds every
             line once, in order. The stream is exported to the server
             by POST (at least once) across three SIGKILLs: every line
             arrives, in order once duplicates are dropped.
  mqtt_import  a mosquitto broker (Debian package mosquitto) and four
             mosquitto_pub (mosquitto-clients) publishing 1500 messages
             each on their own topic at QoS 1 while strata-connect
             imports dev/# (a persistent session); the import is stopped
             with SIGTERM half way and started again while they publish:
             the stream holds every message, in order per topic. Also a
             bad option, exactly once and a broker that is not there:
             each refused with a clear message.
  mqtt_export  a stream filled from a growing file is exported to an
             MQTT topic (QoS 1, at least once) while mosquitto_sub
             collects it; the export is SIGKILLed twice and restarted:
             every event arrives, each run in order, duplicates counted.
  mqtt_sink_qos2  the mqtt sink at qos=2 with its defaults (more in
             flight than mosquitto takes loses messages silently), then
             idle across a kill -9 and restart of the broker: every
             event arrives and the export ends with exit 0.
  bad_input  missing and unknown keys, an unknown connector, exactly
             once with a source or sink that cannot do it, a stream
             that does not exist, a damaged checkpoint file, another
             pipeline's checkpoint file, a line over limits.max_event:
             each a clear message and exit code 1 or 2, and nothing
             written.

Usage: connect_test.py SCENARIO --standalone PATH --stratactl PATH
                       --connect PATH
Exit 0 on success, 1 with a reason on failure.
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "cli"))
from cli_test import (Ctl, Failure, Standalone, check,  # noqa: E402
                      events_by_key, log)
from ports import free_ports  # noqa: E402

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


class Connect:
    """Runs strata-connect with common flags against one standalone."""

    def __init__(self, path, url, base):
        self.path, self.url, self.base = path, url, base
        self.n = 0

    def cmd(self, *flags):
        return [self.path, "--controller=%s" % self.url] + list(flags)

    def start(self, *flags):
        self.n += 1
        out = open(os.path.join(self.base, "connect-%d.log" % self.n), "w+")
        p = subprocess.Popen(self.cmd(*flags), stdout=out,
                             stderr=subprocess.STDOUT)
        p.logfile = out
        return p

    def run(self, *flags, expect=EXIT_OK, stdin=None, timeout=120):
        p = subprocess.run(self.cmd(*flags), input=stdin,
                           capture_output=True, timeout=timeout)
        out = p.stdout.decode(errors="replace")
        err = p.stderr.decode(errors="replace")
        if expect is not None and p.returncode != expect:
            raise Failure("strata-connect %s: exit %d, expected %d\n"
                          "stdout: %s\nstderr: %s"
                          % (" ".join(flags), p.returncode, expect,
                             out[:2000], err[-3000:]))
        return out, err


def tail(p):
    p.logfile.seek(0)
    return p.logfile.read()[-3000:]


def committed_token(path):
    """The committed source token of an import checkpoint file, or -1."""
    try:
        with open(path) as f:
            for ln in f:
                if ln.startswith("committed="):
                    return int(ln.split("=", 1)[1])
    except OSError:
        pass
    return -1


def grow_file(path, total, line, every=500, pause=0.05):
    """Start a thread that creates path and appends total lines, line(i)
    each, flushing every `every` lines and pausing `pause` s after each
    flush; join it."""
    open(path, "w").close()

    def grow():
        with open(path, "a") as f:
            for i in range(total):
                f.write(line(i))
                if i % every == every - 1:
                    f.flush()
                    time.sleep(pause)

    t = threading.Thread(target=grow)
    t.start()
    return t


def stop_caught_up(p, ckpt, path):
    """Wait (60 s at most) until import p has committed all of path (its
    checkpoint file ckpt says so), then SIGTERM it: exit 0 required."""
    size = os.path.getsize(path)
    deadline = time.monotonic() + 60
    while committed_token(ckpt) != size:
        check(time.monotonic() < deadline and p.poll() is None,
              "import did not catch up (%d of %d): %s"
              % (committed_token(ckpt), size, tail(p)))
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    rc = p.wait(60)
    check(rc == 0, "import exit %d on SIGTERM: %s" % (rc, tail(p)))


def scenario_exactly_once(args, base, mirror=False):
    sa = Standalone(args.standalone, base)
    sa.start()
    sb = None
    if mirror:
        sb = Standalone(args.standalone, base, name="sb")
        sb.start()
        ctlb = Ctl(args.stratactl, sb.url)
        ctlb.run("scope", "create", "mirror")
        ctlb.run("stream", "create", "mirror/lines", "--segments", "2")
    try:
        ctl = Ctl(args.stratactl, sa.url)
        ctl.run("scope", "create", "ct")
        ctl.run("stream", "create", "ct/lines", "--segments", "3")
        con = Connect(args.connect, sa.url, base)
        src = os.path.join(base, "in.log")
        ckpt = os.path.join(base, "import.ckpt")
        total = 60000
        writer = grow_file(src, total,
                           lambda i: "line-%06d %s\n" % (i, "x" * (i % 50)))
        flags = ["--mode=import", "--stream=ct/lines",
                 "--connector.plugin=file",
                 "--connector.options.path=%s" % src,
                 "--connector.options.follow=true",
                 "--checkpoint.file=%s" % ckpt,
                 "--checkpoint.interval=200ms", "--txn.lease=1m"]
        dst = os.path.join(base, "out.log")
        eckpt = os.path.join(base, "export.ckpt")
        eflags = ["--mode=export", "--stream=ct/lines",
                  "--checkpoint.file=%s" % eckpt,
                  "--checkpoint.interval=200ms"]
        if mirror:
            eflags += ["--connector.plugin=strata",
                       "--connector.options.controller=%s" % sb.url,
                       "--connector.options.stream=mirror/lines",
                       "--connector.options.lease_ms=60000"]
        else:
            eflags += ["--connector.plugin=file",
                       "--connector.options.path=%s" % dst]

        def out_size():
            if mirror:  # what the checkpoint last recorded
                try:
                    with open(eckpt) as f:
                        return [ln.strip() for ln in f
                                if ln.startswith("sink=")][0]
                except (OSError, IndexError):
                    return "-"
            return "%d bytes" % (os.path.getsize(dst)
                                 if os.path.exists(dst) else 0)

        def output():
            if mirror:
                return ctlb.run("read", "mirror/lines", "--to", "tail",
                                timeout=300)[0]
            with open(dst) as f:
                return f.read()

        def scale():
            # Split the first current segment: open transactions of the
            # import then commit across the scale (rolled).
            d = json.loads(ctl.run("stream", "describe", "ct/lines",
                                   "--json")[0])
            seg = d["segments"][0]["id"]
            ctl.run("stream", "scale", "ct/lines", "--split", seg)
            log("stream scaled to epoch %d (split %s)"
                % (d["epoch"] + 1, seg))

        # Import and export run at once; each is killed five times, and
        # the stream scales twice under them.
        rng = random.Random(7)
        p = con.start(*flags)
        e = con.start(*eflags)
        # A second run of the same pipeline (its checkpoint file held)
        # is refused: both would write the same records.
        deadline = time.monotonic() + 30
        while committed_token(ckpt) < 0:
            check(time.monotonic() < deadline and p.poll() is None,
                  "import never checkpointed: %s" % tail(p))
            time.sleep(0.05)
        _, err = con.run(*flags, expect=EXIT_FAILED)
        check("in use by another strata-connect (pid %d)" % p.pid in err,
              "second run of a pipeline: %s" % err)
        ikills = ekills = 0
        while ikills < 5 or ekills < 5:
            time.sleep(rng.uniform(0.3, 0.9))
            check(p.poll() is None, "import exited %s: %s"
                  % (p.returncode, tail(p)))
            check(e.poll() is None, "export exited %s: %s"
                  % (e.returncode, tail(e)))
            if ikills <= ekills:
                p.kill()
                p.wait()
                ikills += 1
                log("import killed (%d), committed at %d"
                    % (ikills, committed_token(ckpt)))
                p = con.start(*flags)
                if ikills in (1, 3):
                    scale()
            else:
                e.kill()
                e.wait()
                ekills += 1
                log("export killed (%d), output %s"
                    % (ekills, out_size()))
                e = con.start(*eflags)
        writer.join()
        stop_caught_up(p, ckpt, src)
        check("imported" in tail(p), "no summary: %s" % tail(p))

        with open(src) as f:
            want = f.read()
        out, _ = ctl.run("read", "ct/lines", "--to", "tail", timeout=300)
        check(out == want,
              "stream differs from the input: %d vs %d lines, first "
              "difference at line %d"
              % (out.count("\n"), want.count("\n"),
                 next((i for i, (a, b) in enumerate(
                     zip(out.splitlines(), want.splitlines())) if a != b),
                      min(out.count("\n"), want.count("\n")))))
        log("import: %d lines once each, in order, across %d SIGKILLs"
            % (total, ikills))

        # Sealed, the stream ends: the export finishes (exit 0).
        ctl.run("stream", "seal", "ct/lines")
        rc = e.wait(120)
        check(rc == 0, "export exit %d: %s" % (rc, tail(e)))
        check("exported" in tail(e), "no summary: %s" % tail(e))
        got = output()
        check(got == want, "export output differs: %d vs %d bytes"
              % (len(got), len(want)))
        log("export: %s is the input byte for byte across %d SIGKILLs"
            % ("the mirror stream" if mirror else "the file", ekills))
        # A rerun after the end changes nothing.
        con.run(*eflags)
        check(output() == want, "rerun changed the output")
        if not mirror:
            stop_when_cluster_gone(con, ctl, sa, base)
    finally:
        sa.stop()
        if sb is not None:
            sb.stop()


def stop_when_cluster_gone(con, ctl, sa, base):
    """An import signalled while its cluster is gone cannot take its last
    checkpoint: a second signal (as the 30 s bound alone) stops it at
    once, exit 1, as a crash would (it used to take minutes)."""
    ctl.run("stream", "create", "ct/late")
    src = os.path.join(base, "late.log")
    ckpt = os.path.join(base, "late.ckpt")
    with open(src, "w") as f:
        f.write("".join("late-%d\n" % i for i in range(100)))
    p = con.start("--mode=import", "--stream=ct/late",
                  "--connector.plugin=file",
                  "--connector.options.path=%s" % src,
                  "--connector.options.follow=true",
                  "--checkpoint.file=%s" % ckpt,
                  "--checkpoint.interval=200ms")
    deadline = time.monotonic() + 30
    while committed_token(ckpt) <= 0:
        check(time.monotonic() < deadline and p.poll() is None,
              "late import never checkpointed: %s" % tail(p))
        time.sleep(0.05)
    sa.proc.kill()
    sa.proc.wait()
    with open(src, "a") as f:
        f.write("".join("later-%d\n" % i for i in range(100)))
    time.sleep(1.0)  # read into a transaction that cannot commit
    p.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    check(rc == 1 and "a second signal" in tail(p) and
          time.monotonic() - t0 < 10,
          "second signal with the cluster gone: exit %d after %.1f s: %s"
          % (rc, time.monotonic() - t0, tail(p)))
    log("import with its cluster gone: stopped by a second signal")


def scenario_mirror(args, base):
    scenario_exactly_once(args, base, mirror=True)


def scenario_hold_retention(args, base):
    """Export with hold_retention: the group is created with manual
    consumption-based retention and releases each checkpoint once the sink
    committed it, so the stream's size policy (4 KiB, checked every 300
    ms) truncates what was exported and nothing else: the export's file
    gets every event exactly once across a SIGKILL, and the stream is
    truncated behind it."""
    sa = Standalone(args.standalone, base)
    sa.flags.append("--retention.interval=300ms")
    sa.start()
    try:
        ctl = Ctl(args.stratactl, sa.url)
        ctl.run("scope", "create", "ct")
        ctl.run("stream", "create", "ct/held", "--segments", "2",
                "--retention-size", "4KiB")
        con = Connect(args.connect, sa.url, base)
        dst = os.path.join(base, "held.out")
        eflags = ["--mode=export", "--stream=ct/held",
                  "--checkpoint.file=%s" % os.path.join(base, "held.ckpt"),
                  "--checkpoint.interval=200ms", "--hold_retention=true",
                  "--connector.plugin=file",
                  "--connector.options.path=%s" % dst]
        e = con.start(*eflags)
        deadline = time.monotonic() + 30
        while True:
            out, _ = ctl.run("group", "describe", "ct/connect-held",
                             "--json", expect=None)
            if out.strip():
                d = json.loads(out)
                break
            check(time.monotonic() < deadline and e.poll() is None,
                  "the export did not create its group: %s" % tail(e))
            time.sleep(0.1)
        check(d["retention"] == "manual", "group: %s" % d)

        def exported():
            if not os.path.exists(dst):
                return []
            with open(dst) as f:
                return f.read().split()

        written = []
        for b in range(20):
            batch = ["h%02d-%03d" % (b, i) for i in range(50)]
            written += batch
            ctl.run("write", "ct/held", stdin="".join(
                "%s %s\n" % (ev, "x" * 60) for ev in batch))
            time.sleep(0.2)
            if b == 9:
                e.kill()
                e.wait()
                log("export killed after %d events were written"
                    % len(written))
                e = con.start(*eflags)
        deadline = time.monotonic() + 60
        while len([t for t in exported() if not t.startswith("x")]) < \
                len(written):
            check(time.monotonic() < deadline and e.poll() is None,
                  "the export did not catch up: %s" % tail(e))
            time.sleep(0.2)
        deadline = time.monotonic() + 30
        while True:
            left = [t for t in ctl.run("read", "ct/held")[0].split()
                    if not t.startswith("x")]
            if len(left) < len(written):
                break
            check(time.monotonic() < deadline,
                  "retention never truncated behind the export")
            time.sleep(0.3)
        d = json.loads(ctl.run("group", "describe", "ct/connect-held",
                               "--json")[0])
        check(d["streams"][0]["released"] != "head",
              "the export released nothing: %s" % d)
        ctl.run("stream", "seal", "ct/held")
        rc = e.wait(120)
        check(rc == 0, "export exit %d: %s" % (rc, tail(e)))
        got = sorted(t for t in exported() if not t.startswith("x"))
        check(got == sorted(written),
              "export output: %d events for %d written (%d distinct)"
              % (len(got), len(written), len(set(got))))
        log("exported %d events once each; retention left %d in the "
            "stream" % (len(got), len(left)))
    finally:
        sa.stop()


def scenario_stdio(args, base):
    sa = Standalone(args.standalone, base)
    sa.start()
    try:
        ctl = Ctl(args.stratactl, sa.url)
        ctl.run("scope", "create", "ct")
        ctl.run("stream", "create", "ct/pipe")
        con = Connect(args.connect, sa.url, base)
        lines = "".join("event %d\n" % i for i in range(5000))
        _, err = con.run("--mode=import", "--stream=ct/pipe",
                         "--connector.plugin=stdio",
                         "--connector.options.key=k",
                         "--guarantee=at-least-once",
                         "--checkpoint.file=%s" % os.path.join(base, "i"),
                         stdin=lines.encode())
        check("imported 5000 records" in err, "import: %s" % err)
        # Again with the same checkpoint file: stdin starts where it is.
        _, err = con.run("--mode=import", "--stream=ct/pipe",
                         "--connector.plugin=stdio",
                         "--connector.options.key=k",
                         "--guarantee=at-least-once",
                         "--checkpoint.file=%s" % os.path.join(base, "i"),
                         stdin=b"one more\n")
        check("imported 1 records" in err, "second import: %s" % err)
        lines += "one more\n"
        ctl.run("stream", "seal", "ct/pipe")
        out, err = con.run("--mode=export", "--stream=ct/pipe",
                           "--connector.plugin=stdio",
                           "--guarantee=at-least-once",
                           "--checkpoint.file=%s" % os.path.join(base, "e"))
        # stdout is the data alone; the summary goes to stderr.
        check(out == lines, "stdout: %r" % out[-200:])
        check("exported 5001 events" in err, "summary: %r" % err[-300:])
    finally:
        sa.stop()


class HttpServer:
    """tests/integration/lib/http_test_server.py on a free port."""

    def __init__(self, base):
        self.dir = os.path.join(base, "www")
        os.makedirs(self.dir, exist_ok=True)
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "..", "lib", "http_test_server.py")
        pf = os.path.join(base, "http.port")
        self.proc = subprocess.Popen(
            [sys.executable, script, "--dir", self.dir, "--port-file", pf],
            stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not os.path.exists(pf):
            check(time.monotonic() < deadline and self.proc.poll() is None,
                  "http test server did not start")
            time.sleep(0.05)
        with open(pf) as f:
            self.url = "http://127.0.0.1:%d" % int(f.read())

    def path(self, name):
        return os.path.join(self.dir, name)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def scenario_http(args, base):
    sa = Standalone(args.standalone, base)
    sa.start()
    web = HttpServer(base)
    try:
        ctl = Ctl(args.stratactl, sa.url)
        ctl.run("scope", "create", "ct")
        ctl.run("stream", "create", "ct/web", "--segments", "2")
        con = Connect(args.connect, sa.url, base)
        src = web.path("in.log")
        total = 30000
        writer = grow_file(src, total,
                           lambda i: "web-%06d %s\n" % (i, "y" * (i % 40)))
        ckpt = os.path.join(base, "http-import.ckpt")
        flags = ["--mode=import", "--stream=ct/web",
                 "--connector.plugin=http",
                 "--connector.options.url=%s/doc/in.log" % web.url,
                 "--connector.options.follow=true",
                 "--connector.options.poll_ms=50",
                 "--checkpoint.file=%s" % ckpt,
                 "--checkpoint.interval=200ms", "--txn.lease=1m"]
        dst = web.path("out.log")
        eflags = ["--mode=export", "--stream=ct/web",
                  "--connector.plugin=http",
                  "--connector.options.url=%s/sink/out.log" % web.url,
                  "--connector.options.batch_bytes=65536",
                  "--guarantee=at-least-once",
                  "--checkpoint.file=%s" % os.path.join(base, "http-e.ckpt"),
                  "--checkpoint.interval=200ms"]
        # Import and export run at once; each is killed three times.
        rng = random.Random(11)
        p = con.start(*flags)
        e = con.start(*eflags)
        for k in range(6):
            time.sleep(rng.uniform(0.2, 0.6))
            check(p.poll() is None, "import exited %s: %s"
                  % (p.returncode, tail(p)))
            check(e.poll() is None, "export exited %s: %s"
                  % (e.returncode, tail(e)))
            if k % 2 == 0:
                p.kill()
                p.wait()
                log("import killed, committed at %d" % committed_token(ckpt))
                p = con.start(*flags)
            else:
                e.kill()
                e.wait()
                log("export killed, %d bytes posted"
                    % (os.path.getsize(dst) if os.path.exists(dst) else 0))
                e = con.start(*eflags)
        writer.join()
        stop_caught_up(p, ckpt, src)
        with open(src) as f:
            want = f.read()
        out, _ = ctl.run("read", "ct/web", "--to", "tail", timeout=300)
        check(out == want, "stream differs from the document: %d vs %d "
              "lines" % (out.count("\n"), want.count("\n")))
        log("http import: %d lines once each, in order, across 3 "
            "SIGKILLs" % total)

        ctl.run("stream", "seal", "ct/web")
        rc = e.wait(120)
        check(rc == 0, "export exit %d: %s" % (rc, tail(e)))
        with open(dst) as f:
            got = f.read().splitlines()
        seen, firsts = set(), []
        for ln in got:
            if ln not in seen:
                seen.add(ln)
                firsts.append(ln)
        check(firsts == want.splitlines(),
              "posted lines, duplicates dropped, differ from the stream "
              "(%d distinct of %d)" % (len(firsts), total))
        log("http export: every line POSTed, in order; %d duplicates "
            "from 3 SIGKILLs (at least once)" % (len(got) - len(firsts)))
    finally:
        web.stop()
        sa.stop()


def find_tool(name, package):
    """The path of a Debian tool, or a Failure naming its package."""
    path = shutil.which(name)
    if path is None and os.access("/usr/sbin/" + name, os.X_OK):
        path = "/usr/sbin/" + name  # Debian's broker, off a user's PATH
    check(path is not None,
          "%s not found: install Debian's %s package (apt-get install "
          "%s; scripts/deps.txt)" % (name, package, package))
    return path


class Mosquitto:
    """A mosquitto broker on a free 127.0.0.1 port (other ports when one
    was taken meanwhile), persistence in its own directory."""

    def __init__(self, base):
        binary = find_tool("mosquitto", "mosquitto")
        self.dir = os.path.join(base, "mqtt")
        os.makedirs(self.dir, exist_ok=True)
        self.logfile = os.path.join(self.dir, "broker.log")
        conf = os.path.join(self.dir, "mosquitto.conf")
        for _ in range(5):
            self.port = free_ports(1)[0]
            with open(conf, "w") as f:
                f.write("listener %d 127.0.0.1\nallow_anonymous true\n"
                        "persistence true\npersistence_location %s/\n"
                        # keep every message for a stopped client (the
                        # default keeps 1000 and drops the rest)
                        "max_queued_messages 1000000\n"
                        % (self.port, self.dir))
                if os.geteuid() == 0:
                    f.write("user root\n")  # else it drops to mosquitto
            self.cmd = [binary, "-c", conf]
            if self.launch():
                return
            log("mosquitto did not listen on %d; trying another port"
                % self.port)
        with open(self.logfile) as f:
            raise Failure("mosquitto did not start: %s" % f.read()[-2000:])

    def launch(self):
        """Start the broker on self.port: True once it listens."""
        out = open(self.logfile, "a")
        self.proc = subprocess.Popen(self.cmd, stdout=out,
                                     stderr=subprocess.STDOUT)
        out.close()
        deadline = time.monotonic() + 10
        while self.proc.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         0.2).close()
                self.url = "mqtt://127.0.0.1:%d" % self.port
                log("mosquitto ready at %s" % self.url)
                return True
            except OSError:
                time.sleep(0.05)
        self.stop()
        return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_log(p, text, seconds):
    """Wait (bounded) until strata-connect p logged text."""
    deadline = time.monotonic() + seconds
    while True:
        p.logfile.seek(0)
        if text in p.logfile.read():
            return
        check(p.poll() is None and time.monotonic() < deadline,
              "strata-connect did not log %r in %ds: %s"
              % (text, seconds, tail(p)))
        time.sleep(0.05)


def standalone_with_stream(args, base, stream, segments):
    """A started standalone holding scope ct and stream ct/<stream> with
    that many segments: (standalone, Ctl). Stopped again if that fails."""
    sa = Standalone(args.standalone, base)
    try:
        sa.start()
        ctl = Ctl(args.stratactl, sa.url)
        ctl.run("scope", "create", "ct")
        ctl.run("stream", "create", "ct/" + stream, "--segments",
                str(segments))
    except BaseException:
        sa.stop()
        raise
    return sa, ctl


def scenario_mqtt_import(args, base):
    pub = find_tool("mosquitto_pub", "mosquitto-clients")
    broker = Mosquitto(base)
    sa = None
    pubs = []  # publishers and strata-connects, killed if still running
    try:
        sa, ctl = standalone_with_stream(args, base, "mqtt", 3)
        con = Connect(args.connect, sa.url, base)
        ck = os.path.join(base, "mqtt-import.ckpt")
        opts = ["--connector.plugin=mqtt",
                "--connector.options.topic=dev/#",
                "--connector.options.client_id=strata-import"]
        common = ["--mode=import", "--stream=ct/mqtt", "--checkpoint.file=%s"
                  % ck, "--checkpoint.interval=200ms"] + opts
        flags = common + ["--connector.options.broker=%s" % broker.url,
                          "--guarantee=at-least-once"]

        # Refused before anything runs: a bad option (check-config), an
        # exactly-once import (a subscription cannot be replayed), a
        # broker that is not there (named, exit 1).
        _, err = con.run(*flags, "--connector.options.qos=3",
                         "--check-config", expect=EXIT_CONFIG)
        check("qos" in err and "0, 1 or 2" in err, "bad qos: %s" % err)
        _, err = con.run(*common, "--connector.options.broker=%s"
                         % broker.url, expect=EXIT_CONFIG)
        check("at-least-once" in err, "exactly once: %s" % err)
        # --check-config says so too (it said "configuration OK").
        _, err = con.run(*common, "--connector.options.broker=%s"
                         % broker.url, "--check-config", expect=EXIT_CONFIG)
        check("at-least-once" in err, "exactly once, check: %s" % err)
        dead = "mqtt://127.0.0.1:%d" % free_ports(1)[0]
        _, err = con.run(*common, "--connector.options.broker=%s" % dead,
                         "--guarantee=at-least-once", expect=EXIT_FAILED)
        check(dead in err and "broker is running" in err,
              "broker down: %s" % err)
        check(not os.path.exists(ck), "a refused run wrote %s" % ck)

        # Four publishers (QoS 1), one topic each, at once; the import is
        # stopped (SIGTERM) half way and started again while they go on:
        # the broker keeps the session's messages meanwhile.
        topics, per = 4, 1500
        p = con.start(*flags)
        pubs.append(p)
        wait_log(p, "subscribed to 'dev/#'", 30)
        procs = [subprocess.Popen([pub, "-h", "127.0.0.1", "-p",
                                   str(broker.port), "-q", "1", "-t",
                                   "dev/t%d" % t, "-i", "pub-%d" % t, "-l"],
                                  stdin=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL)
                 for t in range(topics)]
        pubs.extend(procs)

        def feed(t):
            w = procs[t].stdin
            for i in range(per):
                w.write(b"t%d:%d\n" % (t, i))
                if i % 50 == 49:
                    w.flush()
                    time.sleep(0.05)
            w.close()

        feeders = [threading.Thread(target=feed, args=(t,))
                   for t in range(topics)]
        for f in feeders:
            f.start()
        time.sleep(0.6)
        p.send_signal(signal.SIGTERM)
        rc = p.wait(60)
        check(rc == 0, "import exit %d on SIGTERM: %s" % (rc, tail(p)))
        log("import stopped; restarting while the publishers go on")
        time.sleep(0.3)
        p = con.start(*flags)
        pubs.append(p)
        for f in feeders:
            f.join(60)
        for q in procs:
            check(q.wait(30) == 0, "mosquitto_pub failed")
        total = topics * per
        deadline = time.monotonic() + 60
        while True:
            out, _ = ctl.run("read", "ct/mqtt", "--to", "tail", timeout=120)
            lines = out.splitlines()
            if len(set(lines)) >= total:
                break
            check(time.monotonic() < deadline and p.poll() is None,
                  "the stream holds %d of %d messages: %s"
                  % (len(set(lines)), total, tail(p)))
            time.sleep(0.5)
        p.send_signal(signal.SIGTERM)
        rc = p.wait(60)
        check(rc == 0, "import exit %d on SIGTERM: %s" % (rc, tail(p)))
        check("imported" in tail(p), "no summary: %s" % tail(p))
        out, _ = ctl.run("read", "ct/mqtt", "--to", "tail", timeout=120)
        per_topic = events_by_key(out.splitlines())
        dups = 0
        for t in range(topics):
            got = per_topic.get("t%d" % t, [])
            firsts, seen = [], set()
            for n in got:
                if n not in seen:
                    seen.add(n)
                    firsts.append(n)
            dups += len(got) - len(firsts)
            check(firsts == list(range(per)),
                  "topic dev/t%d: %d distinct of %d, or out of order"
                  % (t, len(firsts), per))
        log("mqtt import: %d messages on %d topics, every one in the "
            "stream, in order per topic, across a stop; %d duplicates"
            % (total, topics, dups))
    finally:
        for q in pubs:
            if q.poll() is None:
                q.kill()
                q.wait()
        if sa is not None:
            sa.stop()
        broker.stop()


def scenario_mqtt_export(args, base):
    subbin = find_tool("mosquitto_sub", "mosquitto-clients")
    broker = Mosquitto(base)
    sa = sub = None
    started = []  # strata-connects, killed if still running
    try:
        sa, ctl = standalone_with_stream(args, base, "out", 2)
        con = Connect(args.connect, sa.url, base)
        # The stream fills from a growing file (one key: one order).
        src = os.path.join(base, "events.log")
        total = 20000
        writer = grow_file(src, total, lambda i: "ev-%06d\n" % i,
                           every=1000, pause=0.1)
        ick = os.path.join(base, "file-import.ckpt")
        p = con.start("--mode=import", "--stream=ct/out",
                      "--connector.plugin=file",
                      "--connector.options.path=%s" % src,
                      "--connector.options.follow=true",
                      "--checkpoint.file=%s" % ick,
                      "--checkpoint.interval=200ms")
        started.append(p)
        # An independent subscriber (QoS 1) collects what is published.
        got_path = os.path.join(base, "received.txt")
        got_file = open(got_path, "w")
        # stdbuf: line-buffered, so what it printed is in the file.
        sub = subprocess.Popen(["stdbuf", "-oL", subbin, "-h", "127.0.0.1",
                                "-p",
                                str(broker.port), "-q", "1", "-t",
                                "out/events", "-i", "collector", "-d"],
                               stdout=got_file, stderr=subprocess.STDOUT)
        got_file.close()

        def received():
            with open(got_path) as f:
                return [int(ln[3:]) for ln in f.read().splitlines()
                        if ln.startswith("ev-")]

        deadline = time.monotonic() + 20
        while True:
            with open(got_path) as f:
                if "SUBACK" in f.read():
                    break
            check(sub.poll() is None and time.monotonic() < deadline,
                  "mosquitto_sub did not subscribe")
            time.sleep(0.05)
        eflags = ["--mode=export", "--stream=ct/out",
                  "--connector.plugin=mqtt",
                  "--connector.options.broker=%s" % broker.url,
                  "--connector.options.topic=out/events",
                  "--guarantee=at-least-once",
                  "--checkpoint.file=%s" % os.path.join(base, "mqtt-e.ckpt"),
                  "--checkpoint.interval=200ms"]
        e = con.start(*eflags)
        started.append(e)
        kills = 0
        for wait_for in (total // 5, total // 2):
            deadline = time.monotonic() + 30
            while len(received()) < wait_for:
                check(e.poll() is None and time.monotonic() < deadline,
                      "export stalled at %d received: %s"
                      % (len(received()), tail(e)))
                time.sleep(0.05)
            e.kill()
            e.wait()
            kills += 1
            log("export SIGKILLed with %d received" % len(received()))
            e = con.start(*eflags)
            started.append(e)
        writer.join()
        stop_caught_up(p, ick, src)
        ctl.run("stream", "seal", "ct/out")
        rc = e.wait(120)
        check(rc == 0, "export exit %d: %s" % (rc, tail(e)))
        check("exported" in tail(e), "no summary: %s" % tail(e))
        # Every event was acknowledged by the broker before the export
        # ended; give the subscriber a bounded moment to have them all.
        deadline = time.monotonic() + 20
        while len(set(received())) < total and time.monotonic() < deadline:
            time.sleep(0.1)
        got = received()
        missing = sorted(set(range(total)) - set(got))
        check(not missing, "%d events never arrived, first %s"
              % (len(missing), missing[:5]))
        # In order per run: each run of the export is consecutive; a
        # restart goes back (to its checkpoint), never forward past a gap.
        runs = 1
        for a, b in zip(got, got[1:]):
            if b != a + 1:
                check(b <= a, "gap: %d after %d" % (b, a))
                runs += 1
        check(runs <= kills + 1, "%d runs out of order for %d kills"
              % (runs, kills))
        log("mqtt export: %d events, every one received, in order per run "
            "(%d runs), across %d SIGKILLs; %d duplicates (at least once)"
            % (total, runs, kills, len(got) - total))
    finally:
        for q in started:
            if q.poll() is None:
                q.kill()
                q.wait()
        if sub is not None and sub.poll() is None:
            sub.terminate()
            sub.wait(10)
        if sa is not None:
            sa.stop()
        broker.stop()


def scenario_mqtt_sink_qos2(args, base):
    """The mqtt sink at qos=2 with its defaults: mosquitto (2.0) drops an
    incoming QoS 2 message over its in-flight limit (20) yet acknowledges
    it under MQTT 3.1.1, so more in flight loses messages silently. Then
    an idle export across a broker restart (kill -9, same port) goes on
    once the broker is back."""
    subbin = find_tool("mosquitto_sub", "mosquitto-clients")
    broker = Mosquitto(base)
    sa = e = None
    subs = []
    try:
        sa, ctl = standalone_with_stream(args, base, "q2", 2)
        got_path = os.path.join(base, "received-q2.txt")

        def subscribe(n):
            # stdbuf: line-buffered, so what it printed is in the file.
            out = open(got_path, "a")
            sub = subprocess.Popen(
                ["stdbuf", "-oL", subbin, "-h", "127.0.0.1", "-p",
                 str(broker.port), "-q", "1", "-t", "out/q2", "-i",
                 "collector-%d" % n, "-d"],
                stdout=out, stderr=subprocess.STDOUT)
            out.close()
            subs.append(sub)
            deadline = time.monotonic() + 20
            while True:
                with open(got_path) as f:
                    if f.read().count("SUBACK") >= n:
                        return
                check(sub.poll() is None and time.monotonic() < deadline,
                      "mosquitto_sub did not subscribe")
                time.sleep(0.05)

        def received():
            with open(got_path) as f:
                return {int(ln[3:]) for ln in f.read().splitlines()
                        if ln.startswith("ev-")}

        def wait_received(n, what):
            deadline = time.monotonic() + 60
            while len(received()) < n:
                check(e.poll() is None and time.monotonic() < deadline,
                      "%s: %d of %d received: %s"
                      % (what, len(received()), n, tail(e)))
                time.sleep(0.05)

        subscribe(1)
        first = 3000
        ctl.run("write", "ct/q2", "--key", "k", stdin="".join(
            "ev-%06d\n" % i for i in range(first)))
        con = Connect(args.connect, sa.url, base)
        e = con.start("--mode=export", "--stream=ct/q2",
                      "--connector.plugin=mqtt",
                      "--connector.options.broker=%s" % broker.url,
                      "--connector.options.topic=out/q2",
                      "--connector.options.qos=2",
                      "--guarantee=at-least-once",
                      "--checkpoint.file=%s" % os.path.join(base, "q2.ckpt"),
                      "--checkpoint.interval=200ms")
        wait_received(first, "qos=2 export")
        # Idle now: the broker dies and comes back on its port.
        time.sleep(0.5)
        broker.proc.kill()
        broker.proc.wait()
        time.sleep(1.5)
        check(broker.launch(), "mosquitto did not start again")
        subscribe(2)
        total = 4000
        ctl.run("write", "ct/q2", "--key", "k", stdin="".join(
            "ev-%06d\n" % i for i in range(first, total)))
        ctl.run("stream", "seal", "ct/q2")
        rc = e.wait(120)
        check(rc == 0, "export exit %d: %s" % (rc, tail(e)))
        check("lost while idle" in tail(e), "no reconnect: %s" % tail(e))
        deadline = time.monotonic() + 20
        while len(received()) < total and time.monotonic() < deadline:
            time.sleep(0.1)
        missing = sorted(set(range(total)) - received())
        check(not missing, "%d events never arrived at qos=2, first %s"
              % (len(missing), missing[:5]))
        log("mqtt sink qos=2: %d events, every one received, across an "
            "idle broker restart" % total)
    finally:
        if e is not None and e.poll() is None:
            e.kill()
            e.wait()
        for sub in subs:
            if sub.poll() is None:
                sub.terminate()
                sub.wait(10)
        if sa is not None:
            sa.stop()
        broker.stop()


def scenario_bad_input(args, base):
    sa = Standalone(args.standalone, base)
    sa.start()
    try:
        ctl = Ctl(args.stratactl, sa.url)
        ctl.run("scope", "create", "ct")
        ctl.run("stream", "create", "ct/s")
        con = Connect(args.connect, sa.url, base)
        src = os.path.join(base, "in.log")
        with open(src, "w") as f:
            f.write("a\nbb\n")
        ck = os.path.join(base, "c.ckpt")
        common = ["--stream=ct/s", "--checkpoint.file=%s" % ck]
        fileflags = ["--connector.plugin=file",
                     "--connector.options.path=%s" % src]

        _, err = con.run("--stream=ct/s", expect=EXIT_CONFIG)
        check("mode" in err, "missing mode: %s" % err)
        _, err = con.run("--mode=import", "--stream=ct/s",
                         "--connector.plugin=file", expect=EXIT_CONFIG)
        check("checkpoint.file" in err, "missing checkpoint.file: %s" % err)
        _, err = con.run("--mode=sideways", *common, *fileflags,
                         expect=EXIT_CONFIG)
        check("import" in err and "export" in err, "bad mode: %s" % err)
        _, err = con.run("--mode=import", "--stream=nostream", *fileflags,
                         "--checkpoint.file=%s" % ck, expect=EXIT_CONFIG)
        check("SCOPE/STREAM" in err, "bad stream: %s" % err)
        _, err = con.run("--mode=import", *common,
                         "--connector.plugin=nosuch", expect=EXIT_CONFIG)
        check("connector-nosuch.so" in err, "unknown plugin: %s" % err)
        _, err = con.run("--mode=import", *common, *fileflags,
                         "--connector.options.colour=red",
                         expect=EXIT_CONFIG)
        check("colour" in err, "unknown option: %s" % err)
        _, err = con.run("--mode=import", *common, "--connector.plugin=stdio",
                         expect=EXIT_CONFIG, stdin=b"x\n")
        check("at-least-once" in err, "stdio exactly once: %s" % err)
        _, err = con.run("--mode=export", *common, "--connector.plugin=stdio",
                         expect=EXIT_CONFIG)
        check("at-least-once" in err, "stdout exactly once: %s" % err)
        # --check-config: options checked, nothing created or contacted.
        dst = os.path.join(base, "never.log")
        out, _ = con.run("--mode=export", *common, "--check-config",
                         "--connector.plugin=file",
                         "--connector.options.path=%s" % dst)
        check("configuration OK" in out, "check-config: %s" % out)
        # A key of the other mode is named as ignored.
        _, err = con.run("--mode=export", *common, "--check-config",
                         "--connector.plugin=file",
                         "--connector.options.path=%s" % dst,
                         "--txn.lease=5m")
        check("txn.lease applies to imports only" in err,
              "import key on an export: %s" % err)
        _, err = con.run("--mode=export", *common, "--check-config",
                         "--connector.plugin=file",
                         "--connector.options.path=%s" % dst,
                         "--connector.options.format=xml",
                         expect=EXIT_CONFIG)
        check("format" in err, "check-config bad option: %s" % err)
        _, err = con.run("--mode=import", *common, "--check-config",
                         "--connector.plugin=strata", expect=EXIT_CONFIG)
        check("no source" in err, "check-config no source: %s" % err)
        check(not os.path.exists(dst), "--check-config created %s" % dst)
        check(not os.path.exists(ck), "a refused run wrote %s" % ck)

        _, err = con.run("--mode=import", "--stream=ct/none",
                         "--checkpoint.file=%s" % ck, *fileflags,
                         expect=EXIT_FAILED)
        check("ct/none" in err, "no such stream: %s" % err)

        big = os.path.join(base, "big.log")
        with open(big, "w") as f:
            f.write("ok\n" + "y" * 5000 + "\n")
        _, err = con.run("--mode=import", *common, "--connector.plugin=file",
                         "--connector.options.path=%s" % big,
                         "--limits.max_event=1KiB", expect=EXIT_FAILED)
        check("big.log" in err, "oversize line: %s" % err)

        # A checkpoint file damaged on disk.
        con.run("--mode=import", *common, *fileflags)
        with open(ck, "r+") as f:
            data = f.read()
            f.seek(0)
            f.write(data.replace("committed=5", "committed=3"))
        _, err = con.run("--mode=import", *common, *fileflags,
                         expect=EXIT_FAILED)
        check("corrupt" in err and ck in err, "damaged file: %s" % err)
        # Another pipeline's checkpoint file.
        ctl.run("stream", "create", "ct/other")
        ck2 = os.path.join(base, "ok.ckpt")
        con.run("--mode=import", "--stream=ct/other",
                "--checkpoint.file=%s" % ck2, *fileflags)
        _, err = con.run("--mode=import", "--stream=ct/s",
                         "--checkpoint.file=%s" % ck2, *fileflags,
                         expect=EXIT_FAILED)
        check("belongs to" in err, "foreign file: %s" % err)
        out, _ = ctl.run("read", "ct/other", "--to", "tail")
        check(out == "a\nbb\n", "ct/other: %r" % out)

        # A start cut that does not parse is a configuration error,
        # found by --check-config too.
        eck = os.path.join(base, "e.ckpt")
        eflags = ["--mode=export", "--stream=ct/s",
                  "--checkpoint.file=%s" % eck, "--connector.plugin=file",
                  "--guarantee=at-least-once"]
        for extra in (["--check-config"], []):
            _, err = con.run(*eflags, *extra, "--start=garbage",
                             "--connector.options.path=%s"
                             % os.path.join(base, "x.out"),
                             expect=EXIT_CONFIG)
            check("start garbage" in err, "bad start: %s" % err)
        # A sink that cannot open on a first run leaves no reader group
        # behind: the corrected run goes ahead.
        _, err = con.run(*eflags, "--connector.options.path=%s"
                         % os.path.join(base, "nodir", "x.out"),
                         expect=EXIT_FAILED)
        check("nodir" in err, "sink in a missing directory: %s" % err)
        ctl.run("group", "describe", "ct/connect-s", expect=EXIT_FAILED)
        ctl.run("stream", "seal", "ct/s")
        good = os.path.join(base, "good.out")
        _, err = con.run(*eflags, "--connector.options.path=%s" % good)
        with open(good) as f:
            check(f.read() == "a\nbb\n", "corrected export: %s" % err)
    finally:
        sa.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=["exactly_once", "mirror", "stdio",
                                         "hold_retention",
                                         "http", "mqtt_import",
                                         "mqtt_export", "mqtt_sink_qos2",
                                         "bad_input"])
    ap.add_argument("--standalone", required=True)
    ap.add_argument("--stratactl", required=True)
    ap.add_argument("--connect", required=True)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="strata-connect-", dir="/tmp")
    ok = False
    try:
        {"exactly_once": scenario_exactly_once,
         "mirror": scenario_mirror,
         "stdio": scenario_stdio,
         "hold_retention": scenario_hold_retention,
         "http": scenario_http,
         "mqtt_import": scenario_mqtt_import,
         "mqtt_export": scenario_mqtt_export,
         "mqtt_sink_qos2": scenario_mqtt_sink_qos2,
         "bad_input": scenario_bad_input}[args.scenario](args, base)
        ok = True
        log("PASS %s" % args.scenario)
    except Failure as e:
        log("FAIL %s: %s" % (args.scenario, e))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
