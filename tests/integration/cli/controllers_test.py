#!/usr/bin/env python3
"""stratactl cluster controllers / add-controller / remove-controller
against real processes on 127.0.0.1.

A strata-standalone (its controller is node 1, a one-member Raft group at
its raft.listen and listen) and a strata-controller node 2 started with
raft.join=true and raft.members listing both. Then:
  - bad input (ID 0, a missing --raft-address, a client URL without
    "://", a raft address without a port) exits 2 naming the option and
    changes nothing;
  - add-controller 2: 'cluster controllers --json' shows 2 voters,
    committed, node 1 the leader (also as node 2 sees it); an event
    written then is read back;
  - remove-controller 2: 1 voter left; node 2 is stopped; writing and
    reading still work; removing it again exits 1.

Usage: controllers_test.py --standalone PATH --controller-bin PATH
                           --stratactl PATH
Exit 0 on success, 1 with a reason on failure.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
from ports import free_ports  # noqa: E402
from cli_test import (Ctl, Failure, Standalone, check, log,  # noqa: E402
                      EXIT_FAILED, EXIT_USAGE)


def flag(sa, name):
    """The value of --name=VALUE among sa's flags."""
    return [f for f in sa.flags if f.startswith("--%s=" % name)][0].split(
        "=", 1)[1]


