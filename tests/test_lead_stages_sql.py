"""Conversion Leads from the sample CRM's stage history, on SQLite, PostgreSQL and MariaDB:
every consented stage transition arrives once, in ladder order, with the CRM fields set,
lead_id unhashed, California rows under LDU, and nothing of a non-consented lead kept."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.conftest import DATASET, TOKEN
from uploader.pipeline import run_once
from uploader.sample_crm import QUERIES, load_sample_crm, sample_dialect
from uploader.sandbox import SandboxServer
from uploader.settings import load_settings

CONFIG = f"""
[ledger]
url = "sqlite:///state/ledger.db"

[[sources]]
name = "crm_stages"
type = "sql"
url = "${{CRM_DATABASE_URL}}"
query = "{QUERIES / 'lead_stage_history.sql'}"
cursor = "changed_at"

[sources.stage_map]
"new" = "Lead"
"mql" = "Marketing Qualified"
"sql" = "Sales Qualified"
"won" = "Customer"

[sources.conversion_leads]
crm_name = "Sample CRM"
ladder = ["Lead", "Marketing Qualified", "Sales Qualified", "Customer"]

[sources.consent]
policy = "require"

[sources.ldu]
mode = "by_region"
"""
CALIFORNIA, TEXAS, SAID_NO, NEVER_ASKED = "100000000000401", "100000000000402", "100000000000403", "100000000000404"


def hours_ago(dialect: str, hours: float) -> str:
    return {"postgresql": f"now() - interval '{hours} hours'",
            "mysql": f"UTC_TIMESTAMP() - INTERVAL {int(hours * 60)} MINUTE",
            "sqlite": f"datetime('now', '-{int(hours * 60)} minutes')"}[dialect]


def test_stage_history_sends_each_consented_transition_once_in_ladder_order(
        crm_url: str, tmp_path: Path, sandbox: SandboxServer) -> None:
    load_sample_crm(crm_url)
    dialect = sample_dialect(crm_url)
    config = tmp_path / "capi-uploader.toml"
    config.write_text(CONFIG, encoding="utf-8")
    env = {"META_ACCESS_TOKEN": TOKEN, "META_DATASET_ID": DATASET, "META_GRAPH_URL": sandbox.url,
           "CRM_DATABASE_URL": crm_url}
    settings = load_settings(config, environ=env)

    first = run_once(settings)
    assert first.sent == 5 and first.refused_total == 0
    assert dict(first.withheld) == {"consent_denied": 1, "consent_missing": 1}
    assert first.stage_gaps == [f"lead {TEXAS}: 'Customer' without 'Marketing Qualified', 'Sales Qualified'"]

    engine = create_engine(crm_url)
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO lead_stage_history (id, ad_lead_id, stage, changed_at) VALUES "
                          f"(201, 4001, 'won', {hours_ago(dialect, 0)})"))  # after the first run's window
    engine.dispose()
    second = run_once(settings)
    assert second.sent == 1 and second.stage_gaps == []
    assert run_once(settings).sent == 0

    accepted = sandbox.accepted()
    order = [(e["user_data"]["lead_id"], e["event_name"]) for e in accepted]
    assert order == [(CALIFORNIA, "Lead"), (CALIFORNIA, "Marketing Qualified"), (TEXAS, "Lead"),
                     (CALIFORNIA, "Sales Qualified"), (TEXAS, "Customer"), (CALIFORNIA, "Customer")]
    for event in accepted:
        assert event["action_source"] == "system_generated"
        assert event["custom_data"] == {"event_source": "crm", "lead_event_source": "Sample CRM"}
        assert event["user_data"]["st"] in (hashlib.sha256(b"ca").hexdigest(), hashlib.sha256(b"tx").hexdigest())
        expected = (1, 1000) if event["user_data"]["lead_id"] == CALIFORNIA else (0, 0)
        assert event["data_processing_options"] == ["LDU"]
        assert (event["data_processing_options_country"], event["data_processing_options_state"]) == expected
    ledger = (tmp_path / "state" / "ledger.db").read_bytes()
    for absent in (SAID_NO, NEVER_ASKED, hashlib.sha256(b"zoe@example.pl").hexdigest()):
        assert absent.encode() not in ledger
