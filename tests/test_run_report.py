"""The run report: match-key coverage on known data, the JSON file, the runs table, the summary table."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, select

from tests.conftest import Project
from uploader.ledger.schema import run_lock, runs
from uploader.pipeline import run_once
from uploader.report import RunReport
from uploader.sandbox import SandboxServer
from uploader.settings import load_settings

HEADER = "event_name,event_time,email,phone,first_name,last_name,zip,country,external_id,lead_id,value,currency"


def known_export() -> str:
    when = (datetime.now(UTC) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = [
        f"Purchase,{when},a@example.com,+1 650 555 1212,Ann,Lee,94025,US,C-1,,10,USD",   # em ph fn+ln zp country ext
        f"Purchase,{when},b@example.com,,,,,,,,20,USD",                                   # em
        f"Purchase,{when},,,Bo,,,,C-3,,30,USD",                                           # external_id (fn alone)
        f"Lead,{when},,,,,,,,1234567890123456,,",                                         # lead_id
        f"Lead,{when},c@example.com,,Cy,Doe,,GB,,,,",                                     # em fn+ln country
        f"Lead,{when},not-an-email,,,,,,,,,",                                             # refused: not counted
    ]
    return HEADER + "\n" + "\n".join(rows) + "\n"


EXPECTED = {
    "Purchase": {"events": 3, "em": 2, "ph": 1, "external_id": 2, "fn+ln": 1, "zp": 1, "country": 1, "lead_id": 0},
    "Lead": {"events": 2, "em": 1, "ph": 0, "external_id": 0, "fn+ln": 1, "zp": 0, "country": 1, "lead_id": 1},
}


def test_coverage_per_event_name_matches_the_data_in_report_json_and_runs_table(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    project.drop_file("known.csv", known_export())
    settings = load_settings(project.config, environ=env)
    report = run_once(settings)
    assert {name: dict(counts) for name, counts in report.coverage.items()} == EXPECTED

    assert report.report_path is not None and report.report_path.parent == project.root / "reports"
    saved = json.loads(report.report_path.read_text(encoding="utf-8"))
    assert saved["coverage"]["Purchase"]["em"] == {"count": 2, "share": 0.6667}
    assert saved["coverage"]["Lead"]["lead_id"] == {"count": 1, "share": 0.5}
    assert {name: {k: (v if k == "events" else v["count"]) for k, v in c.items()}
            for name, c in saved["coverage"].items()} == EXPECTED
    assert (saved["rows_read"], saved["events_mapped"], saved["sent"], saved["refused"]) == (
        6, 5, 5, {"total": 1, "by_reason": {"no_match_key": 1}})
    assert saved["exit_code"] == 1 and saved["error"] is None and saved["started_by"] == "cli"
    assert set(saved["durations_seconds"]) == {"read", "deliver", "total"}

    with create_engine(f"sqlite:///{project.ledger_file}").connect() as conn:
        row = conn.execute(select(runs)).one()
    assert (row.run_id, row.mode, row.rows_read, row.events_mapped, row.refused, row.sent, row.exit_code) == (
        report.run_id, "run", 6, 5, 1, 5, 1)
    assert json.loads(row.report)["coverage"] == saved["coverage"]
    assert row.report_path == str(report.report_path)


def test_the_summary_prints_the_coverage_table_and_durations(project: Project, env: dict[str, str],
                                                             sandbox: SandboxServer) -> None:
    project.drop_file("known.csv", known_export())
    text = run_once(load_settings(project.config, environ=env)).render()
    table = text[text.index("match-key coverage"):].splitlines()
    assert table[1].split() == ["event_name", "events", "em", "ph", "external_id", "fn+ln", "zp", "country",
                                "lead_id"]
    assert table[3].split() == ["Lead", "2", "50%", "0%", "0%", "50%", "0%", "50%", "50%"]
    assert table[4].split() == ["Purchase", "3", "67%", "33%", "67%", "33%", "33%", "33%", "0%"]
    assert "  took read " in text and "  run report: " in text


def test_a_run_that_stops_on_an_error_is_kept_with_the_error_and_frees_the_lock(project: Project,
                                                                              env: dict[str, str]) -> None:
    import httpx
    import pytest

    def graph(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"id": env["META_DATASET_ID"], "name": "dataset"})
        raise RuntimeError("disk on fire")

    project.drop_file("known.csv", known_export())
    settings = load_settings(project.config, environ=env)
    with pytest.raises(RuntimeError):
        run_once(settings, transport=httpx.MockTransport(graph))
    with create_engine(f"sqlite:///{project.ledger_file}").connect() as conn:
        row = conn.execute(select(runs)).one()
        assert (row.error, row.exit_code, row.events_new, row.sent) == ("RuntimeError: disk on fire", 1, 5, 0)
        assert conn.execute(select(run_lock)).all() == []
    assert run_once(settings).sent == 5  # the next run goes ahead: nothing was lost


def test_a_spooled_quarantine_saves_what_a_file_backed_one_writes_and_nothing_when_empty(tmp_path) -> None:
    import pandas as pd

    from uploader.report import Quarantine

    refused = pd.DataFrame({"line": [3, 7], "key": ["A-1", ""], "column": ["value", "email"],
                            "reason": ["bad_value", "no_match_key"], "message": ["value 'x' is not a number", "..."]})
    direct, spool = Quarantine(tmp_path / "direct.csv"), Quarantine()
    for quarantine in (direct, spool):
        quarantine.add("s", "a.csv", refused.iloc[:1])
        quarantine.add("s", "a.csv", refused.iloc[1:])
    direct.close()
    spool.save_as(tmp_path / "spooled.csv")
    spool.close()
    assert (tmp_path / "spooled.csv").read_bytes() == (tmp_path / "direct.csv").read_bytes()
    assert (tmp_path / "spooled.csv").read_text(encoding="utf-8").count("\n") == 3  # header + 2 rows
    empty = Quarantine()
    empty.add("s", "b.csv", refused.iloc[:0])
    empty.save_as(tmp_path / "none.csv")
    assert not (tmp_path / "none.csv").exists()


def test_a_run_report_names_the_first_thousand_stage_gaps_and_counts_them_all() -> None:
    report = RunReport(mode="run")
    for chunk in range(3):
        report.add_stage_gaps([f"lead {chunk}-{i}: 'Won' without 'Qualified'" for i in range(600)])
    assert report.stage_gaps_total == 1800 and len(report.stage_gaps) == 1000
    assert report.stage_gaps[-1] == "lead 1-399: 'Won' without 'Qualified'"  # in the order they came
    lines = report.render().splitlines()
    assert "  leads that skipped earlier stages: 1800" in lines
    assert report.to_dict()["stage_gaps_total"] == 1800 and len(report.to_dict()["stage_gaps"]) == 1000
