"""The run lock: one run at a time per ledger, on every backend, across processes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from tests.conftest import Project
from tests.test_cli import cli, good_export
from uploader.errors import RunLocked
from uploader.ledger import Ledger
from uploader.ledger.lock import Heartbeat, RunLock, current_holder, process_alive
from uploader.ledger.schema import run_lock
from uploader.sandbox import SandboxServer

NOW = 1_795_168_800.0  # 2026-11-20T10:00:00Z


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_second_run_is_refused_with_the_holder_named(ledger_url: str) -> None:
    ledger = Ledger.open(ledger_url)
    clock = Clock()
    first = RunLock(ledger.engine, clock=clock)
    first.acquire()
    clock.now += 42
    with pytest.raises(RunLocked) as refused:
        RunLock(ledger.engine, clock=clock).acquire()
    assert str(refused.value) == (f"another run holds the lock (host {socket.gethostname()}, pid {os.getpid()}, "
                                  "since 2026-11-20T10:00:00Z (last heartbeat 42 s ago)); this run did nothing")
    assert refused.value.exit_code == 3
    first.release()
    second = RunLock(ledger.engine, clock=clock)
    second.acquire()  # free again
    assert current_holder(ledger.engine).holder == second.holder_id
    ledger.close()


def test_a_lock_whose_heartbeat_is_older_than_the_limit_is_taken_over(ledger_url: str) -> None:
    ledger = Ledger.open(ledger_url)
    clock = Clock()
    stale = RunLock(ledger.engine, stale_after=300, clock=clock)
    stale.host = "another-host"  # its pid cannot be checked from here: only the heartbeat counts
    stale.acquire()
    clock.now += 299
    with pytest.raises(RunLocked):
        RunLock(ledger.engine, stale_after=300, clock=clock).acquire()
    assert stale.refresh()  # a live holder keeps it
    clock.now += 301
    taker = RunLock(ledger.engine, stale_after=300, clock=clock)
    taker.acquire()
    holder = current_holder(ledger.engine)
    assert (holder.holder, holder.host) == (taker.holder_id, socket.gethostname())
    assert not stale.refresh()  # the old holder learns it lost the lock
    stale.release()  # and its release leaves the new holder alone
    assert current_holder(ledger.engine).holder == taker.holder_id
    ledger.close()


def test_a_lock_held_by_a_dead_process_on_this_host_is_taken_over_at_once(ledger_url: str) -> None:
    ledger = Ledger.open(ledger_url)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    ghost = RunLock(ledger.engine)
    ghost.pid = int(dead.stdout)  # finished and reaped: gone
    ghost.acquire()
    assert not process_alive(ghost.pid)
    taker = RunLock(ledger.engine)
    taker.acquire()
    assert current_holder(ledger.engine).pid == os.getpid()
    ledger.close()


def test_the_heartbeat_moves_while_the_run_goes_on(tmp_path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'l.db'}")
    clock = Clock()
    lock = RunLock(ledger.engine, clock=clock)
    lock.acquire()
    clock.now += 1000
    with Heartbeat(lock, every=0.01):
        deadline = time.monotonic() + 5
        while current_holder(ledger.engine).heartbeat_at != datetime.fromtimestamp(clock.now, UTC).replace(
                tzinfo=None) and time.monotonic() < deadline:
            time.sleep(0.01)
    assert current_holder(ledger.engine).heartbeat_at == datetime(2026, 11, 20, 10, 16, 40)
    lock.release()
    with ledger.engine.connect() as conn:
        assert conn.execute(select(run_lock)).all() == []
    ledger.close()


def test_a_cron_run_while_another_process_holds_the_lock_exits_3_with_the_holder(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    project.drop_file("a.csv", good_export())
    result, holder_pid = _while_locked(project, "run", env)
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.startswith(f"capi-uploader: another run holds the lock (host {socket.gethostname()}, "
                                    f"pid {holder_pid}, since ")
    assert result.stderr.rstrip().endswith("this run did nothing")
    assert [r for r in sandbox.requests() if r["method"] == "POST"] == []  # nothing read, nothing sent
    assert (project.drop / "a.csv").is_file()


def test_retry_while_another_run_holds_the_lock_exits_3_and_requeues_nothing(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    from uploader.ledger import FAILED, StoredEvent

    ledger = Ledger.open(f"sqlite:///{project.ledger_file}")
    now = int(time.time())
    payload = json.dumps({"event_name": "Lead", "event_time": now, "action_source": "system_generated",
                          "event_id": "e1", "user_data": {"em": hashlib.sha256(b"a@example.com").hexdigest()}})
    refused = StoredEvent("Lead", "e1", now, payload, 0, "system_generated", "crm")
    ledger.mark_failed(env["META_DATASET_ID"], refused, "HTTP 400, code 100: unknown lead", "T", time.time())
    ledger.close()
    result, _ = _while_locked(project, "retry", env)
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("capi-uploader: another run holds the lock")
    assert [r for r in sandbox.requests() if r["method"] == "POST"] == []  # nothing sent
    again = Ledger.open(f"sqlite:///{project.ledger_file}")
    assert again.count(env["META_DATASET_ID"], FAILED) == 1  # untouched: re-queued only under the lock
    again.close()
    result = cli("--config", str(project.config), "retry", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("capi-uploader retry: 1 failed events re-queued")
    assert [e["event_id"] for e in sandbox.accepted()] == ["e1"]


def test_after_a_sigkill_the_next_run_takes_the_lock_over(project: Project, env: dict[str, str],
                                                          sandbox: SandboxServer) -> None:
    project.drop_file("a.csv", good_export())
    holder = _hold_lock_in_another_process(project)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()  # reaped, as cron or systemd would
    result = cli("--config", str(project.config), "-v", "run", env=env)
    assert result.returncode == 0, result.stderr
    assert f"took over a stale run lock (host {socket.gethostname()}, pid {holder.pid}," in result.stderr
    assert len(sandbox.accepted()) == 1
    ledger = Ledger.open(f"sqlite:///{project.ledger_file}")
    assert current_holder(ledger.engine) is None  # released when the run ended
    ledger.close()


def _while_locked(project: Project, command: str, env: dict[str, str],
                  write_seconds: float = 0.0) -> tuple[subprocess.CompletedProcess[str], int]:
    """``capi-uploader <command>`` while another process holds the run lock; the result and that process's pid."""
    holder = _hold_lock_in_another_process(project, write_seconds)
    return _while_running(holder, project, command, env), holder.pid


