#!/usr/bin/env python3
"""Measure the Python SDK over a real serve (see bench/README.md, Python SDK).

    python3 sdk/python/bench.py [--runs N] [--sandboxes N] [--commands N]

Starts its own `agentfense serve` (the binary from $AGENTFENSE, else
build/agentfense) in private XDG directories, then measures:

- `sandbox.run("true")` round trips from Python, one after another:
  p50, p90 and p99 over --runs (default 200);
- --sandboxes (default 50) AsyncSandbox.from_local at once with
  asyncio.gather, each then running --commands (default 20) commands one
  after another: the wall time of the creation, of the commands, and of
  the whole including destruction.
"""

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--sandboxes", type=int, default=50)
    ap.add_argument("--commands", type=int, default=20)
    a = ap.parse_args()

    binary = os.path.abspath(os.environ.get("AGENTFENSE") or
                             os.path.join(TOP, "build", "agentfense"))
    root = tempfile.mkdtemp(prefix="agentfense-sdk-bench-")
    for d in ("rt", "data", "state", "project/src"):
        os.makedirs(os.path.join(root, d), mode=0o700)
    with open(os.path.join(root, "project/src/main.py"), "w") as f:
        f.write("print('hi')\n")
    os.environ.update(XDG_RUNTIME_DIR=root + "/rt", XDG_DATA_HOME=root + "/data",
                      XDG_STATE_HOME=root + "/state", AGENTFENSE_BIN=binary)
    serve = subprocess.Popen([binary, "serve"], stdin=subprocess.DEVNULL,
                             start_new_session=True)
    sock = root + "/rt/agentfense/agentfense.sock"
    try:
        for _ in range(500):
            if os.path.exists(sock):
                break
            time.sleep(0.01)
        import agentfense as af
        project = root + "/project"

        with af.Sandbox.from_local(project) as sb:
            for _ in range(10):
                sb.run("true")
            ts = []
            for _ in range(a.runs):
                t = time.perf_counter()
                sb.run("true")
                ts.append((time.perf_counter() - t) * 1000)
        print("sandbox.run('true'), %d runs: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms"
              % (a.runs, statistics.median(ts), pct(ts, 90), pct(ts, 99)))

        async def one(i, marks):
            async with await af.AsyncSandbox.from_local(project) as s:
                marks.append(time.perf_counter())
                await started.wait()
                for j in range(a.commands):
                    r = await s.run("echo %d.%d" % (i, j))
                    assert r.stdout == "%d.%d\n" % (i, j), r
                done.append(time.perf_counter())

        async def many():
            marks = []
            t0 = time.perf_counter()
            tasks = [asyncio.ensure_future(one(i, marks)) for i in range(a.sandboxes)]
            while len(marks) < a.sandboxes and not any(t.done() for t in tasks):
                await asyncio.sleep(0.005)
            t1 = time.perf_counter()
            started.set()
            await asyncio.gather(*tasks)
            t2 = time.perf_counter()
            return t1 - t0, max(done) - t1, t2 - t0

        started = None  # an asyncio.Event made on the loop that runs
        done = []

        async def run_many():
            nonlocal started
            started = asyncio.Event()
            return await many()

        create, cmds, total = asyncio.run(run_many())
        n = a.sandboxes * a.commands
        print("%d async sandboxes x %d commands: created and started in %.2f s, "
              "%d commands in %.2f s (%.0f/s), %.2f s in all with destruction"
              % (a.sandboxes, a.commands, create, n, cmds, n / cmds, total))
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(60)
        shutil.rmtree(root, ignore_errors=True)
    return 0 if serve.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
