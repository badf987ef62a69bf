"""Conversion Leads stages, consent gating, Limited Data Use, opt_out and cancellations."""

from __future__ import annotations

import collections
import hashlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from connectors.base import RawChunk
from tests.conftest import Project
from uploader.errors import ConfigError
from uploader.mapping.engine import map_chunk
from uploader.mapping.identity import lead_stage_id
from uploader.pipeline import run_once
from uploader.policies import ConsentPolicy, ConversionLeads, LduPolicy
from uploader.sandbox import SandboxServer
from uploader.settings import SourceSettings, load_settings

NOW = 1_795_168_800.0  # 2026-11-20T10:00:00Z
LADDER = '["Lead", "Marketing Qualified", "Sales Qualified", "Customer"]'
LEADS_CONFIG = f"""
[sources.stage_map]
"new" = "Lead"
"mql" = "Marketing Qualified"
"sql" = "Sales Qualified"
"won" = "Customer"

[sources.conversion_leads]
crm_name = "Acme CRM"
ladder = {LADDER}

[sources.consent]
policy = "require"

[sources.ldu]
mode = "by_region"
"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk(rows: list[dict[str, str]]) -> RawChunk:
    frame = pd.DataFrame(rows, dtype=object).fillna("")
    frame.index = pd.Index(range(2, 2 + len(rows)), name="line")
    return RawChunk(frame)


def source(**kw: object) -> SourceSettings:
    return SourceSettings(name="crm", type="csv", path=Path("."), **kw)  # type: ignore[arg-type]


def events_of(mapped) -> list[dict]:
    return [json.loads(p) for p in mapped.events["payload"]]


def test_conversion_leads_events_carry_the_crm_fields_and_an_unhashed_lead_id() -> None:
    rows = [{"stage": "mql", "event_time": "2026-11-20T08:00:00Z", "lead_id": "123456789012345",
             "email": "a@x.com", "action_source": "phone_call", "lead_created_at": "2026-11-19T08:00:00Z"}]
    mapped = map_chunk(chunk(rows), source(stage_map={"mql": "Marketing Qualified"},
                                           conversion_leads=ConversionLeads("Acme CRM", ("Lead", "Marketing Qualified"))),
                       NOW)
    event = events_of(mapped)[0]
    assert event["event_name"] == "Marketing Qualified" and event["action_source"] == "system_generated"
    assert event["user_data"] == {"em": sha("a@x.com"), "lead_id": "123456789012345"}
    assert event["custom_data"] == {"event_source": "crm", "lead_event_source": "Acme CRM"}
    assert event["event_id"] == lead_stage_id("Marketing Qualified", "123456789012345")
    assert mapped.events["stage_rank"].tolist() == [2]


def test_conversion_leads_refuse_bad_lead_ids_and_stages_before_the_lead_existed() -> None:
    leads = ConversionLeads("Acme CRM", ("Lead",))
    rows = [{"event_name": "Lead", "event_time": "2026-11-20T08:00:00Z", "lead_id": "12345", "email": "a@x.com"},
            {"event_name": "Lead", "event_time": "2026-11-20T08:00:00Z", "lead_id": "", "email": "b@x.com"},
            {"event_name": "Lead", "event_time": "2026-11-18T08:00:00Z", "lead_id": "123456789012345",
             "email": "c@x.com", "lead_created_at": "2026-11-19T08:00:00Z"}]
    refused = map_chunk(chunk(rows), source(conversion_leads=leads), NOW).refused
    assert refused[["line", "column", "reason"]].values.tolist() == [
        [2, "lead_id", "bad_lead_id"], [3, "lead_id", "bad_lead_id"], [4, "event_time", "stage_before_creation"]]
    assert refused["message"].tolist() == [
        "lead_id '12345' is not a Meta lead id (15 to 17 digits)",
        "lead_id is empty: Conversion Leads events need Meta's lead id",
        "the stage time 2026-11-18T08:00:00Z is before the lead was created (2026-11-19T08:00:00Z)",
    ]


def test_outside_conversion_leads_an_invalid_lead_id_is_dropped_not_sent() -> None:
    rows = [{"event_name": "Lead", "event_time": "2026-11-20T08:00:00Z", "lead_id": "12345", "email": "a@x.com"}]
    mapped = map_chunk(chunk(rows), source(), NOW)
    assert events_of(mapped)[0]["user_data"] == {"em": sha("a@x.com")}
    assert mapped.dropped["lead_id"] == 1


@pytest.mark.parametrize(("policy", "sent", "withheld"), [
    ("require", ["yes@x.com"], {"consent_denied": 1, "consent_missing": 2}),
    ("unless_denied", ["yes@x.com", "blank@x.com", "odd@x.com"], {"consent_denied": 1}),
])
def test_consent_gating_drops_rows_before_anything_is_hashed(policy: str, sent: list[str],
                                                             withheld: dict[str, int]) -> None:
    rows = [{"event_name": "Lead", "event_time": "2026-11-20T08:00:00Z", "email": email, "ads_ok": answer}
            for email, answer in (("yes@x.com", "Yes"), ("no@x.com", "no"), ("blank@x.com", ""),
                                  ("odd@x.com", "maybe"))]
    mapped = map_chunk(chunk(rows), source(consent=ConsentPolicy(policy, "ads_ok")), NOW)
    assert [e["user_data"]["em"] for e in events_of(mapped)] == [sha(e) for e in sent]
    assert dict(mapped.withheld) == withheld
    assert mapped.refused.empty


def test_limited_data_use_by_region_always_and_never() -> None:
    rows = [{"event_name": "Lead", "event_time": "2026-11-20T08:00:00Z", "email": f"{i}@x.com", "country": c,
             "state": st} for i, (c, st) in enumerate((("US", "California"), ("US", "TX"), ("US", "NY"),
                                                        ("", ""), ("DE", "Berlin")))]
    by_region = events_of(map_chunk(chunk(rows), source(ldu=LduPolicy("by_region")), NOW))
    options = [(e.get("data_processing_options"), e.get("data_processing_options_country"),
                e.get("data_processing_options_state")) for e in by_region]
    assert options == [(["LDU"], 1, 1000), (["LDU"], 0, 0), (None, None, None), (["LDU"], 0, 0),
                       (None, None, None)]
    always = events_of(map_chunk(chunk(rows), source(ldu=LduPolicy("always")), NOW))
    assert [e["data_processing_options_state"] for e in always] == [1000, 0, 0, 0, 0]
    assert all("data_processing_options" not in e for e in events_of(map_chunk(chunk(rows), source(), NOW)))


def test_opt_out_marks_the_event_for_attribution_only() -> None:
    rows = [{"event_name": "Lead", "event_time": "2026-11-20T08:00:00Z", "email": "a@x.com", "opt_out": "TRUE"},
            {"event_name": "Lead", "event_time": "2026-11-20T08:00:00Z", "email": "b@x.com", "opt_out": "no"}]
    events = events_of(map_chunk(chunk(rows), source(), NOW))
    assert [e.get("opt_out") for e in events] == [True, None]


def test_policy_settings_are_checked_with_their_names(tmp_path: Path) -> None:
    (tmp_path / "drop").mkdir()
    config = tmp_path / "c.toml"
    config.write_text('[[sources]]\nname = "s"\ntype = "csv"\npath = "drop"\n'
                      '[sources.conversion_leads]\nladder = ["Lead", "Lead"]\n'
                      '[sources.consent]\npolicy = "maybe"\n[sources.ldu]\nmode = "sometimes"\nstates = ["California"]\n'
                      '[sources.cancellations]\npolicy = "report"\nevent_name = "Purchase"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert caught.value.problems == [
        "sources[0].conversion_leads.crm_name: missing (the CRM's name, sent as lead_event_source, e.g. \"HubSpot\")",
        'sources[0].conversion_leads.ladder: must list distinct event names in order, e.g. ["Lead", "Qualified", "Won"]',
        "sources[0].consent.policy: 'maybe' must be one of 'require', 'unless_denied'",
        "sources[0].ldu.mode: 'sometimes' must be one of 'never', 'always', 'by_region'",
        'sources[0].ldu.states: must list two-letter US state codes, e.g. ["CA", "CO"]',
        'sources[0].cancellations.event_name: must be a custom event name such as "Refund" (never Purchase)',
    ]


def iso(hours_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


LEAD_HEADER = "lead_id,stage,event_time,lead_created_at,email,state,country,consent"


def lead_row(lead: int, stage: str, hours_ago: float, email: str, state: str, consent: str) -> str:
    return f"{lead},{stage},{iso(hours_ago)},{iso(100)},{email},{state},US,{consent}"


def test_leads_move_through_four_stages_over_several_runs(project: Project, env: dict[str, str],
                                                          sandbox: SandboxServer) -> None:
    project.write_config(LEADS_CONFIG)
    settings = load_settings(project.config, environ=env)
    ca, ny, no = 100000000000001, 100000000000002, 100000000000003
    project.drop_file("day1.csv", "\n".join([LEAD_HEADER,
        lead_row(ca, "new", 90, "ca@x.com", "CA", "yes"), lead_row(ny, "new", 90, "ny@x.com", "NY", "yes"),
        lead_row(no, "new", 90, "no@x.com", "CA", "no")]) + "\n")
    first = run_once(settings)
    assert first.sent == 2 and dict(first.withheld) == {"consent_denied": 1}

    # The CA lead is qualified twice in the same second; the NY lead jumps straight to a customer.
    project.drop_file("day2.csv", "\n".join([LEAD_HEADER,
        lead_row(ca, "sql", 50, "ca@x.com", "CA", "yes"), lead_row(ca, "mql", 50, "ca@x.com", "CA", "yes"),
        lead_row(ny, "won", 40, "ny@x.com", "NY", "yes"), lead_row(no, "mql", 40, "no@x.com", "CA", "no")]) + "\n")
    second = run_once(settings)
    assert second.sent == 3
    assert second.stage_gaps == [f"lead {ny}: 'Customer' without 'Marketing Qualified', 'Sales Qualified'"]

    project.drop_file("day3.csv", "\n".join([LEAD_HEADER, lead_row(ca, "won", 10, "ca@x.com", "CA", "yes"),
                                             lead_row(ca, "sql", 50, "ca@x.com", "CA", "yes")]) + "\n")
    third = run_once(settings)
    assert third.sent == 1 and third.duplicates == 1 and third.stage_gaps == []

    accepted = sandbox.accepted()
    by_lead = {}
    for event in accepted:
        by_lead.setdefault(event["user_data"]["lead_id"], []).append(event["event_name"])
    assert by_lead == {str(ca): ["Lead", "Marketing Qualified", "Sales Qualified", "Customer"],
                       str(ny): ["Lead", "Customer"]}
    assert all(e["custom_data"] == {"event_source": "crm", "lead_event_source": "Acme CRM"} for e in accepted)
    assert all(e["action_source"] == "system_generated" for e in accepted)
    california = [e for e in accepted if e["user_data"]["lead_id"] == str(ca)]
    assert all((e["data_processing_options"], e["data_processing_options_country"],
                e["data_processing_options_state"]) == (["LDU"], 1, 1000) for e in california)
    assert all("data_processing_options" not in e for e in accepted if e["user_data"]["lead_id"] == str(ny))
    stored = project.ledger_file.read_bytes()  # nothing of the lead without consent is kept
    assert str(no).encode() not in stored and sha("no@x.com").encode() not in stored


DEAL_HEADER = "event_name,event_time,order_id,email,value,currency,cancelled_at,refund_value"


@pytest.mark.parametrize("policy", ["ignore", "report"])
def test_cancellations_never_send_a_cancelled_deal_and_follow_the_policy_for_sent_ones(
        project: Project, env: dict[str, str], sandbox: SandboxServer, policy: str) -> None:
    project.write_config(f'[sources.cancellations]\npolicy = "{policy}"\nevent_name = "Refund"\n')
    settings = load_settings(project.config, environ=env)
    project.drop_file("deals.csv", "\n".join([DEAL_HEADER,
        f"Purchase,{iso(30)},D-1,a@x.com,500,USD,,", f"Purchase,{iso(30)},D-2,b@x.com,700,USD,,"]) + "\n")
    run_once(settings)
    project.drop_file("pending.csv", f"{DEAL_HEADER}\nPurchase,{iso(20)},D-3,c@x.com,900,USD,,\n")
    # D-3 is recorded but not yet sent when the cancellations arrive: Meta is not answering this time.
    sandbox.set_faults(fail_next_n_with_500=100)
    project.write_config(f'[sources.cancellations]\npolicy = "{policy}"\nevent_name = "Refund"\n'
                         "[meta]\nmax_attempts = 1\n")
    settings = load_settings(project.config, environ=env)
    assert run_once(settings).pending_left == 1
    sandbox.set_faults(fail_next_n_with_500=0)
    project.drop_file("cancelled.csv", "\n".join([DEAL_HEADER,
        f"Purchase,{iso(30)},D-1,a@x.com,500,USD,{iso(2)},-450",
        f"Purchase,{iso(20)},D-3,c@x.com,900,USD,{iso(2)},",
        f"Purchase,{iso(10)},D-4,d@x.com,300,USD,{iso(1)},"]) + "\n")
    report = run_once(settings)
    assert report.cancelled == 3
    sent = {(e["event_name"], e["custom_data"]["order_id"]): e for e in sandbox.accepted()}
    assert ("Purchase", "D-3") not in sent and ("Purchase", "D-4") not in sent
    assert all(e["custom_data"]["value"] >= 0 for e in sent.values())
    if policy == "report":
        assert report.refunds == 1
        refund = sent[("Refund", "D-1")]
        assert refund["custom_data"] == {"value": 450, "currency": "USD", "order_id": "D-1"}
        assert refund["user_data"] == {"em": sha("a@x.com")}
    else:
        assert report.refunds == 0 and ("Refund", "D-1") not in sent
    with sqlite3.connect(project.ledger_file) as conn:  # (a sent event's payload is not kept: found by id)
        statuses = dict(conn.execute("SELECT event_id, status FROM events WHERE event_name = 'Purchase'").fetchall())
    deal = {sha(f"capi-uploader/v1|order|Purchase|D-{n}")[:32]: f"D-{n}" for n in range(1, 5)}
    assert {deal[event_id]: status for event_id, status in statuses.items()} == {
        "D-1": "sent", "D-2": "sent", "D-3": "cancelled", "D-4": "cancelled"}
    # The cancelled deal in an old export dropped again is still never sent.
    project.drop_file("old-again.csv", f"{DEAL_HEADER}\nPurchase,{iso(10)},D-4,d@x.com,300,USD,,\n")
    run_once(settings)
    assert ("Purchase", "D-4") not in {(e["event_name"], e["custom_data"]["order_id"]) for e in sandbox.accepted()}


def test_a_deal_cancelled_later_in_the_same_file_is_never_sent(project: Project, env: dict[str, str],
                                                               sandbox: SandboxServer) -> None:
    """The deal's first row is read, and waits for a full batch, when its cancellation comes in a
    later chunk: it is withdrawn, recorded cancelled, and never reaches Meta."""
    project.write_config('[run]\nchunk_size = 100\nmap_workers = 0\n[sources.cancellations]\npolicy = "report"\n'
                         'event_name = "Refund"\n')
    others = [f"Purchase,{iso(30)},D-{n},b{n}@x.com,10,USD,," for n in range(100, 199)]
    project.drop_file("deals.csv", "\n".join([DEAL_HEADER, f"Purchase,{iso(30)},D-7,g@x.com,700,USD,,", *others,
                                              f"Purchase,{iso(30)},D-7,g@x.com,700,USD,{iso(2)},"]) + "\n")
    report = run_once(load_settings(project.config, environ=env))
    sent = [e["custom_data"]["order_id"] for e in sandbox.accepted()]
    assert len(sent) == 99 and "D-7" not in sent
    assert (report.cancelled, report.refunds, report.sent) == (1, 0, 99)
    with sqlite3.connect(project.ledger_file) as conn:
        statuses = collections.Counter(conn.execute("SELECT status FROM events").fetchall())
        d7 = conn.execute("SELECT status FROM events WHERE event_id = ?",
                          (sha("capi-uploader/v1|order|Purchase|D-7")[:32],)).fetchone()
    assert statuses == {("sent",): 99, ("cancelled",): 1} and d7 == ("cancelled",)
