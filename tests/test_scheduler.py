"""``capi-uploader schedule``: the job, the listener, graceful shutdown, and two real timed runs."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import create_engine, select

from tests.conftest import Project
from tests.test_cli import COMMAND, good_export
from uploader.errors import StopRun
from uploader.ledger import Ledger
from uploader.ledger.lock import RunLock
from uploader.ledger.schema import run_lock, runs
from uploader.sandbox import SandboxServer
from uploader.scheduling import JOB_ID, RunCounter, build_scheduler, scheduled_run
from uploader.settings import ScheduleSettings


def leads(n: int, prefix: str) -> str:
    when = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = [f"Lead,{when},{prefix}{i}@example.com,{prefix}-{i}" for i in range(n)]
    return "event_name,event_time,email,external_id\n" + "\n".join(rows) + "\n"


def test_the_scheduled_job_reads_the_config_runs_once_and_returns_the_exit_code(
        project: Project, env: dict[str, str], sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    project.drop_file("a.csv", good_export())
    assert scheduled_run(str(project.config)) == 0
    assert len(sandbox.accepted()) == 1
    assert "sent to Meta:         1" in capsys.readouterr().out
    with create_engine(f"sqlite:///{project.ledger_file}").connect() as conn:
        assert conn.execute(select(runs.c.started_by, runs.c.sent, runs.c.exit_code)).all() == [("schedule", 1, 0)]


def test_a_scheduled_run_that_finds_the_lock_taken_is_skipped_not_failed(
        project: Project, env: dict[str, str], sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    project.drop_file("a.csv", good_export())
    ledger = Ledger.open(f"sqlite:///{project.ledger_file}")
    RunLock(ledger.engine).acquire()
    assert scheduled_run(str(project.config)) == 3
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING][0].startswith(
        "scheduled run skipped: another run holds the lock (host ")
    assert sandbox.accepted() == []
    counter = RunCounter()
    counter(JobExecutionEvent(EVENT_JOB_EXECUTED, JOB_ID, "default", datetime.now(UTC), retval=3))
    assert (counter.skipped, counter.finished, counter.failed) == (1, 0, 0)
    ledger.close()


def _boom() -> None:
    raise ValueError("boom")


def test_a_failing_job_is_counted_and_logged_at_error_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    scheduler = BackgroundScheduler()
    counter = RunCounter()
    scheduler.add_listener(counter, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_EXECUTED)
    scheduler.add_job(_boom, "date", run_date=datetime.now(UTC), id="boom")
    scheduler.start()
    try:
        _wait_until(lambda: counter.failed == 1)
    finally:
        scheduler.shutdown(wait=True)
    failure = [r for r in caplog.records if r.name == "capi_uploader.schedule"]
    assert [r.levelno for r in failure] == [logging.ERROR]
    assert failure[0].getMessage() == "scheduled run FAILED (1 failed so far): ValueError: boom"
    assert 'raise ValueError("boom")' in logging.Formatter().formatException(failure[0].exc_info)
    assert counter.summary() == "0 runs finished, 1 failed, 0 missed, 0 skipped (another run held the lock)"


def test_our_own_errors_are_one_line_and_a_missed_run_is_an_error_too(caplog: pytest.LogCaptureFixture) -> None:
    counter = RunCounter()
    due = datetime(2026, 11, 20, 2, 15, tzinfo=UTC)
    counter(JobExecutionEvent(EVENT_JOB_ERROR, JOB_ID, "default", due,
                              exception=StopRun("ledger.url: cannot open the ledger database (disk full)"),
                              traceback="Traceback ..."))
    counter(JobExecutionEvent(EVENT_JOB_MISSED, JOB_ID, "default", due))
    assert (counter.failed, counter.missed) == (1, 1)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, "scheduled run FAILED (1 failed so far): ledger.url: cannot open the ledger database "
                        "(disk full)"),
        (logging.ERROR, "scheduled run due at 2026-11-20 02:15:00+00:00 was MISSED: it could not start within "
                        "misfire_grace_seconds (1 missed so far)"),
    ]


def test_the_job_coalesces_runs_one_at_a_time_with_a_grace_time(tmp_path: Path) -> None:
    nightly = ScheduleSettings(cron="15 2 * * *", timezone="Europe/Berlin", misfire_grace_seconds=900)
    scheduler, _ = build_scheduler(tmp_path / "c.toml", nightly)
    job = scheduler.get_job(JOB_ID)
    assert (job.func, job.args, job.coalesce, job.max_instances, job.misfire_grace_time) == (
        scheduled_run, (str(tmp_path / "c.toml"),), True, 1, 900)
    assert isinstance(job.trigger, CronTrigger) and str(job.trigger.timezone) == "Europe/Berlin"
    after = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert job.trigger.get_next_fire_time(None, after) == datetime(2026, 11, 21, 1, 15, tzinfo=UTC)
    every, _ = build_scheduler(tmp_path / "c.toml", ScheduleSettings(cron=None, interval_minutes=30))
    assert isinstance(every.get_job(JOB_ID).trigger, IntervalTrigger)
    assert every.get_job(JOB_ID).trigger.interval == timedelta(minutes=30)


def test_sigterm_lets_the_run_in_flight_finish_then_exits_0(project: Project, env: dict[str, str],
                                                            sandbox: SandboxServer) -> None:
    project.write_config("[meta]\nbatch_size = 10\nconcurrency = 1\n[schedule]\ninterval_minutes = 60\n")
    project.drop_file("leads.csv", leads(30, "slow"))
    sandbox.set_faults(delay_seconds=0.7)  # three batches: about two seconds of sending
    process = _schedule(project, env)
    _wait_until(lambda: _lock_holder(project) is not None)  # the run is in flight
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "SIGTERM received: stopping; a run in flight is finished first" in err
    assert "stopped (1 runs finished, 0 failed, 0 missed, 0 skipped" in out
    assert len(sandbox.accepted()) == 30
    with create_engine(f"sqlite:///{project.ledger_file}").connect() as conn:
        assert conn.execute(select(runs.c.sent, runs.c.exit_code, runs.c.started_by, runs.c.error)).all() == [
            (30, 0, "schedule", None)]
    assert _lock_holder(project) is None


def test_two_timed_runs_the_second_sends_only_the_rows_added_in_between(project: Project, env: dict[str, str],
                                                                      sandbox: SandboxServer) -> None:
    project.write_config("[schedule]\ninterval_minutes = 0.05\n")  # every 3 seconds
    project.drop_file("first.csv", leads(2, "first"))
    process = _schedule(project, env)
    try:
        _wait_until(lambda: len(_runs(project)) >= 1)
        project.drop_file("second.csv", leads(1, "second"))
        _wait_until(lambda: len(_runs(project)) >= 2)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    first, second = _runs(project)[:2]
    assert (first.error, second.error) == (None, None), err
    assert (first.rows_read, first.sent, second.rows_read, second.sent) == (2, 2, 1, 1)
    assert sorted(e["user_data"]["external_id"] for e in sandbox.accepted()) == sorted(
        hashlib.sha256(x.encode()).hexdigest() for x in ("first-0", "first-1", "second-0"))
    assert out.startswith("capi-uploader schedule: every 0.05 minutes; first run now;")


def _schedule(project: Project, env: dict[str, str]) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("META_", "CAPI_UPLOADER"))}
    return subprocess.Popen([COMMAND, "--config", str(project.config), "schedule", "--now"],
                            env={**clean, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _runs(project: Project) -> list:
    if not project.ledger_file.exists():
        return []
    engine = create_engine(f"sqlite:///{project.ledger_file}")
    try:
        with engine.connect() as conn:
            return conn.execute(select(runs).order_by(runs.c.id)).all()
    except Exception:  # the tables may not exist yet
        return []
    finally:
        engine.dispose()


def _lock_holder(project: Project) -> object | None:
    if not project.ledger_file.exists():
        return None
    engine = create_engine(f"sqlite:///{project.ledger_file}")
    try:
        with engine.connect() as conn:
            return conn.execute(select(run_lock.c.pid)).first()
    except Exception:
        return None
    finally:
        engine.dispose()


def _wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting")
        time.sleep(0.05)


SIGNAL_INSIDE = """
import os, signal, sys
from pathlib import Path
from apscheduler.executors.pool import BasePoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from uploader.scheduling.scheduler import run_scheduler
from uploader.settings import ScheduleSettings

