"""``capi-uploader backfill``: a window re-read, the ledger still deciding, the too-old part reported expired."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from connectors import Window
from tests.conftest import DATASET, Project
from tests.test_cli import cli
from uploader.backfill import only_source, parse_moment, window
from uploader.errors import ConfigError
from uploader.ledger import EXPIRED, SENT, Ledger
from uploader.sandbox import SandboxServer
from uploader.settings import load_settings

DAY = 86_400


def drop_daily_files(project: Project, days: int) -> None:
    """One file per day, going back ``days`` days: its one lead happened, and the file was written,
    half a day into that day (so day 7 is 7.5 days old: past Meta's 7 days)."""
    now = time.time()
    for day in range(days):
        moment = now - day * DAY - DAY / 2
        stamp = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        path = project.drop_file(f"day-{day}.csv", f"event_name,event_time,email\nLead,{stamp},d{day}@example.com\n")
        os.utime(path, (moment, moment))


def test_a_ten_day_backfill_sends_the_last_seven_days_and_reports_the_rest_expired(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    drop_daily_files(project, 10)
    since = (datetime.now(UTC) - timedelta(days=10)).strftime("%Y-%m-%d")
    result = cli("--config", str(project.config), "backfill", "--since", since, env=env)
    assert result.returncode == 1, result.stderr  # expired events need a look
    assert result.stdout.startswith("capi-uploader backfill: 10 rows read from 10 files")
    assert "  rows refused:         0\n" in result.stdout
    assert "  expired when read (older than Meta accepts, not sent): 3\n" in result.stdout
    assert "  sent to Meta:         7\n" in result.stdout
    assert len(sandbox.accepted()) == 7
    report = json.loads(next((project.root / "reports").glob("run-*.json")).read_text(encoding="utf-8"))
    assert (report["mode"], report["sent"], report["expired"], report["refused"]["total"]) == (
        "backfill", 7, {"total": 3, "when_read": 3, "while_pending": 0}, 0)
    assert report["window"]["since"] == f"{since}T00:00:00Z"
    status = cli("--config", str(project.config), "status", "--json", env=env)
    last = json.loads(status.stdout)["runs"][0]
    assert (last["mode"], last["figures"]["sent"], last["figures"]["expired"]) == ("backfill", 7, 3)

    again = cli("--config", str(project.config), "backfill", "--since", since, env=env)
    assert "  duplicates skipped:   7\n" in again.stdout and "  sent to Meta:         0\n" in again.stdout
    assert len(sandbox.accepted()) == 7  # the ledger still guarantees once


def test_a_backfill_rereads_processed_files_and_sends_nothing_twice(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    drop_daily_files(project, 3)
    settings = load_settings(project.config, environ=env)
    from uploader.pipeline import run_once

    assert run_once(settings).sent == 3
    assert sorted(p.name for p in (project.drop / "processed").iterdir()) == ["day-0.csv", "day-1.csv", "day-2.csv"]
    two_days = Window(time.time() - 2 * DAY, None)
    report = run_once(settings, window=two_days)
    assert (report.files_read, report.duplicates, report.sent) == (["day-1.csv", "day-0.csv"], 2, 0)
    assert report.mode == "backfill" and len(sandbox.accepted()) == 3
    dry = run_once(settings, send=False, window=two_days)
    assert dry.mode == "backfill dry run" and dry.events_mapped == 2


def test_a_dry_run_records_and_sends_nothing(project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    drop_daily_files(project, 9)
    since = (datetime.now(UTC) - timedelta(days=9)).strftime("%Y-%m-%d")
    result = cli("--config", str(project.config), "backfill", "--since", since, "--dry-run", env=env)
    assert result.returncode == 1
    assert result.stdout.startswith("capi-uploader backfill dry run: 9 rows read from 9 files")
    assert "expired when read (older than Meta accepts, not sent): 2" in result.stdout
    assert "sent to Meta" not in result.stdout and sandbox.requests() == []
    ledger = Ledger.open(f"sqlite:///{project.ledger_file}")
    assert ledger.count(DATASET, SENT) + ledger.count(DATASET, EXPIRED) == 0
    ledger.close()
    assert not (project.drop / "processed").exists()


def test_only_the_named_source_is_read_and_an_unknown_name_is_a_config_error(project: Project) -> None:
    settings = load_settings(project.config, environ={})
    assert only_source(settings, "sales_ops").sources == settings.sources
    assert only_source(settings, None) is settings
    with pytest.raises(ConfigError) as error:
        only_source(settings, "crm")
    assert error.value.problems == ["--source: no source is called 'crm' (known: sales_ops)"]
    result = cli("--config", str(project.config), "backfill", "--since", "2026-11-01", "--source", "crm")
    assert (result.returncode, result.stderr) == (
        2, "capi-uploader: config error: --source: no source is called 'crm' (known: sales_ops)\n")


def test_window_dates_are_utc_days_and_until_includes_its_day() -> None:
    now = datetime(2026, 11, 20, 10, tzinfo=UTC).timestamp()
    assert window("2026-11-10", "2026-11-12", now) == Window(datetime(2026, 11, 10, tzinfo=UTC).timestamp(),
                                                             datetime(2026, 11, 13, tzinfo=UTC).timestamp())
    assert window("2026-11-19T08:30+01:00", None, now) == Window(datetime(2026, 11, 19, 7, 30, tzinfo=UTC).timestamp(),
                                                                 now)
    assert parse_moment("2026-11-19T08:30", "--since") == datetime(2026, 11, 19, 8, 30, tzinfo=UTC).timestamp()
    for since, until, message in (
            ("yesterday", None, "--since: 'yesterday' is not a date (2026-11-20) or a time"),
            ("2026-11-12", "2026-11-10", "--since 2026-11-12 is not before --until 2026-11-10"),
            ("2026-12-01", "2026-12-02", "--since 2026-12-01 is in the future")):
        with pytest.raises(ValueError) as error:
            window(since, until, now)
        assert str(error.value).startswith(message)


def test_a_bad_date_is_a_usage_error_exit_2(project: Project) -> None:
    result = cli("--config", str(project.config), "backfill", "--since", "last week")
    assert result.returncode == 2
    assert "Invalid value: --since: 'last week' is not a date (2026-11-20)" in result.stderr
