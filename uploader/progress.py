"""Progress of a run: a live bar on a terminal, plain log lines otherwise, nothing in tests.

The pipeline reports what it reads and sends through the small :class:`Progress`
interface; which one it gets is the CLI's choice (:func:`progress_for`).
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import Protocol, TextIO

log = logging.getLogger("capi_uploader.progress")


class Progress(Protocol):
    """What the pipeline tells about its progress. ``sent`` may be called from delivery threads."""

    def reading(self, source: str, unit: str) -> None: ...

    def rows(self, count: int) -> None: ...

    def sending(self, count: int) -> None:
        """``count`` more events are on their way to Meta (fresh ones while reading, then the backlog)."""

    def sent(self, count: int) -> None: ...


class NoProgress:
    """Says nothing (tests, the demo, validate)."""

    def reading(self, source: str, unit: str) -> None:
        pass

    def rows(self, count: int) -> None:
        pass

    def sending(self, count: int) -> None:
        pass

    def sent(self, count: int) -> None:
        pass


class LogProgress:
    """Plain INFO log lines, at most one every ``every`` seconds while sending (cron, systemd)."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._lock = threading.Lock()
        self._unit: str | None = None
        self._rows = self._done = self._total = 0
        self._last = time.monotonic()

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._finish_unit()

    def reading(self, source: str, unit: str) -> None:
        self._finish_unit()
        self._unit, self._rows = f"{source}/{unit}", 0
        log.info("reading %s", self._unit)

    def rows(self, count: int) -> None:
        self._rows += count

    def sending(self, count: int) -> None:
        with self._lock:
            self._total += count

    def sent(self, count: int) -> None:
        with self._lock:
            self._done += count
            if time.monotonic() - self._last >= self.every or self._done >= self._total:
                self._last = time.monotonic()
                log.info("sent %d of %d events", self._done, self._total)

    def _finish_unit(self) -> None:
        if self._unit is not None:
            log.info("read %d rows from %s", self._rows, self._unit)
            self._unit = None


class BarProgress:
    """A live progress display on the terminal (rich), for long reads and sends."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TaskID

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=Console(file=stream), transient=False)
        self._read: TaskID | None = None
        self._send: TaskID | None = None

    def __enter__(self) -> BarProgress:
        self._bar.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._read is not None:
            self._bar.update(self._read, description="rows read", total=self._bar.tasks[self._read].completed)
        self._bar.stop()

    def reading(self, source: str, unit: str) -> None:
        if self._read is None:
            self._read = self._bar.add_task("reading", total=None)
        self._bar.update(self._read, description=f"reading {source}/{unit}")

    def rows(self, count: int) -> None:
        if self._read is not None:
            self._bar.advance(self._read, count)

    def sending(self, count: int) -> None:
        if self._send is None:
            self._send = self._bar.add_task("sending to Meta", total=count)
        else:
            self._bar.update(self._send, total=(self._bar.tasks[self._send].total or 0) + count)

    def sent(self, count: int) -> None:
        if self._send is not None:
            self._bar.advance(self._send, count)


def progress_for(stream: TextIO) -> BarProgress | LogProgress:
    """A live bar when ``stream`` is a terminal, plain log lines when it is not."""
    return BarProgress(stream) if stream.isatty() else LogProgress()