class Controller:
    """A strata-controller that joins a running cluster, on free ports."""

    def __init__(self, path, base, node_id, first_member):
        self.path, self.id = path, node_id
        self.dir = os.path.join(base, "ctl%d" % node_id)
        os.makedirs(self.dir, exist_ok=True)
        self.first_member = first_member
        self.proc = None
        self.out = None

    def pick_ports(self):
        p = free_ports(3)
        self.url = "tcp://127.0.0.1:%d" % p[0]
        self.http = "http://127.0.0.1:%d" % p[1]
        self.raft = "127.0.0.1:%d" % p[2]

    def start(self, timeout=30):
        # A port taken between the pick and the bind: pick others.
        for attempt in range(3):
            self.pick_ports()
            if self.try_start(timeout):
                return
            shutil.rmtree(os.path.join(self.dir, "data"), ignore_errors=True)
            log("controller %d: ports taken meanwhile; trying others"
                % self.id)
        raise Failure("controller %d did not start: %s"
                      % (self.id, self.tail()))

    def try_start(self, timeout):
        members = "%s;%d=%s,%s,%s" % (self.first_member, self.id, self.raft,
                                      self.url, self.http)
        cmd = [self.path, "--node.id=%d" % self.id,
               "--data-dir=%s" % os.path.join(self.dir, "data"),
               "--listen=%s" % self.url, "--http.listen=%s" % self.http,
               "--raft.listen=%s" % self.raft,
               "--raft.members=%s" % members, "--raft.join=true",
               "--log.file=%s" % os.path.join(self.dir, "log")]
        self.out = open(os.path.join(self.dir, "stdout"), "w+")
        self.proc = subprocess.Popen(cmd, stdout=self.out,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if "in use" in self.tail():
                    return False
                raise Failure("controller %d exited at start (%s): %s"
                              % (self.id, self.proc.returncode, self.tail()))
            self.out.seek(0)
            if "READY node=%d" % self.id in self.out.read():
                log("controller %d up at %s (raft %s)"
                    % (self.id, self.url, self.raft))
                return True
            time.sleep(0.1)
        raise Failure("controller %d not up in %ds: %s"
                      % (self.id, timeout, self.tail()))

    tail = Standalone.tail  # the same files: stdout and log in self.dir

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def controllers(ctl):
    """'cluster controllers --json' of the replica ctl asks."""
    out, _ = ctl.run("cluster", "controllers", "--json")
    return json.loads(out)


def voters(view):
    return sorted(m["id"] for m in view["controllers"]
                  if m["role"] == "voter")


def wait_view(ctl, want_voters, timeout=30):
    """Poll until the replica shows want_voters, committed."""
    deadline = time.monotonic() + timeout
    view = None
    while time.monotonic() < deadline:
        view = controllers(ctl)
        if voters(view) == want_voters and view["committed"]:
            return view
        time.sleep(0.2)
    raise Failure("voters %s committed not seen in %ds: %s"
                  % (want_voters, timeout, view))


def write_read(ctl, stream, events):
    """Append events to stream; every event written so far reads back."""
    ctl.run("write", stream, "--create",
            stdin="".join(e + "\n" for e in events))
    out, _ = ctl.run("read", stream, "--from", "head", "--to", "tail")
    return out.splitlines()


def check_bad_input(ctl, raft, url):
    """Each bad add-controller exits 2 and names the option."""
    cases = [
        (["0", "--raft-address", raft, "--client-url", url], "ID '0'"),
        (["2", "--client-url", url], "--raft-address is missing"),
        (["2", "--raft-address", raft, "--client-url", "127.0.0.1:1"],
         "--client-url '127.0.0.1:1'"),
        (["2", "--raft-address", "127.0.0.1", "--client-url", url],
         "--raft-address '127.0.0.1'"),
        (["2", "--raft-address", raft, "--client-url", url, "--http-url",
          "nope"], "--http-url 'nope'"),
    ]
    for argv, want in cases:
        _, err = ctl.run("cluster", "add-controller", *argv,
                         expect=EXIT_USAGE)
        check(want in err and ("e.g." in err or "node.id" in err),
              "add-controller %s: message %r lacks %r" % (argv, err, want))
    _, err = ctl.run("cluster", "remove-controller", "x", expect=EXIT_USAGE)
    check("ID 'x'" in err, "remove-controller x: %r" % err)
    out, _ = ctl.run("cluster", "add-controller", "--help")
    check("--raft-address HOST:PORT" in out, "add-controller --help: %s" % out)


def scenario(args, base):
    sa = Standalone(args.standalone, base)
    node2 = None
    try:
        sa.start()
        raft1, url1 = flag(sa, "raft.listen"), sa.url
        first = "1=%s,%s,%s" % (raft1, url1, flag(sa, "http.listen"))
        ctl1 = Ctl(args.stratactl, url1)
        view = controllers(ctl1)
        check(voters(view) == [1] and view["committed"]
              and view["leader_id"] == 1
              and view["controllers"][0]["raft"] == raft1
              and view["controllers"][0]["client_url"] == url1,
              "standalone's controllers: %s" % view)
        out, _ = ctl1.run("cluster", "controllers")
        check("voter" in out and "Configuration: committed" in out,
              "controllers text: %s" % out)

        node2 = Controller(args.controller_bin, base, 2, first)
        node2.start()
        check_bad_input(ctl1, node2.raft, node2.url)
        check(voters(controllers(ctl1)) == [1],
              "bad input changed the configuration")

        both = Ctl(args.stratactl, "%s,%s" % (url1, node2.url))
        out, _ = both.run("--timeout", "60s", "cluster", "add-controller",
                          "2", "--raft-address", node2.raft,
                          "--client-url", node2.url, "--http-url",
                          node2.http, timeout=90)
        check(out.startswith("added controller 2 (%s)" % node2.url)
              and "raft.members" in out, "add-controller: %r" % out)
        view = wait_view(ctl1, [1, 2])
        check(view["leader_id"] == 1 and
              [m["id"] for m in view["controllers"] if m["leader"]] == [1],
              "leader after add: %s" % view)
        m2 = [m for m in view["controllers"] if m["id"] == 2][0]
        check(m2["raft"] == node2.raft and m2["client_url"] == node2.url
              and m2["http_url"] == node2.http, "node 2 entry: %s" % m2)
        wait_view(Ctl(args.stratactl, node2.url), [1, 2])
        out, _ = ctl1.run("cluster", "controllers")
        rows = [ln.split() for ln in out.splitlines()[1:3]]
        check(rows == [["1", "voter", "*", raft1, url1, first.split(",")[2]],
                       ["2", "voter", node2.raft, node2.url, node2.http]]
              and "Configuration: committed" in out,
              "controllers text after add: %s" % out)
        log("controller 2 added: 2 voters, committed\n%s" % out.rstrip())

        got = write_read(both, "ctl/ev", ["one", "two"])
        check(got == ["one", "two"], "read after add: %s" % got)

        out, _ = both.run("cluster", "remove-controller", "2", timeout=90)
        check(out.startswith("removed controller 2;")
              and "data_dir" in out, "remove-controller: %r" % out)
        view = wait_view(ctl1, [1])
        check(all(m["id"] == 1 for m in view["controllers"]),
              "node 2 still listed: %s" % view)
        node2.stop()
        log("controller 2 removed and stopped: 1 voter")

        got = write_read(ctl1, "ctl/ev", ["three"])
        check(got == ["one", "two", "three"], "read after remove: %s" % got)
        _, err = ctl1.run("cluster", "remove-controller", "2",
                          expect=EXIT_FAILED)
        check("not a voter" in err, "second remove: %r" % err)
        _, err = ctl1.run("cluster", "remove-controller", "1",
                          expect=EXIT_USAGE)
        check("last voter" in err, "removing the last voter: %r" % err)
        sa.stop()
    finally:
        for p in (node2, sa):
            if p is not None and p.proc is not None and p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--standalone", required=True)
    ap.add_argument("--controller-bin", required=True)
    ap.add_argument("--stratactl", required=True)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="strata-ctls-", dir="/tmp")
    ok = False
    try:
        scenario(args, base)
        ok = True
        log("PASS controllers")
    except (Failure, subprocess.TimeoutExpired) as e:
        log("FAIL controllers: %s" % e)
    finally:
        if os.environ.get("STRATA_TEST_KEEP"):
            log("kept %s (STRATA_TEST_KEEP)" % base)
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
