#!/usr/bin/env python3
"""Run the peer-engine harness (../shared/peers/bench.py) against this checkout's pyflow.

    python benchmarks/run_peers.py -n 1000000 -e arrow-ref,pyflow,bytewax,pyflink-sql -p 1,2 -w W1,W2,W3,W4
    python benchmarks/run_peers.py -n 10000000 -e arrow-ref,pyflow,bytewax -w W1,W2,W4 --repeat 3

The harness is read-only in shared/, so it is copied to --peers-dir (default /tmp/peers) and
set up there once (setup.sh: venvs for PyFlink and Bytewax, a few minutes). Then bench.py is
called once per (repeat, workload, p, engine), engines interleaved so that a slow phase of the
machine hits all of them alike, each call after the CPU has been quiet for a moment (other
processes, e.g. a test suite, would distort the wall times: see --quiet). Every run's JSON line,
plus ``cpu_busy_before`` (share of the 2 cores busy just before it), is appended to
benchmarks/results/bench-<time>.jsonl; ratios.py turns those files into the target tables.

PYFLOW_PYTHON defaults to the resolved interpreter running this script (not a pyenv shim,
which adds ~60 ms per start). Bytecode: by default PYTHONDONTWRITEBYTECODE is dropped and
bytecode is cached under /tmp/pyflow-pycache (what an installed package has), without writing
into the checkout; --no-bytecode keeps the inherited environment.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(HERE)


def cpu_busy(interval: float = 1.0) -> float:
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait
    t0, i0 = snap()
    time.sleep(interval)
    t1, i1 = snap()
    return 1 - (i1 - i0) / max(t1 - t0, 1)


def wait_quiet(threshold: float, max_wait: float) -> float:
    deadline = time.monotonic() + max_wait
    busy = cpu_busy()
    while busy > threshold and time.monotonic() < deadline:
        print(f"# waiting for a quiet CPU ({busy:.0%} busy)", file=sys.stderr, flush=True)
        time.sleep(4)
        busy = cpu_busy()
    return busy


def engine_version() -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=PROJECT, capture_output=True, text=True).stdout.rstrip()
    dirty = [line[3:] for line in git("status", "--porcelain", "--", "pyflow").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty_engine_files": dirty,
            "when": time.strftime("%Y-%m-%dT%H:%M:%S")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1_000_000)
    ap.add_argument("-e", default="arrow-ref,pyflow,bytewax,pyflink-sql")
    ap.add_argument("-w", default="W1,W2,W3,W4")
    ap.add_argument("-p", default="1,2")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--peers-dir", default="/tmp/peers")
    ap.add_argument("--peers-src", default=os.path.join(PROJECT, "..", "shared", "peers"))
    ap.add_argument("--quiet", type=float, default=0.15, help="max CPU share busy before a run")
    ap.add_argument("--max-wait", type=float, default=180, help="seconds to wait for quiet")
    ap.add_argument("--no-bytecode", action="store_true")
    a = ap.parse_args()

    peers = a.peers_dir
    if not os.path.exists(os.path.join(peers, "bench.py")):
        shutil.copytree(a.peers_src, peers, dirs_exist_ok=True)
        for dp, dns, fns in os.walk(peers):
            for name in dns + fns:
                os.chmod(os.path.join(dp, name), 0o755 if name in dns or name.endswith(".sh") else 0o644)
    subprocess.check_call(["./setup.sh"], cwd=peers, stdout=subprocess.DEVNULL)
    base = os.path.join(peers, ".venv-base", "bin", "python")
    if not os.path.exists(os.path.join(peers, "data", str(a.n), "meta.json")):
        subprocess.check_call([base, "gen.py", "-n", str(a.n)], cwd=peers)

    env = dict(os.environ, PYFLOW_PROJECT=PROJECT)
    env.setdefault("PYFLOW_PYTHON", os.path.realpath(sys.executable))
    if not a.no_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.setdefault("PYTHONPYCACHEPREFIX", "/tmp/pyflow-pycache")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    log = os.path.join(HERE, "results", time.strftime("bench-%Y%m%dT%H%M%S.jsonl"))
    print(f"# runs -> {log}", file=sys.stderr)
    with open(log, "a") as f:  # which engine code the runs measured (others edit it meanwhile)
        f.write(json.dumps({"engine_version": engine_version(), "argv": sys.argv[1:]}) + "\n")
    engines = a.e.split(",")
    # arrow-ref first: it is the ground truth every other run is checked against
    engines.sort(key=lambda e: e != "arrow-ref")
    for rep in range(a.repeat):
        for w in a.w.split(","):
            for p in a.p.split(","):
                for e in engines:
                    if e == "arrow-ref" and p != "1":
                        continue
                    busy = wait_quiet(a.quiet, a.max_wait)
                    out = subprocess.run(
                        [base, "bench.py", "-n", str(a.n), "-e", e, "-w", w, "-p", p, "--timeout", str(a.timeout)],
                        cwd=peers, env=env, capture_output=True, text=True)
                    if out.stderr.strip():
                        print(out.stderr.strip(), file=sys.stderr)
                    for line in out.stdout.splitlines():
                        if line.startswith("{"):
                            r = json.loads(line)
                            r.update(cpu_busy_before=round(busy, 2), repeat=rep)
                            print(json.dumps(r), flush=True)
                            with open(log, "a") as f:
                                f.write(json.dumps(r) + "\n")
    shutil.copy(os.path.join(peers, "results", "table.md"), os.path.join(HERE, "results", "peers-table.md"))


if __name__ == "__main__":
    main()
