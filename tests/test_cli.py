"""The installed ``capi-uploader`` command, run as a user would: exit codes and exact messages."""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import DATASET, TOKEN, Project
from uploader.sandbox import SandboxServer

COMMAND = str(Path(sys.executable).parent / "capi-uploader")


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("META_", "CAPI_UPLOADER"))}
    return subprocess.run([COMMAND, *args], capture_output=True, text=True, timeout=120,
                          env={**clean, **(env or {})}, cwd=cwd)


def good_export() -> str:
    when = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"event_name,event_time,email,value,currency,order_id\nPurchase,{when},a@example.com,10,USD,A-1\n"


def test_a_clean_run_exits_0(project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    project.drop_file("a.csv", good_export())
    result = cli("--config", str(project.config), "run", env=env)
    assert result.returncode == 0, result.stderr
    assert "sent to Meta:         1" in result.stdout and result.stderr == ""
    assert len(sandbox.accepted()) == 1


def test_config_problems_print_one_line_each_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "capi-uploader.toml"
    config.write_text('[[sources]]\nname = "s"\ntype = "csv"\npath = "drop"\naction_source = "web"\n',
                      encoding="utf-8")
    result = cli("--config", str(config), "run")
    assert result.returncode == 2
    assert result.stdout == ""
    assert sorted(result.stderr.splitlines()) == [
        "capi-uploader: config error: sources[0].action_source: 'web' is not one of app, business_messaging, "
        "chat, email, other, phone_call, physical_store, system_generated, website",
        f'capi-uploader: config error: sources[0].path: folder "drop" does not exist (looked at {tmp_path / "drop"})',
    ]


def test_missing_credentials_name_the_variables(project: Project) -> None:
    result = cli("--config", str(project.config), "run")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "capi-uploader: config error: META_ACCESS_TOKEN: not set (looked in the environment and .env)",
        "capi-uploader: config error: META_DATASET_ID: not set (looked in the environment and .env)",
    ]


def test_the_default_config_is_looked_for_in_the_current_folder(project: Project, env: dict[str, str],
                                                                 sandbox: SandboxServer) -> None:
    project.drop_file("a.csv", good_export())
    assert cli("run", env=env, cwd=project.root).returncode == 0
    missing = cli("run", env=env, cwd=project.drop)
    assert missing.returncode == 2
    assert missing.stderr.startswith("capi-uploader: config error: config file 'capi-uploader.toml' not found")


def test_a_refused_token_stops_with_advice_exit_2_and_no_token_in_output(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    project.drop_file("a.csv", good_export())
    result = cli("--config", str(project.config), "run", env={**env, "META_ACCESS_TOKEN": "EAAwrong-token-1234"})
    assert result.returncode == 2
    assert result.stderr.startswith("capi-uploader: Meta refused the request: the access token is invalid or "
                                    "expired: create a new one and set META_ACCESS_TOKEN")
    assert "Traceback" not in result.stderr and "EAAwrong-token-1234" not in result.stderr + result.stdout
    assert sandbox.accepted() == []


def test_an_unreachable_endpoint_exits_2(project: Project) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    project.drop_file("a.csv", good_export())
    result = cli("--config", str(project.config), "run",
                 env={"META_ACCESS_TOKEN": TOKEN, "META_DATASET_ID": DATASET,
                      "META_GRAPH_URL": f"http://127.0.0.1:{port}"})
    assert result.returncode == 2
    assert result.stderr.startswith(f"capi-uploader: cannot reach http://127.0.0.1:{port} (")


def test_validate_prints_the_summary_and_a_hashed_sample(project: Project) -> None:
    project.drop_file("a.csv", good_export())
    result = cli("--config", str(project.config), "validate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("capi-uploader validate: 1 row read from 1 file")
    assert f'"em": "{hashlib.sha256(b"a@example.com").hexdigest()}"' in result.stdout
    assert "Sample event as it would be sent (hashed):" in result.stdout
    assert "a@example.com" not in result.stdout


def test_the_demo_ends_with_exit_0_and_accepted_events(tmp_path: Path) -> None:
    result = cli("demo", "--dir", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The sandbox accepted 15 events" in result.stdout
    assert "Second run sent 0 events" in result.stdout
    assert result.stdout.rstrip().endswith("Demo finished: OK")


def test_a_ledger_that_fails_mid_run_stops_it_with_one_line_exit_2_and_nothing_lost(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    project.drop_file("a.csv", good_export())
    assert cli("--config", str(project.config), "run", env=env).returncode == 0
    with sqlite3.connect(project.ledger_file) as db:  # the database refuses to record a sent batch
        db.execute("CREATE TRIGGER full_disk BEFORE INSERT ON journal BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    second = project.drop_file("b.csv", good_export().replace("A-1", "B-1"))
    failed = cli("--config", str(project.config), "run", env=env)
    assert failed.returncode == 2
    assert failed.stderr.splitlines() == [
        "capi-uploader: ledger.url: the ledger database failed during the run (disk full), so the run stopped. "
        "Fix the database (disk space, server, permissions) and run again: nothing is lost, and what was sent "
        "but not recorded goes again with the same event ids."]
    assert second.exists()  # the file was not marked done
    with sqlite3.connect(project.ledger_file) as db:
        db.execute("DROP TRIGGER full_disk")
        assert db.execute("SELECT error FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()[0] == \
            failed.stderr.splitlines()[0].removeprefix("capi-uploader: ")
    assert cli("--config", str(project.config), "run", env=env).returncode == 0
    ids = [event["event_id"] for event in sandbox.accepted()]
    assert len(ids) == 3 and len(set(ids)) == 2  # B-1 sent again, with the same event id


def test_a_european_excel_export_reads_with_its_semicolons_and_decimal_commas(project: Project) -> None:
    when = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%d %H:%M")
    project.drop_file("a.csv", "event_name;event_time;email;value;currency;order_id\n"
                               f"Purchase;{when};a@example.com;1.234,50;EUR;A-1\n")
    refused = cli("--config", str(project.config), "validate")
    assert refused.returncode == 1
    (quarantine,) = (project.root / "quarantine").iterdir()
    assert quarantine.read_text(encoding="utf-8").splitlines()[1] == (
        "sales_ops,a.csv,2,A-1,value,bad_value,\"value '1.234,50' is not a number "
        "(a decimal comma? set decimal = \"\",\"\" for this source)\"")
    project.write_config('decimal = ","')
    result = cli("--config", str(project.config), "validate")
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"value": 1234.5,' in result.stdout and '"currency": "EUR"' in result.stdout
    assert f'"em": "{hashlib.sha256(b"a@example.com").hexdigest()}"' in result.stdout