where = sys.argv[1]
owner, name = (MemoryJobStore, "get_due_jobs") if where == "due_jobs" else (BasePoolExecutor, "_do_submit_job")
real, calls = getattr(owner, name), []

def with_a_sigterm(*args, **kwargs):
    calls.append(1)
    if len(calls) == 1:
        os.kill(os.getpid(), signal.SIGTERM)  # lands while APScheduler is in its own code
    return real(*args, **kwargs)

setattr(owner, name, with_a_sigterm)
code = run_scheduler(Path(sys.argv[2]), ScheduleSettings(cron=None, interval_minutes=60), run_now=True)
print("calls", len(calls))
sys.exit(code)
"""


@pytest.mark.parametrize("where", ["due_jobs", "submit"])
def test_a_sigterm_inside_apschedulers_own_code_still_stops_the_scheduler(tmp_path: Path, where: str) -> None:
    """The signal lands while APScheduler asks its job store for due jobs (inside its own
    `except Exception`) or submits the job (inside its own `except BaseException`): the
    scheduler must still stop. A handler that raised was swallowed there and the process
    ran on forever; the timeout turns such a hang into a failure."""
    result = subprocess.run([sys.executable, "-c", SIGNAL_INSIDE, where, str(tmp_path / "missing.toml")],
                            capture_output=True, text=True, timeout=60, cwd=os.getcwd())
    assert result.returncode == 0, result.stderr
    assert "SIGTERM received: stopping; a run in flight is finished first" in result.stderr
    assert "capi-uploader schedule: stopped (" in result.stdout
    assert "calls 1" in result.stdout or where == "due_jobs"  # the job was submitted once


