"""Every refusal reason with the exact message a sales-ops person reads."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from connectors.base import RawChunk
from uploader.mapping.engine import map_chunk
from uploader.settings import SourceSettings

NOW = 1_795_168_800.0  # 2026-11-20T10:00:00Z
OK = {"event_name": "Lead", "event_time": "2026-11-20T08:00:00Z", "email": "a@x.com"}


def refuse(**row: str) -> tuple[str, str, str]:
    frame = pd.DataFrame([{**OK, **row}], dtype=object)
    frame.index = pd.Index([2], name="line")
    refused = map_chunk(RawChunk(frame), SourceSettings(name="s", type="csv", path=Path(".")), NOW).refused
    assert len(refused) == 1, refused
    return tuple(refused[["reason", "column", "message"]].iloc[0])  # type: ignore[return-value]


def test_a_physical_store_sale_may_be_62_days_old() -> None:
    frame = pd.DataFrame([{**OK, "event_time": "2026-10-01T10:00:00Z", "action_source": "physical_store"}])
    mapped = map_chunk(RawChunk(frame), SourceSettings(name="s", type="csv", path=Path(".")), NOW)
    assert mapped.refused.empty and len(mapped.events) == 1


@pytest.mark.parametrize(("row", "expected"), [
    ({"event_name": ""}, ("missing_event_name", "event_name", "event_name is empty")),
    ({"action_source": "web"}, ("bad_action_source", "action_source", "action_source 'web' is not one of app, "
                                "business_messaging, chat, email, other, phone_call, physical_store, "
                                "system_generated, website")),
    ({"event_time": ""}, ("bad_event_time", "event_time", "event_time is empty")),
    ({"event_time": "soon"}, ("bad_event_time", "event_time", "event_time 'soon' is not a date and time (use "
                              "ISO 8601 such as 2026-11-20T14:30:00+01:00, or Unix seconds)")),
    ({"event_time": "2026-11-21T00:00:00Z"}, ("future_event_time", "event_time",
                                              "event_time 2026-11-21T00:00:00Z is in the future")),
    ({"event_time": "2026-11-10T10:00:00Z"}, ("too_old", "event_time", "event_time 2026-11-10T10:00:00Z is 10.0 "
                                              "days old; Meta takes system_generated events up to 7 days old")),
    ({"event_time": "2026-09-11T10:00:00Z", "action_source": "physical_store"},
     ("too_old", "event_time", "event_time 2026-09-11T10:00:00Z is 70.0 days old; Meta takes physical_store "
      "events up to 62 days old")),
    ({"value": "ten"}, ("bad_value", "value", "value 'ten' is not a number")),
    ({"value": "-5"}, ("negative_value", "value", "value -5 is negative")),
    ({"currency": "DOLLARS"}, ("bad_currency", "currency",
                               "currency 'DOLLARS' is not an ISO 4217 code such as USD or EUR")),
    ({"event_name": "Purchase"}, ("purchase_without_value", "value",
                                  "a Purchase needs value and currency (missing: value and currency)")),
    ({"event_name": "Purchase", "value": "5"}, ("purchase_without_value", "currency",
                                                "a Purchase needs value and currency (missing: currency)")),
    ({"event_name": "Purchase", "currency": "USD"}, ("purchase_without_value", "value",
                                                     "a Purchase needs value and currency (missing: value)")),
    ({"email": "nope", "phone": "12"}, ("no_match_key", "email", "no customer information to match on (email, "
                                        "phone, external_id, lead_id or name); dropped as invalid: email phone")),
    ({"email": "", "first_name": "Ann", "gender": "f"},
     ("too_little_customer_info", "email", "too little customer information for Meta: add an email, phone, "
      "external_id or lead_id (city, state, zip, country, gender, birth date or one name alone are not enough)")),
])
def test_refusal_reasons_and_messages(row: dict[str, str], expected: tuple[str, str, str]) -> None:
    assert refuse(**row) == expected
