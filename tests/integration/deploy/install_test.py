#!/usr/bin/env python3
"""Strata as installed, used the way a C developer and an operator would:
`cmake --install BUILD --prefix TMP` into a fresh directory, then nothing
from the build tree and no STRATA_PLUGIN_DIR:

  - examples/writer.c and examples/reader_group.c compile with -Wall
    -Werror against the installed headers, once with
    `pkg-config --cflags --libs strata` (libstrata.so) and once against
    libstrata.a alone plus the libraries `pkg-config --static` names;
  - the installed strata-standalone finds its tier-2 plugin in
    PREFIX/lib/strata/plugins (the install dir compiled in is elsewhere);
  - the shared-library writer and the static one each write N events,
    the shared one compressed with the zstd codec plugin, which it finds
    beside the installed libstrata.so (it is not in PREFIX/bin); the
    installed stratactl writes with zstd too; the static reader reads
    every event back once.

Usage: install_test.py --build-dir DIR --source-dir DIR [--cflags FLAGS]
(--cflags: extra compiler flags, -fsanitize=... for a sanitized build).
Exit 0 on success, 1 with a reason.
"""
import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "cli"))
from cli_test import Failure, Standalone, check, log  # noqa: E402

N = 300


def run(cmd, env=None, timeout=120):
    log("$ " + " ".join(shlex.quote(c) for c in cmd))
    p = subprocess.run(cmd, env=env, timeout=timeout, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    check(p.returncode == 0, "%s exited %d:\n%s"
          % (cmd[0], p.returncode, p.stdout[-3000:]))
    return p.stdout


def pkg_config(env, *args):
    return shlex.split(run(["pkg-config"] + list(args) + ["strata"], env))


def compile_examples(src, prefix, out, cflags, env):
    """Each example twice: shared (name) and static (name-static)."""
    cc = [os.environ.get("CC", "cc"), "-std=c11", "-Wall", "-Wextra",
          "-Werror"] + cflags
    inc = pkg_config(env, "--cflags")
    check(inc == ["-I%s/lib/pkgconfig/../../include" % prefix]
          or inc == ["-I%s/include" % prefix],
          "pkg-config --cflags strata gave %s, not %s/include"
          % (inc, prefix))
    shared = pkg_config(env, "--libs")
    libdir = run(["pkg-config", "--variable=libdir", "strata"], env).strip()
    static = [os.path.join(libdir, "libstrata.a")] + [
        f for f in pkg_config(env, "--static", "--libs")
        if f != "-lstrata"]
    for ex in ("writer", "reader_group"):
        c = os.path.join(src, "examples", ex + ".c")
        run(cc + inc + ["-o", os.path.join(out, ex), c] + shared
            + ["-Wl,-rpath," + libdir])
        run(cc + inc + ["-o", os.path.join(out, ex + "-static"), c]
            + static)
    nd = run(["readelf", "-d", os.path.join(out, "writer-static")])
    check("libstrata" not in nd,
          "the static writer still needs libstrata.so:\n" + nd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--cflags", default="")
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="strata-install-", dir="/tmp")
    prefix = os.path.join(base, "prefix")
    env = dict(os.environ)
    env.pop("STRATA_PLUGIN_DIR", None)
    os.environ.pop("STRATA_PLUGIN_DIR", None)
    env["PKG_CONFIG_PATH"] = os.path.join(prefix, "lib", "pkgconfig")
    sa = None
    try:
        run(["cmake", "--install", args.build_dir, "--prefix", prefix],
            timeout=300)
        for f in ("bin/strata-standalone", "bin/stratactl",
                  "lib/strata/plugins/tier2-local.so",
                  "lib/strata/plugins/codec-zstd.so",
                  "include/strata/writer.h", "lib/libstrata.a"):
            check(os.path.exists(os.path.join(prefix, f)),
                  "cmake --install did not install %s" % f)
        out = os.path.join(base, "examples")
        os.makedirs(out)
        compile_examples(args.source_dir, prefix, out,
                         shlex.split(args.cflags), env)

        sa = Standalone(os.path.join(prefix, "bin", "strata-standalone"),
                        base)
        sa.start()
        url = sa.url
        for w, codec in (("writer", ["zstd"]), ("writer-static", [])):
            got = run([os.path.join(out, w), url, "inst", "s", str(N)]
                      + codec, env)
            check("%d events acknowledged, 0 failed" % N in got,
                  "%s: %s" % (w, got))
        ctl = os.path.join(prefix, "bin", "stratactl")
        p = subprocess.run([ctl, "--controller", url, "write", "--codec",
                            "zstd", "inst/s"], input="zstd\n", text=True,
                           env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        check(p.returncode == 0 and "with zstd" in p.stdout,
              "installed stratactl write --codec zstd: %s" % p.stdout)
        got = run([os.path.join(out, "reader_group-static"), url, "inst",
                   "s", "g", "r1"], env, timeout=120)
        # Each writer wrote "event 0".."event N-1"; stratactl one more.
        seen = {}
        for ln in got.splitlines():
            if ": " in ln:
                body = ln.split(": ", 1)[1]
                seen[body] = seen.get(body, 0) + 1
        want = {"event %d" % i: 2 for i in range(N)}
        want["zstd"] = 1
        check(seen == want and "%d events read" % (2 * N + 1) in got,
              "the static reader did not read every event once per "
              "write:\n%s" % got[-2000:])
        sa.stop()
        sa = None
        log("1 passed, 0 failed")
        return 0
    except (Failure, subprocess.TimeoutExpired) as e:
        print("FAIL: %s" % e, flush=True)
        if sa is not None:
            print(sa.tail(), flush=True)
        print("0 passed, 1 failed")
        return 1
    finally:
        if sa is not None and sa.proc is not None and sa.proc.poll() is None:
            sa.proc.kill()
            sa.proc.wait()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
