#!/usr/bin/env python3
"""Summarize py-spy ``record --format raw`` (collapsed) stacks: samples per process/thread, and
self and inclusive samples per function, overall or for the threads matching a substring.

usage: py-spy record --subprocesses --threads --rate 250 --format raw -o run.raw -- python ...
       stacks.py run.raw [--top 30] [--thread SUBSTRING] [--threads-only]
"""
import argparse
import collections
import re


def parse(path):
    for line in open(path):
        stack, _, n = line.rstrip("\n").rpartition(" ")
        if stack:
            yield stack.split(";"), int(n)


def short(frame: str) -> str:
    frame = re.sub(r'^process (\d+):"(\S+ ){0,1}(\S*python\S*) (-m )?(\S+).*', r"process \1 \5", frame)
    return frame[:150]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("raw")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--thread", default=None, help="only threads whose name contains this")
    ap.add_argument("--threads-only", action="store_true")
    ap.add_argument("--rate", type=float, default=250, help="py-spy --rate, to print seconds")
    a = ap.parse_args()
    per_thread = collections.Counter()
    self_t, incl, total = collections.Counter(), collections.Counter(), 0
    for frames, n in parse(a.raw):
        thread = next((f for f in frames if f.startswith("thread (")), "?")
        key = (short(frames[0]), thread)
        per_thread[key] += n
        if a.thread and a.thread not in thread:
            continue
        total += n
        funcs = [f for f in frames if not f.startswith(("process ", "thread ("))]
        if funcs:
            self_t[funcs[-1]] += n
        for f in set(funcs):
            incl[f] += n
    print("-- samples per thread (seconds of CPU-ish time = samples / rate) --")
    for (proc, thread), n in per_thread.most_common(20):
        print(f"{n:6d}  {n / a.rate:6.2f}s  {proc}  {thread}")
    if a.threads_only:
        return
    print(f"\n{total} samples selected ({total / a.rate:.2f}s)")
    for title, c in (("self", self_t), ("inclusive", incl)):
        print(f"\n-- top {title} --")
        for f, n in c.most_common(a.top):
            print(f"{100 * n / max(total, 1):5.1f}%  {n / a.rate:6.2f}s  {f[:150]}")


if __name__ == "__main__":
    main()
