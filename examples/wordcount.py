"""Word count, Flink's classic first job, on a bundled text (Hamlet's soliloquy).

Run it either way (both use the embedded local cluster: a JobManager in this process and
TaskManager processes started for the job):

    pyflow run examples/wordcount.py
    python examples/wordcount.py --input my.txt --output counts/ --parallelism 2

It prints "(word,count)" lines and writes the same counts as CSV part files under --output.
BATCH mode makes the keyed sum emit one final count per word (STREAMING would print every update).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from pyflow import FileSink, RuntimeExecutionMode, StreamExecutionEnvironment

DEFAULT_INPUT = Path(__file__).parent / "data" / "hamlet.txt"


def tokenize(line: str) -> list[tuple[str, int]]:
    return [(word, 1) for word in re.findall(r"[a-z']+", line.lower())]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=str(DEFAULT_INPUT), help="text file(s): a path, folder or glob")
    parser.add_argument("--output", default="wordcount-out", help="folder for the CSV part files")
    parser.add_argument("--parallelism", type=int, default=None)
    args = parser.parse_args(argv)

    env = StreamExecutionEnvironment.get_execution_environment()
    if args.parallelism:
        env.set_parallelism(args.parallelism)
    env.set_runtime_mode(RuntimeExecutionMode.BATCH)

    counts = (
        env.read_files(args.input, format="text")
        .flat_map(tokenize).name("tokenize")
        .key_by(0)
        .sum(1).name("count")
    )
    counts.print()
    counts.sink_to(FileSink(args.output, format="csv", csv_header=False))
    result = env.execute("word count")
    print(f"Counted {result.record_counts()['tokenize']} words ({result.record_counts()['count']} "
          f"distinct) in {result.get_net_runtime()} ms; counts written to {args.output}/")


if __name__ == "__main__":
    main()
