#!/usr/bin/env python3
"""Where a workload's time goes, stage by stage, without the cluster.

usage: stage_costs.py DATA_DIR [--workloads W1,W2,W4] [--p 1] [--repeat 3] [--batch-size 16384]

Runs the data path of each peers.py workload in one thread of one process with pyflow's own
runtime pieces (FileReader, the same pyarrow work as peers.py's map_batches functions, the
hash partitioner's key hashing and split, Arrow IPC serialization as the network does, the
vectorized KeyedAggregation, FileWriter) and times each stage separately (best of --repeat).
The sum is the floor of what one subtask of the job spends on data; wall time above it is
start-up, scheduling, threads and the network.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from pyflow.runtime import fileio  # noqa: E402
from pyflow.runtime.network.partitioners import split_by_channel  # noqa: E402
from pyflow.runtime.operators.aggregations import KeyedAggregation  # noqa: E402
from pyflow.state.key_groups import channels_for_hashes, hash_columns  # noqa: E402

BID_COLUMNS = ["auction", "bidder", "price", "channel", "url", "date_time", "extra"]


class Timer:
    def __init__(self):
        self.t = defaultdict(float)

    def __call__(self, name, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        self.t[name] += time.perf_counter() - t0
        return out


def ipc_round_trip(batch: pa.RecordBatch) -> pa.RecordBatch:
    buf = batch.serialize()  # what a BATCH frame carries
    return pa.ipc.read_record_batch(pa.py_buffer(bytearray(buf)), batch.schema)


def run(w: str, data: str, p: int, batch_size: int) -> dict[str, float]:
    tm = Timer()
    kind = "words" if w == "W4" else "bids"
    files = fileio.resolve_files(f"{data}/{kind}-s{p}")[:1]  # subtask 0's shard
    if w == "W4":
        reader = fileio.FileReader(files, "csv", column_names=["line"], has_header=False, batch_size=batch_size)
    else:
        reader = fileio.FileReader(files, "csv", column_names=BID_COLUMNS, has_header=False,
                                   columns=["auction", "price"], batch_size=batch_size)
    out_dir = tempfile.mkdtemp(prefix="stage-costs-")
    writer = fileio.FileWriter(out_dir, "csv", 0, csv_header=False)
    agg = None
    if w == "W2":
        agg = KeyedAggregation("sum", ["count", "sum"], ["auction"], rolling=False)
    elif w == "W4":
        agg = KeyedAggregation("count", [], ["word"], rolling=False)
    it = iter(reader.batches())
    expr = pc.field("price") > 3000
    while True:
        batch = tm("read csv", next, it, None)
        if batch is None:
            break
        if w == "W1":
            kept = tm("filter (expression)", batch.filter, expr)
            out = tm("map_batches", lambda b: pa.RecordBatch.from_pydict(
                {"auction": b["auction"], "price_eur": pc.multiply(pc.cast(b["price"], pa.float64()), 0.908)}), kept)
            tm("write csv", writer.write, out)
            continue
        if w == "W2":
            out = tm("map_batches", lambda b: pa.RecordBatch.from_pydict(
                {"auction": b["auction"], "count": pa.repeat(pa.scalar(1, pa.int64()), b.num_rows),
                 "sum": b["price"]}), batch)
            key = "auction"
        else:
            out = tm("map_batches", lambda b: pa.RecordBatch.from_pydict(
                {"word": pc.list_flatten(pc.utf8_split_whitespace(b["line"]))}), batch)
            key = "word"
        hashes = tm("key hash (partitioner)", hash_columns, [out.column(key)])
        channels = tm("key group -> channel", channels_for_hashes, hashes, 128, max(p, 2))
        pieces = tm("split by channel", split_by_channel, out, channels, max(p, 2))
        for _, piece in pieces:
            received = tm("IPC serialize + read", ipc_round_trip, piece)
            tm("keyed aggregation add", agg.add, received)
    if agg is not None:
        final = tm("keyed aggregation finish", agg.finish)
        tm("write csv", writer.write, final)
    tm("write csv", writer.close)
    return dict(tm.t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--workloads", default="W1,W2,W4")
    ap.add_argument("--p", type=int, default=1, help="read the shard of subtask 0 of p")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16384)
    a = ap.parse_args()
    for w in a.workloads.split(","):
        best: dict[str, float] = {}
        for _ in range(a.repeat):
            for k, v in run(w, a.data, a.p, a.batch_size).items():
                best[k] = min(best.get(k, np.inf), v)
        total = sum(best.values())
        print(f"\n{w} ({a.data}, shard 0 of {a.p}, batch {a.batch_size}): {total:.3f} s in stages")
        for k, v in sorted(best.items(), key=lambda kv: -kv[1]):
            print(f"  {v:7.3f} s  {100 * v / total:5.1f}%  {k}")


if __name__ == "__main__":
    main()
