"""The timer around ``run_once``: APScheduler 3, one job, one run at a time.

The job is a top-level function with a stable id, so APScheduler can name it in
its logs and a persistent job store could find it again. Missed runs coalesce
into one; a run still going when the next is due makes the next wait
(``max_instances=1``), and the ledger's run lock keeps a cron run from
overlapping too. APScheduler only logs a job's exception: :class:`RunCounter`
listens for errors and misses, logs them loudly and counts them.

SIGTERM or SIGINT stops the process gracefully: no new run starts, a run in
flight finishes (its events are sent or stay safely pending), then it exits 0. The
scheduler runs in its own thread; the signal handler only records the signal, and the
main thread, which waits for that, shuts the scheduler down.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from uploader.errors import RunLocked, UploaderError
from uploader.pipeline import run_once
from uploader.progress import LogProgress
from uploader.settings import ScheduleSettings, load_settings

log = logging.getLogger("capi_uploader.schedule")
JOB_ID = "capi-uploader-run"
SKIPPED = 3  # what scheduled_run returns when another run held the lock
STOP_POLL_SECONDS = 0.2  # how often the main thread looks for a stop signal


def scheduled_run(config_path: str) -> int:
    """The scheduled job: read the configuration afresh (a rotated token in .env is picked
    up), run once, print the summary. Returns the run's exit code; errors propagate to
    the scheduler, whose listener logs and counts them."""
    settings = load_settings(Path(config_path))
    try:
        with LogProgress() as progress:  # a service has no terminal: progress as INFO lines
            report = run_once(settings, started_by="schedule", progress=progress)
    except RunLocked as exc:
        log.warning("scheduled run skipped: %s", exc)
        return SKIPPED
    print(report.render(), flush=True)
    code = report.exit_code()
    if code:
        log.warning("scheduled run finished but needs a look (exit code %d): see its summary", code)
    else:
        log.info("scheduled run finished: %d events sent", report.sent)
    return code


class RunCounter:
    """Listens to the scheduler: counts runs, failures and misses; failures are logged at ERROR."""

    def __init__(self) -> None:
        self.finished = self.failed = self.missed = self.skipped = 0
        self._lock = threading.Lock()

    def __call__(self, event: JobEvent) -> None:
        with self._lock:
            if event.code == EVENT_JOB_ERROR:
                self.failed += 1
                exc = getattr(event, "exception", None)
                # Our own errors are one clear line; anything else comes with its traceback.
                log.error("scheduled run FAILED (%d failed so far): %s", self.failed,
                          exc if isinstance(exc, UploaderError) else f"{type(exc).__name__}: {exc}",
                          exc_info=None if isinstance(exc, UploaderError) else exc)
            elif event.code == EVENT_JOB_MISSED:
                self.missed += 1
                log.error("scheduled run due at %s was MISSED: it could not start within misfire_grace_seconds "
                          "(%d missed so far)", event.scheduled_run_time, self.missed)
            elif getattr(event, "retval", None) == SKIPPED:
                self.skipped += 1
            else:
                self.finished += 1

    def summary(self) -> str:
        return (f"{self.finished} runs finished, {self.failed} failed, {self.missed} missed, "
                f"{self.skipped} skipped (another run held the lock)")


def trigger_for(schedule: ScheduleSettings) -> BaseTrigger:
    """The cron expression or the interval; the machine's time zone unless one is set."""
    if schedule.interval_minutes is not None:
        return IntervalTrigger(seconds=schedule.interval_minutes * 60, timezone=schedule.timezone)
    return CronTrigger.from_crontab(schedule.cron or ScheduleSettings.cron, timezone=schedule.timezone)


def describe(schedule: ScheduleSettings) -> str:
    zone = schedule.timezone or "the machine's time zone"
    if schedule.interval_minutes is not None:
        return f"every {schedule.interval_minutes:g} minutes"
    return f"cron {schedule.cron!r} ({zone})"


def build_scheduler(config_path: Path, schedule: ScheduleSettings,
                    run_now: bool = False) -> tuple[BackgroundScheduler, RunCounter]:
    """A scheduler holding the one job, with the listener attached (not started)."""
    scheduler = BackgroundScheduler(timezone=schedule.timezone) if schedule.timezone else BackgroundScheduler()
    counter = RunCounter()
    scheduler.add_listener(counter, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_EXECUTED)
    when = {"next_run_time": datetime.now(scheduler.timezone)} if run_now else {}
    scheduler.add_job(scheduled_run, trigger_for(schedule), args=[str(config_path)], id=JOB_ID,
                      name="capi-uploader run", coalesce=True, max_instances=1,
                      misfire_grace_time=schedule.misfire_grace_seconds, replace_existing=True, **when)
    return scheduler, counter


def run_scheduler(config_path: Path, schedule: ScheduleSettings, run_now: bool = False,
                  echo: Callable[[str], None] = print) -> int:
    """Run until SIGTERM or SIGINT; returns 0 after a graceful stop."""
    scheduler, counter = build_scheduler(config_path, schedule, run_now)
    first = "now" if run_now else trigger_for(schedule).get_next_fire_time(None, datetime.now(scheduler.timezone))
    echo(f"capi-uploader schedule: {describe(schedule)}; first run {first}; stop with SIGTERM or Ctrl-C")
    sys.stdout.flush()
    stop = _StopRequest()
    with _stop_on_signals(stop):
        scheduler.start()
        try:
            while stop.signal is None:
                time.sleep(STOP_POLL_SECONDS)
            log.warning("%s received: stopping; a run in flight is finished first", stop.signal)
        finally:
            scheduler.shutdown(wait=True)
    echo(f"capi-uploader schedule: stopped ({counter.summary()})")
    return 0


class _StopRequest:
    """The first SIGTERM or SIGINT, as its name; None until one arrives.

    The handler only sets this attribute. A handler that raised could land inside one of
    APScheduler's ``except BaseException`` (around submitting a job, among others) and be
    swallowed, leaving the process running forever; one that logged or set a
    ``threading.Event`` could wait for a lock held by the very code it interrupted.
    """

    def __init__(self) -> None:
        self.signal: str | None = None


@contextmanager
def _stop_on_signals(stop: _StopRequest) -> Iterator[None]:
    def record(signum: int, frame: FrameType | None) -> None:
        if stop.signal is None:  # a second signal changes nothing: the run in flight still finishes
            stop.signal = signal.Signals(signum).name

    previous = {sig: signal.signal(sig, record) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
