"""End to end: a messy sales-ops export, a real sandbox over loopback, the ledger on disk."""

from __future__ import annotations

import csv
import hashlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import DATASET, TOKEN, Project
from uploader.ledger import Ledger
from uploader.pipeline import run_once
from uploader.sandbox import SandboxServer
from uploader.settings import load_settings

HEADER = ("event_name,event_time,action_source,order_id,email,phone,first_name,last_name,city,state,zip,"
          "country,date_of_birth,gender,external_id,value,currency")
RAW_EMAIL, RAW_PHONE = " John_Smith@Gmail.com ", "(650) 555-1212"
HASHED_UPPER = hashlib.sha256(b"already@example.org").hexdigest().upper()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def iso(hours_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def messy_export() -> tuple[str, dict[str, int]]:
    """The export and, for the valid rows, their event_time in Unix seconds."""
    when = {"D-1": iso(30), "lead-hashed": iso(20), "lead-uk": iso(10)}
    rows = [
        f'Purchase,{when["D-1"]},,D-1,{RAW_EMAIL},{RAW_PHONE},John,Smith,Menlo Park,California,94025-1234,'
        'United States,2/16/1997,Male,CRM-1,"1,250.00",usd',
        f'Purchase,{when["D-1"]},,D-1,{RAW_EMAIL},{RAW_PHONE},John,Smith,Menlo Park,California,94025-1234,'
        'United States,2/16/1997,Male,CRM-1,"1,250.00",usd',                                     # repeated row
        f'Lead,{when["lead-hashed"]},,,{HASHED_UPPER},,,,,,,,,,,,',
        f'Lead,{when["lead-uk"]},phone_call,,mary@example.co.uk,020 7946 0958,Mary,Jones,,,,United Kingdom,,,,,',
        f'Purchase,{iso(24 * 10)},,D-2,old@example.com,,,,,,,,,,,10,USD',                        # too old
        f'Purchase,{iso(-48)},,D-3,future@example.com,,,,,,,,,,,10,USD',                         # future
        'Purchase,next tuesday,,D-4,when@example.com,,,,,,,,,,,10,USD',                            # unparseable
        f'Lead,{iso(5)},,,not-an-email,,,,,,,,,,,,',                                               # no key left
        f'Purchase,{iso(5)},,D-5,novalue@example.com,,,,,,,,,,,,',                                  # no value
        f'Purchase,{iso(5)},,D-6,zzz@example.com,,,,,,,,,,,10,ZZZ',                                 # bad currency
        f'Purchase,{iso(5)},,D-7,neg@example.com,,,,,,,,,,,-10,USD',                                # negative
        f'Lead,{iso(5)},,,,,,,,,94107,US,,,,,',                                                    # too little
        f'Lead,{iso(5)},web,,web@example.com,,,,,,,,,,,,',                                         # action_source
        f',{iso(5)},,,noname@example.com,,,,,,,,,,,,',                                             # no event_name
    ]
    seconds = {k: int(datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
               for k, v in when.items()}
    return HEADER + "\n" + "\n".join(rows) + "\n", seconds


EXPECTED_REFUSALS = [
    ("6", "D-2", "event_time", "too_old"),
    ("7", "D-3", "event_time", "future_event_time"),
    ("8", "D-4", "event_time", "bad_event_time"),
    ("9", "", "email", "no_match_key"),
    ("10", "D-5", "value", "purchase_without_value"),
    ("11", "D-6", "currency", "bad_currency"),
    ("12", "D-7", "value", "negative_value"),
    ("13", "", "email", "too_little_customer_info"),
    ("14", "", "action_source", "bad_action_source"),
    ("15", "", "event_name", "missing_event_name"),
]


def quarantine_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_messy_export_arrives_exactly_once_with_metas_hashes(project: Project, env: dict[str, str],
                                                              sandbox: SandboxServer) -> None:
    content, seconds = messy_export()
    project.drop_file("deals-monday.csv", content)
    settings = load_settings(project.config, environ=env)
    report = run_once(settings)

    assert report.exit_code() == 1
    assert (report.rows_read, report.events_mapped, report.events_new, report.duplicates) == (14, 4, 3, 1)
    assert report.refused_total == 10 and report.sent == 3 and report.pending_left == 0
    assert report.dropped_values["email"] == 1

    events = {e.get("custom_data", {}).get("order_id") or e["event_name"] + e["action_source"]: e
              for e in sandbox.accepted()}
    assert len(sandbox.accepted()) == 3
    deal = events["D-1"]
    assert deal["event_time"] == seconds["D-1"] and deal["action_source"] == "system_generated"
    assert deal["custom_data"] == {"value": 1250, "currency": "USD", "order_id": "D-1"}
    assert deal["user_data"] == {
        "em": sha("john_smith@gmail.com"), "ph": sha("16505551212"), "fn": sha("john"), "ln": sha("smith"),
        "db": sha("19970216"), "ge": sha("m"), "ct": sha("menlopark"), "st": sha("ca"), "zp": sha("94025"),
        "country": sha("us"), "external_id": sha("CRM-1"),
    }
    assert deal["event_id"] == sha("capi-uploader/v1|order|Purchase|D-1")[:32]
    assert events["Leadsystem_generated"]["user_data"] == {"em": HASHED_UPPER.lower()}
    uk = events["Leadphone_call"]
    assert uk["user_data"]["ph"] == sha("442079460958") and uk["user_data"]["country"] == sha("gb")
    assert uk["event_time"] == seconds["lead-uk"]

    refused = quarantine_rows(report.quarantine_path)
    assert [(r["line"], r["order_id/event_id"], r["column"], r["reason"]) for r in refused] == EXPECTED_REFUSALS
    assert {r["source"] for r in refused} == {"sales_ops"} and {r["file"] for r in refused} == {"deals-monday.csv"}
    assert "days old; Meta takes system_generated events up to 7 days old" in refused[0]["message"]
    assert refused[3]["message"].endswith("dropped as invalid: email")


def test_the_same_rows_in_a_new_file_or_a_rerun_send_nothing_new(project: Project, env: dict[str, str],
                                                                  sandbox: SandboxServer) -> None:
    content, _ = messy_export()
    project.drop_file("monday.csv", content)
    settings = load_settings(project.config, environ=env)
    run_once(settings)
    assert len(sandbox.accepted()) == 3

    assert (project.drop / "processed" / "monday.csv").is_file()  # processed files move out of the way
    project.drop_file("monday-again.csv", content)  # the very same file dropped again
    rerun = run_once(settings)
    assert rerun.files_skipped == ["monday-again.csv"] and rerun.rows_read == 0 and rerun.sent == 0

    lines = content.splitlines()
    project.drop_file("tuesday.csv", "\n".join([lines[0]] + lines[:0:-1]) + "\n")  # same rows, reversed
    again = run_once(settings)
    assert again.rows_read == 14 and again.events_new == 0 and again.duplicates == 4 and again.sent == 0
    assert len(sandbox.accepted()) == 3
    ledger = Ledger.open(settings.ledger_url)
    assert ledger.count(DATASET, "sent") == 3
    ledger.close()


def test_no_token_or_raw_personal_data_reaches_the_ledger_or_reports(project: Project, env: dict[str, str],
                                                                     sandbox: SandboxServer,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from uploader.cli import main

    content, _ = messy_export()
    project.drop_file("deals.csv", content)
    for var, value in env.items():
        import os
        os.environ[var] = value
    try:
        with pytest.raises(SystemExit) as exit_:
            main(["--config", str(project.config), "-v", "run"])
    finally:
        for var in env:
            os.environ.pop(var, None)
    assert exit_.value.code == 1
    output = capsys.readouterr()
    files = [p for p in project.root.rglob("*")  # all but the input itself (processed/ or not)
             if p.is_file() and (project.drop not in p.parents or p.name.endswith(".quarantine.csv"))]
    assert project.ledger_file in files and any(p.suffix == ".csv" for p in files)
    secrets = [TOKEN, "John_Smith@Gmail.com", "john_smith@gmail.com", "650) 555-1212", "6505551212",
               "mary@example.co.uk", "7946 0958", "79460958", "not-an-email"]
    for secret in secrets:
        assert secret not in output.out and secret not in output.err, secret
        for path in files:
            assert secret.encode() not in path.read_bytes(), (secret, path)
    assert "sent to Meta:         3" in output.out


def test_validate_records_nothing_and_shows_a_hashed_sample(project: Project, env: dict[str, str],
                                                            sandbox: SandboxServer) -> None:
    content, _ = messy_export()
    project.drop_file("deals.csv", content)
    report = run_once(load_settings(project.config, environ={}), send=False)
    assert report.mode == "validate" and report.refused_total == 10 and report.duplicates == 1
    assert sha("john_smith@gmail.com") in (report.sample_payload or "")
    assert sandbox.requests() == []
    assert Ledger.open(f"sqlite:///{project.ledger_file}").count("", "pending") == 0


def test_a_5xx_is_retried_and_an_outage_leaves_events_pending_for_the_next_run(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    content, _ = messy_export()
    project.drop_file("deals.csv", content)
    project.write_config("[meta]\nmax_attempts = 3\nretry_base_seconds = 0.01\n")
    settings = load_settings(project.config, environ=env)
    sandbox.set_faults(fail_next_n_with_500=1)
    assert run_once(settings).sent == 3
    assert [r["status"] for r in sandbox.requests() if r["method"] == "POST"] == [500, 200]

    project.drop_file("more.csv", HEADER + "\n" + f"Lead,{iso(1)},,,late@example.com,,,,,,,,,,,,\n")
    sandbox.set_faults(fail_next_n_with_500=100)
    outage = run_once(settings)
    assert outage.sent == 0 and outage.pending_left == 1 and outage.exit_code() == 1
    assert outage.halted is not None and outage.halted.startswith("Meta is not answering (HTTP 500")
    assert "stay pending for the next run" in outage.render()
    sandbox.set_faults(fail_next_n_with_500=0)
    after = run_once(settings)
    assert after.sent == 1 and after.pending_left == 0 and after.exit_code() == 0
    assert len(sandbox.accepted()) == 4


def test_events_recorded_but_unsent_for_too_long_expire_instead_of_sinking_a_batch(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    content, _ = messy_export()
    project.drop_file("deals.csv", content)
    settings = load_settings(project.config, environ=env)
    run_once(settings, send=False)
    real = time.time()
    ledger = Ledger.open(settings.ledger_url)
    import pandas as pd
    ledger.record(DATASET, "sales_ops", pd.DataFrame([{
        "event_id": "stale", "event_name": "Lead", "event_time": int(real - 8 * 86400),
        "action_source": "system_generated", "payload": '{"event_name":"Lead"}'}]), real)
    ledger.close()
    report = run_once(settings)
    assert report.expired == 1 and report.sent == 3
    assert "expired (too old for Meta, not sent): 1" in report.render()
