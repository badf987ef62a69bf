"""Logging: levels, JSON lines, and redaction of the token and raw personal data everywhere."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TOKEN, Project
from tests.test_pipeline import RAW_EMAIL, RAW_PHONE, messy_export
from uploader.logs import Redactor, configure_logging
from uploader.sandbox import SandboxServer


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)


def test_the_redactor_scrubs_secrets_emails_and_phones_but_keeps_dates_numbers_and_addresses() -> None:
    redact = Redactor(["EAAsecret123"])
    assert redact("token EAAsecret123 in a message") == "token [token] in a message"
    assert redact('{"access_token": "EAAother999", "x": 1}') == '{"access_token": "[token]", "x": 1}'
    assert redact("access_token=abc123&fields=id") == "access_token=[token]&fields=id"
    assert redact(f"bad row for{RAW_EMAIL}and mary.jones+crm@example.co.uk") == "bad row for [email] and [email]"
    for phone in ("(650) 555-1212", "+44 20 7946 0958", "020 7946 0958", "650.555.1212", "+16505551212",
                  "06 12 34 56 78"):
        assert redact(f"call {phone} now") == "call [phone] now", phone
    kept = ("2026-11-20T14:30:00Z", "2026-11-20 14:30", "event_time 1795168800", "dataset 987654321",
            "http://127.0.0.1:8787/v25.0/987654321/events", "192.168.100.200", "took 12.3456789 s",
            "batch of 1000 events", "fbtrace_id AbC123xYz")
    for text in kept:
        assert redact(text) == text, text


def test_records_are_redacted_with_their_tracebacks_in_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json", [TOKEN])
    log = logging.getLogger("capi_uploader.test")
    log.info("sending with %s for %s", TOKEN, "john@example.com")
    try:
        raise ValueError(f"payload had {RAW_PHONE} and {TOKEN}")
    except ValueError:
        log.exception("failed")
    log.debug("not at INFO")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(e["level"], e["logger"], e["message"]) for e in lines] == [
        ("INFO", "capi_uploader.test", "sending with [token] for [email]"),
        ("ERROR", "capi_uploader.test", "failed"),
    ]
    assert lines[1]["exception"].endswith("ValueError: payload had [phone] and [token]")
    assert lines[0]["time"].endswith("+00:00")


def test_a_log_file_and_text_lines(tmp_path: Path) -> None:
    configure_logging("WARNING", "text", [], tmp_path / "logs" / "capi.log")
    logging.getLogger("capi_uploader.test").warning("call %s", "+1 650 555 1212")
    logging.getLogger("capi_uploader.test").info("hidden at WARNING")
    text = (tmp_path / "logs" / "capi.log").read_text(encoding="utf-8")
    assert text.endswith(" WARNING capi_uploader.test: call [phone]\n") and "hidden" not in text


def test_a_whole_job_leaves_no_token_or_raw_personal_data_anywhere(
        project: Project, env: dict[str, str], sandbox: SandboxServer, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from uploader.cli import main

    project.write_config('\n[logging]\nformat = "json"\nlevel = "debug"\n')
    content, _ = messy_export()
    project.drop_file("deals.csv", content)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(project.config), "-v", "run"])
    assert exit_.value.code == 1
    # The same handler the job logged through now gets the very values it must never write.
    logging.getLogger("capi_uploader.probe").warning("probe %s %s %s", TOKEN, RAW_EMAIL.strip(), RAW_PHONE)
    output = capsys.readouterr()
    log_lines = [json.loads(line) for line in output.err.splitlines()]
    assert log_lines[-1]["message"] == "probe [token] [email] [phone]"
    assert any(line["logger"] == "capi_uploader.progress" for line in log_lines)  # -v: plain progress lines
    assert "sent to Meta:         3" in output.out

    kept = [p for p in project.root.rglob("*")
            if p.is_file() and (project.drop not in p.parents or p.name.endswith(".quarantine.csv"))]
    names = {p.name for p in kept}
    assert "ledger.db" in names and "deals.quarantine.csv" in names
    assert any(n.startswith("run-") and n.endswith(".json") for n in names)
    assert any(n.startswith("quarantine-") for n in names)
    secrets = [TOKEN, "John_Smith@Gmail.com", "john_smith@gmail.com", "650) 555-1212", "6505551212",
               "mary@example.co.uk", "020 7946 0958", "7946 0958", "79460958", "not-an-email"]
    for secret in secrets:
        assert secret not in output.out and secret not in output.err, secret
        for path in kept:
            assert secret.encode() not in path.read_bytes(), (secret, path)
