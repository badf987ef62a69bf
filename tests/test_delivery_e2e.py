"""Delivery against the real sandbox over loopback: faults, bad-event isolation, bad tokens,
and a real ``capi-uploader run`` process killed with SIGKILL at many points of a run."""

from __future__ import annotations

import collections
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import DATASET, TOKEN, Project
from uploader.cli import main
from uploader.pipeline import run_once
from uploader.sandbox import SandboxServer
from uploader.settings import load_settings

COMMAND = str(Path(sys.executable).parent / "capi-uploader")
FAST_RETRIES = "[meta]\nretry_base_seconds = 0.01\nmax_attempts = 4\n"


def leads_csv(n: int, lead_base: int = 100_000_000_000_000) -> str:
    when = (datetime.now(UTC) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = [f"Lead,{when},person{i}@example.com,{lead_base + i}" for i in range(n)]
    return "event_name,event_time,email,lead_id\n" + "\n".join(rows) + "\n"


def test_bursts_of_5xx_and_throttling_still_deliver_every_event_exactly_once(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    project.drop_file("leads.csv", leads_csv(50))
    project.write_config(FAST_RETRIES + "batch_size = 10\n")
    sandbox.set_faults(fail_next_n_with_500=3, throttle_next_n=2, drop_next_n=1)
    report = run_once(load_settings(project.config, environ=env))
    assert report.sent == 50 and report.pending_left == 0 and report.exit_code() == 0
    ids = [e["event_id"] for e in sandbox.accepted()]
    assert len(ids) == len(set(ids)) == 50


def test_one_unknown_lead_in_1000_costs_log2_requests_and_only_that_event(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    project.drop_file("leads.csv", leads_csv(1000))
    bad = str(100_000_000_000_000 + 617)
    sandbox.set_faults(reject_lead_ids=[bad])
    report = run_once(load_settings(project.config, environ=env))
    posts = [r for r in sandbox.requests() if r["method"] == "POST"]
    assert report.sent == 999 and report.failed == 1 and report.pending_left == 0
    assert len(posts) - 1 <= 20  # about 2 * log2(1000) extra requests
    assert bad not in {e["user_data"].get("lead_id") for e in sandbox.accepted()}
    assert report.rejections[0].message.startswith("HTTP 400, code 100/2804019")
    assert report.rejections[0].fbtrace_id
    assert "refused by Meta:      1 (fix the cause, then `capi-uploader retry`)" in report.render()
    assert report.exit_code() == 1

    sandbox.set_faults(reject_lead_ids=[])  # the operator fixed the lead in Meta
    for key, value in env.items():
        os.environ[key] = value
    try:
        with pytest.raises(SystemExit) as done:
            main(["--config", str(project.config), "retry"])
    finally:
        for key in env:
            os.environ.pop(key, None)
    assert done.value.code == 0
    assert len(sandbox.accepted()) == 1000
    assert len({e["event_id"] for e in sandbox.accepted()}) == 1000


def test_a_bad_token_fails_fast_and_leaves_the_ledger_unchanged(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    project.drop_file("leads.csv", leads_csv(5))
    run_once(load_settings(project.config, environ=env))
    before = project.ledger_file.read_bytes()
    project.drop_file("more.csv", leads_csv(5, lead_base=200_000_000_000_000))
    result = subprocess.run([COMMAND, "--config", str(project.config), "run"], capture_output=True, text=True,
                            env={**os.environ, **env, "META_ACCESS_TOKEN": "EAAexpired"}, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("capi-uploader: Meta refused the request: the access token is invalid")
    assert project.ledger_file.read_bytes() == before
    # Only the preflight reached Meta: no batch of the new file was ever posted.
    assert [r["method"] for r in sandbox.requests()][-1] == "GET"
    assert sum(r["method"] == "POST" for r in sandbox.requests()) == 1  # the first run's one batch
    assert len(sandbox.accepted()) == 5


class Killer:
    """Kills the uploader process when its trigger fires."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.accepted_batches = 0
        self.kill_on_batch: int | None = None
        self.killed = False

    def on_accept(self, n_events: int) -> None:
        # Runs in the sandbox after it recorded the batch and before it answers: the worst moment.
        self.accepted_batches += 1
        if self.kill_on_batch == self.accepted_batches:
            self.kill()

    def kill(self) -> None:
        if self.process is not None and not self.killed:
            os.kill(self.process.pid, signal.SIGKILL)
            self.killed = True


def ledger_rows(path: Path) -> int:
    """Events recorded: in `events`, or sent and still in the journal (not folded yet)."""
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM journal)").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.parametrize(("rows", "concurrency", "trigger"), [
    (200, 1, ("batch", 1)),
    (200, 1, ("batch", 7)),
    (200, 1, ("batch", 20)),
    (200, 4, ("batch", 9)),
    (20_000, 1, ("recorded", 6_000)),
    (20_000, 1, ("batch", 3)),
    (20_000, 1, ("seconds", 2.5)),
])
def test_sigkill_at_any_point_loses_nothing_and_repeats_at_most_the_batches_in_flight(
        tmp_path: Path, rows: int, concurrency: int, trigger: tuple[str, float]) -> None:
    batch = 10 if rows == 200 else 1000
    project = Project(tmp_path / "p", extra="")
    project.write_config(f"[run]\nchunk_size = 2000\n[meta]\nbatch_size = {batch}\nconcurrency = {concurrency}\n")
    project.drop_file("leads.csv", leads_csv(rows))
    killer = Killer()
    kind, point = trigger
    killer.kill_on_batch = int(point) if kind == "batch" else None
    with SandboxServer(token=TOKEN, dataset_id=DATASET, on_accept=killer.on_accept) as sandbox:
        # A slower Meta for the timed kill, so the run is surely still going at that point.
        sandbox.set_faults(delay_seconds=0.15 if kind == "seconds" else 0.02)
        env = {**os.environ, "META_ACCESS_TOKEN": TOKEN, "META_DATASET_ID": DATASET, "META_GRAPH_URL": sandbox.url}
        killer.process = subprocess.Popen([COMMAND, "--config", str(project.config), "run"], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        _wait_for_trigger(killer, kind, point, project)
        first_code = killer.process.wait(timeout=120)
        assert killer.killed and first_code == -signal.SIGKILL, "the run ended before the kill point"
        sandbox.set_faults(delay_seconds=0)
        second = subprocess.run([COMMAND, "--config", str(project.config), "run"], env=env,
                                capture_output=True, text=True, timeout=300)
        assert second.returncode == 0, second.stdout + second.stderr
        accepted = sandbox.accepted()
    counts = collections.Counter(e["event_id"] for e in accepted)
    assert len(counts) == rows  # every conversion arrived
    repeated = [e for e in accepted if counts[e["event_id"]] > 1]
    assert len({e["event_id"] for e in repeated}) <= batch * concurrency  # only the batches in flight
    by_id: dict[str, dict] = {}
    for event in repeated:  # a repeat is the very same event: same id, same time, same payload
        assert by_id.setdefault(event["event_id"], event) == event


def _wait_for_trigger(killer: Killer, kind: str, point: float, project: Project) -> None:
    deadline = time.monotonic() + 120
    started = time.monotonic()
    while not killer.killed and killer.process is not None and killer.process.poll() is None:
        if time.monotonic() > deadline:
            killer.kill()
            pytest.fail("the kill point was never reached")
        if kind == "recorded" and ledger_rows(project.ledger_file) >= point:
            killer.kill()
        if kind == "seconds" and time.monotonic() - started >= point:
            killer.kill()
        time.sleep(0.01)
