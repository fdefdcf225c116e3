"""The pyflow CLI's pure parts: Flink's `list` output, progress lines and their reporter. No
cluster: the reporter reads from a function."""

from __future__ import annotations

import io
import threading
import time

from pyflow.cli.main import format_job_list
from pyflow.cli.progress import (JobProgress, ProgressReporter, VertexProgress, format_bytes, format_count,
                                 format_progress, format_progress_plain)

JOBS = [
    {"jid": "a" * 32, "name": "clicks", "state": "RUNNING", "start-time": 2_000},
    {"jid": "b" * 32, "name": "old", "state": "FINISHED", "start-time": 1_000},
    {"jid": "c" * 32, "name": "new", "state": "CREATED", "start-time": 3_000},
    {"jid": "d" * 32, "name": "failing", "state": "FAILING", "start-time": 1_500},
]


def utc(seconds: float) -> time.struct_time:
    return time.gmtime(seconds)


def test_list_prints_flinks_sections():
    text = format_job_list(JOBS, running=True, scheduled=True, show_all=False, to_time=utc)
    assert text.splitlines() == [
        "------------------ Running/Restarting Jobs -------------------",
        f"01.01.1970 00:00:01 : {'d' * 32} : failing (FAILING)",
        f"01.01.1970 00:00:02 : {'a' * 32} : clicks (RUNNING)",
        "--------------------------------------------------------------",
        "----------------------- Scheduled Jobs -----------------------",
        f"01.01.1970 00:00:03 : {'c' * 32} : new (CREATED)",
        "--------------------------------------------------------------",
    ]


def test_list_all_adds_terminated_jobs_and_says_when_there_are_none():
    text = format_job_list(JOBS[1:2], running=False, scheduled=False, show_all=True, to_time=utc)
    assert text.splitlines() == [
        "No running jobs.", "No scheduled jobs.",
        "---------------------- Terminated Jobs -----------------------",
        f"01.01.1970 00:00:01 : {'b' * 32} : old (FINISHED)",
        "--------------------------------------------------------------",
    ]
    assert format_job_list([], running=True, scheduled=False, show_all=False) == "No running jobs."


def test_counts_and_sizes():
    assert [format_count(n) for n in (0, 999, 1_000, 12_345, 4_560_000, 123_000_000, 7.1e9)] == \
           ["0", "999", "1k", "12.3k", "4.56M", "123M", "7.1G"]
    assert [format_bytes(n) for n in (512, 1536, 12.3 * 2**20, 3 * 2**30)] == ["512 B", "1.5 KB", "12.3 MB", "3.0 GB"]


PROGRESS = JobProgress("RUNNING", 75_000, [VertexProgress("Source: File Source -> Map", "RUNNING", 0, 12_000),
                                           VertexProgress("Keyed Aggregation -> Sink", "RUNNING", 11_500, 0)],
                       bytes_read=3 * 2**20, bytes_total=4 * 2**20)


def test_progress_line_with_a_bar_and_records_per_vertex():
    assert format_progress(PROGRESS) == ("RUNNING 1m15s | input [###############.....]  75% | "
                                         "Source: File Source -> Map 0 in, 12k out | "
                                         "Keyed Aggregation -> Sink 11.5k in, 0 out")
    assert format_progress(PROGRESS, width=40) == "RUNNING 1m15s | input [##############..."
    no_files = JobProgress("RUNNING", 1_000, PROGRESS.vertices)
    assert "input" not in format_progress(no_files) and no_files.fraction is None


def test_plain_progress_line_for_logs():
    assert format_progress_plain(PROGRESS, "f" * 32) == (
        f"Job {'f' * 32} RUNNING for 1m15s; input 75% read (3.0 MB of 4.0 MB); "
        "Source: File Source -> Map: 0 in, 12000 out; Keyed Aggregation -> Sink: 11500 in, 0 out")


def run_reporter(states: list[str], *, redraw: bool) -> str:
    stream = io.StringIO()
    rounds = iter(states)
    done = threading.Event()

    def fetch() -> JobProgress:
        state = next(rounds, None)
        if state is None:
            done.set()
            raise ConnectionError("no more answers")  # a missed round is skipped
        if state == "error":
            raise ConnectionError("cluster busy")
        return JobProgress(state, 1_000, PROGRESS.vertices, 1, 2)

    reporter = ProgressReporter("e" * 32, fetch, stream, redraw=redraw, interval_s=0.01, width=lambda: 200).start()
    reporter._thread.join(5)  # it ends by itself once the job ended
    assert not reporter._thread.is_alive() and not done.is_set()
    reporter.stop()  # idempotent
    return stream.getvalue()


def test_reporter_redraws_one_line_and_clears_it_when_the_job_ends():
    text = run_reporter(["RUNNING", "error", "RUNNING", "FINISHED"], redraw=True)
    assert text.count("\r") == 4 and text.endswith("\r\x1b[K") and "\n" not in text
    assert "FINISHED 1s | input [##########..........]  50%" in text


def test_reporter_prints_plain_lines_for_logs():
    lines = run_reporter(["RUNNING", "error", "FINISHED"], redraw=False).splitlines()
    assert [line.split(" ")[2] for line in lines] == ["RUNNING", "FINISHED"]
    assert all(line.startswith(f"Job {'e' * 32} ") and "\x1b" not in line for line in lines)


def test_a_reporter_stopped_early_writes_nothing():
    stream = io.StringIO()
    reporter = ProgressReporter("e" * 32, lambda: PROGRESS, stream, redraw=False, interval_s=60).start()
    reporter.stop()
    assert stream.getvalue() == ""
