"""``capi-uploader status``: ledger counts, last runs, cursors, events about to expire, events Meta refused."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import DATASET, Project
from tests.test_cli import cli
from uploader.ledger import Ledger, StoredEvent
from uploader.ledger import overview as ov
from uploader.ledger.lock import RunLock
from uploader.report import RunReport
from uploader.runs import keep
from uploader.settings import load_settings
from uploader.status import gather, render

NOW = 1_795_168_800.0  # 2026-11-20T10:00:00Z
DAY = 86_400


def events(*rows: tuple[str, str, float, str]) -> pd.DataFrame:
    return pd.DataFrame([{"event_id": eid, "event_name": name, "event_time": int(t), "action_source": src,
                          "payload": "{}"} for eid, name, t, src in rows])


def fill(ledger: Ledger) -> None:
    ledger.record(DATASET, "sales_ops", events(
        ("p1", "Purchase", NOW - 3600, "system_generated"),
        ("p2", "Purchase", NOW - 6.5 * DAY, "system_generated"),      # past 7 days in 12 hours
        ("s1", "Purchase", NOW - 61.5 * DAY, "physical_store"),       # past 62 days in 12 hours
        ("s2", "Purchase", NOW - 30 * DAY, "physical_store"),         # fine for a month
        ("l1", "Lead", NOW - 3600, "system_generated")), NOW)
    ledger.record(DATASET, "crm", events(("c1", "Lead", NOW - 7200, "phone_call")), NOW)
    ledger.record("111", "other", events(("x", "Lead", NOW - 6.9 * DAY, "system_generated")), NOW)
    ledger.mark_sent(DATASET, [StoredEvent("Lead", "l1", 0, "")], "trace-ok", NOW)
    ledger.mark_failed(DATASET, StoredEvent("Lead", "c1", 0, ""), "HTTP 400, code 100: Invalid lead_id",
                       "trace-bad", NOW)


def settings_for(project: Project, url: str):  # noqa: ANN201
    return replace(load_settings(project.config, environ={"META_DATASET_ID": DATASET}), ledger_url=url)


def test_status_counts_runs_expiring_and_failed_events_on_every_backend(project: Project, ledger_url: str) -> None:
    ledger = Ledger.open(ledger_url)
    fill(ledger)
    settings = settings_for(project, ledger_url)
    report = RunReport(mode="run", started_at=NOW - 60, finished_at=NOW - 50, sent=1, rows_read=6)
    report.coverage["Lead"] = Counter({"events": 4, "em": 3, "lead_id": 1})
    keep(ledger, settings, report)
    status = gather(settings, now=NOW)
    assert status.counts == [("crm", "Lead", "failed", 1), ("sales_ops", "Lead", "sent", 1),
                             ("sales_ops", "Purchase", "pending", 4)]
    assert status.expiring_total == 2
    assert [(e.event_id, e.expires_at) for e in status.expiring] == [
        ("p2", int(NOW - 6.5 * DAY) + 7 * DAY), ("s1", int(NOW - 61.5 * DAY) + 62 * DAY)]  # same moment: by id
    assert status.failed_total == 1
    failed = status.failed[0]
    assert (failed.source, failed.event_id, failed.attempts, failed.last_error, failed.fbtrace_id) == (
        "crm", "c1", 1, "HTTP 400, code 100: Invalid lead_id", "trace-bad")
    assert [(r.run_id, r.mode, r.figures["sent"], r.exit_code) for r in status.runs] == [
        (report.run_id, "run", 1, 0)]
    assert status.cursors == [] and status.lock is None and status.needs_attention()
    text = render(status)
    assert "WARNING: 2 pending events pass Meta's age limit within 24 hours" in text
    assert "1 events Meta refused (fix the cause, then `capi-uploader retry`)" in text
    assert "HTTP 400, code 100: Invalid lead_id" in text and "trace-bad" in text
    assert "match-key coverage of the last run (2026-11-20T09:59:00Z)" in text
    lead = [line.split() for line in text.splitlines() if line.split()[:2] == ["Lead", "4"]]
    assert lead == [["Lead", "4", "75%", "0%", "0%", "0%", "0%", "0%", "25%"]]
    ledger.close()


def test_status_shows_the_lock_holder_and_a_quiet_ledger_needs_nothing(project: Project, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'quiet.db'}"
    ledger = Ledger.open(url)
    RunLock(ledger.engine, clock=lambda: NOW).acquire()
    status = gather(settings_for(project, url), now=NOW + 5)
    assert not status.needs_attention()
    text = render(status)
    assert "run lock: held (host " in text and "since 2026-11-20T10:00:00Z (last heartbeat 5 s ago)" in text
    assert "the ledger holds no events yet" in text and "no runs recorded yet" in text
    assert "pending events expiring within 24 hours: none" in text and "events Meta refused: none" in text
    ledger.close()


def test_status_reads_the_refused_events_only_when_the_counts_show_some(project: Project, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # Listing them reads the whole table (no index holds failed events): 8 s at 11 million events.
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    ledger = Ledger.open(url)
    ledger.record(DATASET, "sales_ops", events(("a", "Lead", NOW, "system_generated"),
                                               ("b", "Lead", NOW, "system_generated")), NOW)
    ledger.mark_sent(DATASET, [StoredEvent("Lead", "a", int(NOW), "")], "T", NOW, fresh=False)
    ledger.close()
    monkeypatch.setattr(ov, "failed", lambda *args, **kwargs: pytest.fail("the refused events were read"))
    status = gather(settings_for(project, url), now=NOW)
    assert status.counts == [("sales_ops", "Lead", "pending", 1), ("sales_ops", "Lead", "sent", 1)]
    assert (status.failed_total, status.failed) == (0, [])


def test_the_status_command_prints_json_and_exits_1_when_something_needs_you(project: Project) -> None:
    ledger = Ledger.open(f"sqlite:///{project.ledger_file}")
    ledger.record(DATASET, "sales_ops", events(("a", "Lead", NOW, "system_generated")), NOW)
    ledger.mark_failed(DATASET, StoredEvent("Lead", "a", 0, ""), "HTTP 400: bad", "t-1", NOW)
    ledger.close()
    result = cli("--config", str(project.config), "status", "--json", env={"META_DATASET_ID": DATASET})
    assert result.returncode == 1, result.stderr
    shown = json.loads(result.stdout)
    assert shown["events"] == [{"source": "sales_ops", "event_name": "Lead", "status": "failed", "events": 1}]
    assert shown["failed"]["latest"][0]["last_error"] == "HTTP 400: bad"
