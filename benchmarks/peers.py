#!/usr/bin/env python3
"""pyflow versions of the peer-engine workloads (shared/peers/bench.py, engine ``pyflow``).

usage: PEERS_DATA=<data dir> peers.py W INPUT_DIR OUT_DIR P

Runs workload W at parallelism P on the embedded local cluster, reading the P headerless CSV
shards of INPUT_DIR (one file per source subtask) and writing one part file per sink subtask
under OUT_DIR, in the line format bench.py compares:

    W1  auction,price_eur           filter price > 3000, price * 0.908 (BATCH mode)
    W2  auction,count,sum           per auction, final value (BATCH mode)
    W3  auction,window_start,count  event-time tumbling 10 s windows, watermark max(ts) - 5 s
                                    (STREAMING mode)
    W4  word,count                  word count, final value (BATCH mode)

Exit codes: 0 done, 1 the job failed, 2 the workload needs a feature this pyflow does not have
(W3 before event time arrived), as `pyflow run` does for NotYetSupportedError.
"""

from __future__ import annotations

import csv
import os
import sys
from datetime import timedelta

# run pyflow from this checkout (benchmarks/..), whatever else the interpreter has installed
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from pyflow import FileSink, FileSource, RuntimeExecutionMode, StreamExecutionEnvironment  # noqa: E402
from pyflow.errors import NotYetSupportedError  # noqa: E402

BID_COLUMNS = ["auction", "bidder", "price", "channel", "url", "date_time", "extra"]
EUR_PER_USD = 0.908


def read_bids(env: StreamExecutionEnvironment, inp: str):
    # only auction and price are converted (projection pushed into pyarrow's CSV reader)
    return env.read_files(inp, format="csv", column_names=BID_COLUMNS, has_header=False,
                          columns=["auction", "price"])


def w1(env, inp):
    """Nexmark Q1/Q2: vectorized filter, then a vectorized projection."""
    return (read_bids(env, inp)
            .filter(pc.field("price") > 3000)
            .map_batches(lambda b: {"auction": b["auction"],
                                    "price_eur": pc.multiply(pc.cast(b["price"], pa.float64()), EUR_PER_USD)}))


def w2(env, inp):
    """count and sum of price per auction: a column of ones summed next to price."""
    return (read_bids(env, inp)
            .map_batches(lambda b: {"auction": b["auction"],
                                    "count": pa.repeat(pa.scalar(1, pa.int64()), b.num_rows),
                                    "sum": b["price"]})
            .key_by("auction")
            .sum(["count", "sum"]))


def w3(env, inp):
    """Event-time tumbling 10 s windows, count per auction, watermark max(ts) - 5 s: STREAMING
    mode, as the PyFlink SQL peer (windows fire on watermarks, not at the end of the input)."""
    try:
        from pyflow import TumblingEventTimeWindows, WatermarkStrategy
    except ImportError:  # releases before event time
        raise NotYetSupportedError(
            "W3 needs event-time tumbling windows with a bounded-out-of-orderness watermark; this "
            "pyflow has no WatermarkStrategy / TumblingEventTimeWindows yet") from None
    env.set_runtime_mode(RuntimeExecutionMode.STREAMING)
    watermarks = (WatermarkStrategy.for_bounded_out_of_orderness(timedelta(seconds=5))
                  .with_timestamp_assigner("date_time"))
    bids = env.from_source(FileSource(inp, format="csv", column_names=BID_COLUMNS, has_header=False,
                                      columns=["auction", "date_time"]), watermarks, "bids")
    return (bids.key_by("auction")
            .window(TumblingEventTimeWindows.of(timedelta(seconds=10)))
            .count()
            .map_batches(lambda b: {"auction": b["auction"], "window_start": b["window_start"],
                                    "count": b["count"]}))


def w4(env, inp):
    """Word count: split lines into words with Arrow, count per word."""
    lines = env.read_files(inp, format="csv", column_names=["line"], has_header=False)
    return (lines
            .map_batches(lambda b: {"word": pc.list_flatten(pc.utf8_split_whitespace(b["line"]))})
            .key_by("word")
            .count())


WORKLOADS = {"W1": w1, "W2": w2, "W3": w3, "W4": w4}


def unquote_csv(out: str) -> None:
    """FileSink's CSV writer quotes every string ("word",12); bench.py compares unquoted lines.
    FileSink has no quoting option yet, so the (small) W4 part files are rewritten."""
    for name in sorted(os.listdir(out)):
        if name[0] in "._":
            continue
        path = os.path.join(out, name)
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        with open(path, "w") as f:
            f.write("".join(",".join(r) + "\n" for r in rows))


def main(w: str, inp: str, out: str, p: int) -> int:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(p)
    env.set_runtime_mode(RuntimeExecutionMode.BATCH)  # bounded input: final value per key
    try:
        stream = WORKLOADS[w](env, inp)
    except NotYetSupportedError as e:
        print(f"pyflow does not support {w} yet: {e}", file=sys.stderr)
        return 2
    stream.sink_to(FileSink(out, format="csv", csv_header=False))
    env.execute(f"peers {w} p={p}")
    if w == "W4":
        unquote_csv(out)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] not in WORKLOADS:
        sys.exit(f"usage: peers.py {{{'|'.join(WORKLOADS)}}} INPUT_DIR OUT_DIR P")
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