def _while_running(other: subprocess.Popen[str], project: Project, command: str,
                   env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``capi-uploader <command>`` while ``other`` runs; ``other`` is stopped after."""
    try:
        return cli("--config", str(project.config), command, env=env)
    finally:
        other.kill()
        other.wait()


def _hold_lock_in_another_process(project: Project, write_seconds: float = 0.0) -> subprocess.Popen[str]:
    """Another process holding the run lock; with ``write_seconds``, it first writes to the ledger
    for that long in one transaction (from just after it says "held")."""
    Ledger.open(f"sqlite:///{project.ledger_file}").close()  # the tables exist before two processes race
    code = ("import sys, time; from uploader.ledger import Ledger; from uploader.ledger.lock import RunLock; "
            "engine = Ledger.open(sys.argv[1]).engine; RunLock(engine).acquire(); conn = engine.connect(); "
            "conn.exec_driver_sql('UPDATE run_lock SET pid = pid'); print('held', flush=True); "
            "time.sleep(float(sys.argv[2])); conn.commit(); time.sleep(120)")
    process = subprocess.Popen([sys.executable, "-c", code, f"sqlite:///{project.ledger_file}", str(write_seconds)],
                               stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def _write_in_another_process(project: Project, seconds: float) -> subprocess.Popen[str]:
    """Another program with a write transaction open on the ledger for ``seconds`` (no run lock)."""
    code = ("import sqlite3, sys, time; db = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "db.execute('BEGIN IMMEDIATE'); print('writing', flush=True); time.sleep(float(sys.argv[2]))")
    process = subprocess.Popen([sys.executable, "-c", code, str(project.ledger_file), str(seconds)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "writing"
    return process


def test_a_cron_run_waits_out_the_holders_long_write_and_exits_3(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    # The holder writes for longer than SQLite's own 5 s wait, as a fold into a large ledger does:
    # the second run waits for the write, then finds the lock taken (not "database is locked").
    project.drop_file("a.csv", good_export())
    result, holder_pid = _while_locked(project, "run", env, write_seconds=6.5)
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith(f"capi-uploader: another run holds the lock (host {socket.gethostname()}, "
                                    f"pid {holder_pid}, since ")
    assert [r for r in sandbox.requests() if r["method"] == "POST"] == []


def test_a_ledger_kept_locked_past_its_timeout_stops_the_run_naming_the_lock(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    project.write_config(ledger_url="sqlite:///state/ledger.db?timeout=1")  # ledger.url's timeout wins
    project.drop_file("a.csv", good_export())
    Ledger.open(f"sqlite:///{project.ledger_file}").close()
    result = _while_running(_write_in_another_process(project, seconds=30), project, "run", env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "capi-uploader: ledger.url: the ledger database stayed locked by another program (database is locked), "
        "so the run stopped. Close whatever holds it open for writing (a database browser, a stuck process) and "
        "run again: nothing is lost, and what was sent but not recorded goes again with the same event ids."]
    assert (project.drop / "a.csv").is_file()
