from __future__ import annotations

import math
from datetime import datetime

import pandas as pd
import pytest

from uploader.mapping.columns import conform
from uploader.mapping.fields import amounts, event_names, event_times


def utc(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.mark.parametrize(("raw", "zone", "expected"), [
    ("2026-11-20T10:00:00Z", "UTC", "2026-11-20T10:00:00+00:00"),
    ("2026-11-20T10:00:00+01:00", "America/New_York", "2026-11-20T09:00:00+00:00"),
    ("2026-11-20 10:00:00.123-0500", "UTC", "2026-11-20T15:00:00+00:00"),
    ("2026-11-20T10:00:00", "Europe/Berlin", "2026-11-20T09:00:00+00:00"),  # naive: the source's zone
    ("2026-11-20", "Europe/Berlin", "2026-11-19T23:00:00+00:00"),  # a date alone is midnight there
    ("1795168800", "Europe/Berlin", "2026-11-20T10:00:00+00:00"),  # Unix seconds are UTC
    ("2026-10-25 02:30:00", "Europe/Berlin", "2026-10-25T01:30:00+00:00"),  # ambiguous: standard time
    ("2026-03-29 02:30:00", "Europe/Berlin", "2026-03-29T01:00:00+00:00"),  # in the spring gap: moved on
])
def test_event_times(raw: str, zone: str, expected: str) -> None:
    out = event_times(pd.Series([raw], dtype=object), zone)
    assert out.iloc[0] == utc(expected)


@pytest.mark.parametrize("raw", ["", "yesterday", "2026-13-01T00:00:00", "1795168800000", "20.11.2026 10:00"])
def test_unparseable_event_times_are_nan(raw: str) -> None:
    assert math.isnan(event_times(pd.Series([raw], dtype=object), "UTC").iloc[0])


def test_amounts() -> None:
    raw = pd.Series(["1234.5", "1,234.50", " 10 ", "-5", "abc", "", "1.2.3", "12,34", "1e5"], dtype=object)
    out = amounts(raw).tolist()
    assert out[:4] == [1234.5, 1234.5, 10.0, -5.0]
    assert all(math.isnan(v) for v in out[4:])


def test_amounts_with_a_decimal_comma() -> None:
    raw = pd.Series(["1234,5", "1.234,50", " 10 ", "-5,25", "10,50", "1.234.567", "abc", "", "1,234.50", "12.34",
                     "1.2,3"], dtype=object)
    out = amounts(raw, decimal=",").tolist()
    assert out[:6] == [1234.5, 1234.5, 10.0, -5.25, 10.5, 1234567.0]
    assert all(math.isnan(v) for v in out[6:])  # "12.34" is no number with a decimal comma: refused, not 1234


def test_event_name_from_column_then_stage_map_then_default() -> None:
    names = pd.Series(["Purchase", "", "", ""], dtype=object)
    stages = pd.Series(["", "closed won ", "Unknown", ""], dtype=object).str.strip()
    out = event_names(names, stages, "Lead", {"Closed Won": "Purchase"})
    assert out.tolist() == ["Purchase", "Purchase", "Lead", "Lead"]
    assert event_names(names, stages, None, {}).tolist() == ["Purchase", "", "", ""]


def test_headers_match_ignoring_case_and_spaces_and_renames_apply() -> None:
    raw = pd.DataFrame({" EMAIL ": [" a@b.com "], "Deal Amount": ["10"], "Rep": ["x"], "email": ["dup"]})
    frame, ignored = conform(raw, {"deal amount ": "Value"})
    assert frame.loc[0, "email"] == "a@b.com"
    assert frame.loc[0, "value"] == "10"
    assert frame.loc[0, "phone"] == ""
    assert ignored == ["Rep", "email"]


def test_spaces_and_hyphens_inside_a_header_read_as_underscores() -> None:
    raw = pd.DataFrame({"First Name": ["Ann"], "Event-Time": ["2026-11-23"], " ORDER  ID ": ["A-1"],
                        "Date of Birth": ["1990-01-02"], "first_name": ["dup"], "Last_Name ": ["Lee"]})
    frame, ignored = conform(raw, {"Deal Amount": "Value"})
    assert frame.loc[0, ["first_name", "event_time", "order_id", "date_of_birth", "last_name"]].tolist() == [
        "Ann", "2026-11-23", "A-1", "1990-01-02", "Lee"]
    assert ignored == ["first_name"]  # the same column twice: the first one wins
    renamed, _ = conform(pd.DataFrame({"deal-amount": ["10"]}), {"Deal Amount": "Value"})
    assert renamed.loc[0, "value"] == "10"
