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
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "cli"))
from cli_test import Ctl, Failure, Standalone, check, log  # noqa: E402

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
        open(src, "w").close()

        def grow():
            with open(src, "a") as f:
                for i in range(total):
                    f.write("line-%06d %s\n" % (i, "x" * (i % 50)))
                    if i % 500 == 499:
                        f.flush()
                        time.sleep(0.05)

        writer = threading.Thread(target=grow)
        writer.start()
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

        # Import and export run at once; each is killed five times.
        rng = random.Random(7)
        p = con.start(*flags)
        e = con.start(*eflags)
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
            else:
                e.kill()
                e.wait()
                ekills += 1
                log("export killed (%d), output %s"
                    % (ekills, out_size()))
                e = con.start(*eflags)
        writer.join()
        size = os.path.getsize(src)
        deadline = time.monotonic() + 60
        while committed_token(ckpt) != size:
            check(time.monotonic() < deadline and p.poll() is None,
                  "import did not catch up (%d of %d): %s"
                  % (committed_token(ckpt), size, tail(p)))
            time.sleep(0.1)
        p.send_signal(signal.SIGTERM)
        rc = p.wait(60)
        check(rc == 0, "import exit %d on SIGTERM: %s" % (rc, tail(p)))
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
    finally:
        sa.stop()
        if sb is not None:
            sb.stop()


def scenario_mirror(args, base):
    scenario_exactly_once(args, base, mirror=True)


def scenario_stdio(args, base):
    sa = Standalone(args.standalone, base)
    sa.start()
    try:
        ctl = Ctl(args.stratactl, sa.url)
        ctl.run("scope", "create", "ct")
        ctl.run("stream", "create", "ct/pipe")
        con = Connect(args.connect, sa.url, base)
        lines = "".join("event %d\n" % i for i in range(5000))
        out, _ = con.run("--mode=import", "--stream=ct/pipe",
                         "--connector.plugin=stdio",
                         "--connector.options.key=k",
                         "--guarantee=at-least-once",
                         "--checkpoint.file=%s" % os.path.join(base, "i"),
                         stdin=lines.encode())
        check("imported 5000 records" in out, "import: %s" % out)
        # Again with the same checkpoint file: stdin starts where it is.
        out, _ = con.run("--mode=import", "--stream=ct/pipe",
                         "--connector.plugin=stdio",
                         "--connector.options.key=k",
                         "--guarantee=at-least-once",
                         "--checkpoint.file=%s" % os.path.join(base, "i"),
                         stdin=b"one more\n")
        check("imported 1 records" in out, "second import: %s" % out)
        lines += "one more\n"
        ctl.run("stream", "seal", "ct/pipe")
        out, _ = con.run("--mode=export", "--stream=ct/pipe",
                         "--connector.plugin=stdio",
                         "--guarantee=at-least-once",
                         "--checkpoint.file=%s" % os.path.join(base, "e"))
        check(out.startswith(lines), "stdout: %r" % out[:200])
        check("exported 5001 events" in out[len(lines):],
              "summary: %r" % out[len(lines):])
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
        open(src, "w").close()

        def grow():
            with open(src, "a") as f:
                for i in range(total):
                    f.write("web-%06d %s\n" % (i, "y" * (i % 40)))
                    if i % 500 == 499:
                        f.flush()
                        time.sleep(0.05)

        writer = threading.Thread(target=grow)
        writer.start()
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
        size = os.path.getsize(src)
        deadline = time.monotonic() + 60
        while committed_token(ckpt) != size:
            check(time.monotonic() < deadline and p.poll() is None,
                  "import did not catch up (%d of %d): %s"
                  % (committed_token(ckpt), size, tail(p)))
            time.sleep(0.1)
        p.send_signal(signal.SIGTERM)
        rc = p.wait(60)
        check(rc == 0, "import exit %d on SIGTERM: %s" % (rc, tail(p)))
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
    finally:
        sa.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=["exactly_once", "mirror", "stdio",
                                         "http",
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
         "http": scenario_http,
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
