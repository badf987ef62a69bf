"""Progress: what a run reports while it reads and sends; a bar on a terminal, log lines elsewhere."""

from __future__ import annotations

import io
import logging

import pytest

from tests.conftest import Project
from tests.test_scheduler import leads
from uploader.pipeline import run_once
from uploader.progress import BarProgress, LogProgress, progress_for
from uploader.sandbox import SandboxServer
from uploader.settings import load_settings


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def reading(self, source: str, unit: str) -> None:
        self.calls.append(("reading", f"{source}/{unit}"))

    def rows(self, count: int) -> None:
        self.calls.append(("rows", count))

    def sending(self, total: int) -> None:
        self.calls.append(("sending", total))

    def sent(self, count: int) -> None:
        self.calls.append(("sent", count))


def test_a_run_reports_rows_per_chunk_and_events_per_accepted_batch(project: Project, env: dict[str, str],
                                                                     sandbox: SandboxServer) -> None:
    project.write_config("[run]\nchunk_size = 100\n[meta]\nbatch_size = 100\nconcurrency = 1\n")
    project.drop_file("leads.csv", leads(250, "p"))
    recorder = Recorder()
    run_once(load_settings(project.config, environ=env), progress=recorder)
    # Each chunk's new events are queued as it is read; batches report as Meta accepts them
    # (from the sending threads, so their place among the other calls varies).
    assert [c for c in recorder.calls if c[0] != "sent"] == [
        ("reading", "sales_ops/leads.csv"), ("sending", 100), ("rows", 100), ("sending", 100), ("rows", 100),
        ("sending", 50), ("rows", 50), ("sending", 0)]
    assert sorted(count for kind, count in recorder.calls if kind == "sent") == [50, 100, 100]


def test_without_a_terminal_progress_is_plain_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with LogProgress(every=3600) as progress:
        progress.reading("s", "a.csv")
        progress.rows(10)
        progress.rows(5)
        progress.sending(20)
        progress.sent(10)  # within the hour: quiet
        progress.sent(10)  # all sent: said
    assert [r.getMessage() for r in caplog.records] == [
        "reading s/a.csv", "sent 20 of 20 events", "read 15 rows from s/a.csv"]
    assert isinstance(progress_for(io.StringIO()), LogProgress)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_a_bar_shows_rows_read_and_events_sent() -> None:
    screen = Terminal()
    bar = progress_for(screen)
    assert isinstance(bar, BarProgress)
    with bar:
        bar.reading("s", "a.csv")
        bar.rows(40)
        bar.sending(30)
        bar.sent(30)
    text = screen.getvalue()
    assert "rows read" in text and "40/40" in text and "sending to Meta" in text and "30/30" in text
