"""The mapping engine on single chunks: exact payload bytes, ids, refusals and dropped values."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from connectors.base import BadLine, RawChunk
from uploader.mapping.engine import map_chunk
from uploader.settings import SourceSettings

NOW = 1_795_168_800.0  # 2026-11-20T10:00:00Z


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk(rows: list[dict[str, str]], first_line: int = 2, bad: list[BadLine] | None = None) -> RawChunk:
    frame = pd.DataFrame(rows, dtype=object).fillna("")
    frame.index = pd.Index(range(first_line, first_line + len(rows)), name="line")
    return RawChunk(frame, bad or [])


def source(**kw: object) -> SourceSettings:
    return SourceSettings(name="s", type="csv", path=Path("."), **kw)  # type: ignore[arg-type]


def test_the_payload_bytes_are_exactly_metas_event() -> None:
    raw = chunk([{"Event_Name": "Purchase", "event_time": "2026-11-20T08:00:00Z", "Email": " Mary@Example.COM ",
                  "phone": "650-555-1212", "value": "99.5", "currency": "eur", "order_id": 'O-"7"',
                  "lead_id": "123456789012345", "country": ""}])
    mapped = map_chunk(raw, source(default_country="us"), NOW)
    assert mapped.refused.empty
    payload = mapped.events["payload"].iloc[0]
    event_id = sha('capi-uploader/v1|order|Purchase|O-"7"')[:32]
    assert payload == (
        '{"event_name":"Purchase","event_time":1795161600,"action_source":"system_generated",'
        f'"event_id":"{event_id}","user_data":{{"em":"{sha("mary@example.com")}","ph":"{sha("16505551212")}",'
        f'"country":"{sha("us")}","lead_id":"123456789012345"}},'
        '"custom_data":{"value":99.5,"currency":"EUR","order_id":"O-\\"7\\""}}'
    )
    assert json.loads(payload)["custom_data"]["order_id"] == 'O-"7"'


def test_event_ids_are_deterministic_and_follow_the_business_keys() -> None:
    rows = [
        {"event_name": "Lead", "event_time": "2026-11-20T08:00:00Z", "email": "a@x.com", "event_id": "mine-1"},
        {"event_name": "Lead", "event_time": "2026-11-20T08:00:00Z", "email": "a@x.com", "order_id": "L-9"},
        {"event_name": "Lead", "event_time": "2026-11-20T08:00:00Z", "email": "a@x.com"},
        {"event_name": "Lead", "event_time": "2026-11-20T08:00:01Z", "email": "a@x.com"},
    ]
    first = map_chunk(chunk(rows), source(), NOW).events["event_id"].tolist()
    again = map_chunk(chunk(list(reversed(rows)), first_line=50), source(), NOW).events["event_id"].tolist()
    assert first == list(reversed(again))
    assert first[0] == "mine-1"
    assert first[1] == sha("capi-uploader/v1|order|Lead|L-9")[:32]
    assert len(set(first)) == 4  # a second later is another conversion


def test_stage_map_and_source_defaults() -> None:
    rows = [{"stage": "Closed Won", "event_time": "2026-11-20 04:00", "email": "a@x.com", "value": "5",
             "currency": "USD"},
            {"stage": "Nurture", "event_time": "2026-11-20 04:00", "email": "b@x.com"}]
    mapped = map_chunk(chunk(rows), source(stage_map={"closed won": "Purchase"}, action_source="phone_call",
                                           timezone="America/New_York"), NOW)
    event = json.loads(mapped.events["payload"].iloc[0])
    assert (event["event_name"], event["action_source"], event["event_time"]) == ("Purchase", "phone_call",
                                                                                   NOW - 3600)
    assert mapped.refused[["line", "column", "reason"]].values.tolist() == [[3, "stage", "unknown_stage"]]
    assert mapped.refused["message"].iloc[0] == "stage 'Nurture' has no event name in this source's stage_map"


def test_invalid_values_are_dropped_and_counted_and_the_row_goes_on() -> None:
    rows = [{"event_name": "Lead", "event_time": "2026-11-20T08:00:00Z", "email": "nope", "phone": "12",
             "external_id": "C-1", "gender": "unknown", "date_of_birth": "31/31/1990"}]
    mapped = map_chunk(chunk(rows), source(default_country="us"), NOW)
    assert mapped.refused.empty
    assert dict(mapped.dropped) == {"email": 1, "phone": 1, "gender": 1, "date_of_birth": 1}
    assert json.loads(mapped.events["payload"].iloc[0])["user_data"] == {"country": sha("us"),
                                                                         "external_id": sha("C-1")}


def test_source_bad_lines_join_the_refusals_in_line_order() -> None:
    rows = [{"event_name": "Lead", "event_time": "2026-11-20T08:00:00Z", "email": "a@x.com"},
            {"event_name": "", "event_time": "2026-11-20T08:00:00Z", "email": "b@x.com", "order_id": "K-1"}]
    bad = [BadLine(4, "malformed_row", "the line has 3 fields but the header has 2")]
    mapped = map_chunk(chunk(rows, bad=bad), source(), NOW)
    assert mapped.refused[["line", "key", "reason"]].values.tolist() == [
        [3, "K-1", "missing_event_name"], [4, "", "malformed_row"]]
    assert len(mapped.events) == 1


def test_unknown_columns_are_named() -> None:
    rows = [{"event_name": "Lead", "event_time": "2026-11-20T08:00:00Z", "email": "a@x.com", "Rep": "Ana"}]
    assert map_chunk(chunk(rows), source(), NOW).ignored_columns == ["Rep"]


def test_a_time_out_of_pandas_nanosecond_range_is_refused_not_a_crash() -> None:
    raw = chunk([{"event_name": "Lead", "event_time": when, "email": "a@x.com"}
                 for when in ("0000-01-01T00:00:00", "1677-09-21 00:00", "2026-11-20T08:00:00Z")])
    mapped = map_chunk(raw, source(), NOW)
    assert len(mapped.events) == 1
    assert mapped.refused[["line", "column", "reason"]].values.tolist() == [
        [2, "event_time", "too_old"], [3, "event_time", "too_old"]]
