"""The bundled examples run as README.md says, and compute the right answer."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HAMLET = ROOT / "examples" / "data" / "hamlet.txt"


def reference_counts() -> Counter:
    return Counter(re.findall(r"[a-z']+", HAMLET.read_text().lower()))


def read_counts(folder: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for part in sorted(folder.glob("part-*.csv")):
        with open(part, newline="") as f:
            for word, n in csv.reader(f):
                assert word not in counts, f"{word} counted in two part files"
                counts[word] = int(n)
    return counts


@pytest.mark.parametrize("how", ["python", "pyflow run"])
def test_wordcount_example(tmp_path, how):
    out = tmp_path / "counts"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    script = str(ROOT / "examples" / "wordcount.py")
    if how == "python":
        cmd = [sys.executable, script, "--output", str(out), "--parallelism", "2"]
    else:
        cmd = [sys.executable, "-m", "pyflow.cli.main", "run", "-p", "2", script, "--output", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == dict(reference_counts())
    printed = [line for line in result.stdout.splitlines() if line.startswith(("1> (", "2> ("))]
    assert len(printed) == len(reference_counts())
    assert "Counted 277 words (167 distinct)" in result.stdout
