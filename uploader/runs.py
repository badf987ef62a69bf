"""A run that records and sends: held under the run lock, timed, and kept.

``run_once`` wraps every sending run (``run``, ``backfill``, the scheduled job,
``retry``) in :func:`recorded_run`: the lock is taken before anything is read
(a second run exits 3 at once), its heartbeat is refreshed while the run goes
on, and however the run ends, its report is written as JSON and kept in the
ledger's ``runs`` table before the lock is released.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError

from uploader.errors import UploaderError
from uploader.ledger import Ledger, ledger_failure
from uploader.ledger.history import save_run
from uploader.ledger.lock import Heartbeat, RunLock
from uploader.report import RunReport
from uploader.settings import Settings

log = logging.getLogger("capi_uploader.runs")


@contextmanager
def recorded_run(ledger: Ledger, settings: Settings, report: RunReport,
                 clock: Callable[[], float]) -> Iterator[None]:
    """Hold the run lock around the block, then keep the report. Raises RunLocked (exit 3)."""
    lock = RunLock(ledger.engine, settings.lock_stale_seconds, clock)
    lock.acquire()
    log.info("%s %s started (run lock taken)", report.mode, report.run_id)
    start = time.monotonic()
    try:
        ledger.fold()  # sent outcomes an interrupted run journaled: in events before anything reads them
        with Heartbeat(lock, every=max(1.0, settings.lock_stale_seconds / 5)):
            yield
    except BaseException as exc:
        report.error, report.error_code = describe_error(exc)
        raise
    finally:
        report.finished_at = clock()
        report.durations["total"] = time.monotonic() - start
        try:
            keep(ledger, settings, report)
        finally:
            lock.release()


def keep(ledger: Ledger, settings: Settings, report: RunReport) -> None:
    """Write the JSON report and its row in ``runs``; a failure here is logged, never raised,
    so it cannot hide what the run itself did."""
    try:
        report.write_json(settings.reports_dir)
        save_run(ledger.engine, {**report.to_dict(), "report_path": str(report.report_path)})
    except Exception as exc:
        log.error("could not keep the run report of %s: %s", report.run_id, exc)


def describe_error(exc: BaseException) -> tuple[str, int]:
    """The one-line message and exit code a run that stopped on ``exc`` is recorded with."""
    if isinstance(exc, SQLAlchemyError):  # the ledger's own database failed (see stop_on_ledger_errors)
        exc = ledger_failure(exc)
    if isinstance(exc, UploaderError):
        return str(exc), exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", 130
    return f"{type(exc).__name__}: {exc}", 1
