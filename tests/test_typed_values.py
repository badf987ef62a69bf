"""Typed values from database drivers go through the same engine as CSV text: a row read
from a database and the same row exported to CSV give the very same event."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from connectors.base import RawChunk
from uploader.mapping.columns import as_text
from uploader.mapping.engine import map_chunk
from uploader.settings import SourceSettings

NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(("value", "text"), [
    pytest.param(dt.datetime(2026, 11, 20, 9, 30), "2026-11-20T09:30:00", id="naive-stays-naive"),
    pytest.param(dt.datetime(2026, 11, 20, 9, 30, 0, 250000), "2026-11-20T09:30:00.250000", id="microseconds"),
    pytest.param(dt.datetime(2026, 11, 20, 9, 30, tzinfo=NEW_YORK), "2026-11-20T14:30:00+00:00", id="aware-as-utc"),
    pytest.param(dt.datetime(2026, 11, 20, 14, 30, tzinfo=dt.UTC), "2026-11-20T14:30:00+00:00", id="utc"),
    pytest.param(pd.Timestamp("2026-11-20 14:30", tz="UTC"), "2026-11-20T14:30:00+00:00", id="pandas-timestamp"),
    pytest.param(dt.date(1997, 2, 16), "1997-02-16", id="date"),
    pytest.param(Decimal("1250.00"), "1250.00", id="decimal"),
    pytest.param(Decimal("1E+3"), "1000", id="decimal-exponent"),
    pytest.param(Decimal("0.000001"), "0.000001", id="decimal-small"),
    pytest.param(2300.5, "2300.5", id="float"),
    pytest.param(1e16, "10000000000000000", id="float-large"),
    pytest.param(1001.0, "1001", id="float-whole"),
    pytest.param(np.float64(19.99), "19.99", id="numpy-float"),
    pytest.param(1001, "1001", id="int"),
    pytest.param(np.int64(7), "7", id="numpy-int"),
    pytest.param("Valéry ", "Valéry", id="text-stripped"),
    pytest.param("Zoë".encode(), "Zoë", id="utf8-bytes"),
    pytest.param(None, "", id="null"),
    pytest.param(float("nan"), "", id="nan"),
    pytest.param(pd.NaT, "", id="nat"),
])
def test_as_text_writes_typed_values_as_the_parsers_read_them(value: object, text: str) -> None:
    assert as_text(pd.Series([value, "x"], dtype=object)).tolist() == [text, "x"]


def test_typed_frames_lose_no_id_to_a_float_column() -> None:
    ids = pd.Series([1001, None], dtype="float64")  # what an integer column with NULLs becomes
    assert as_text(ids).tolist() == ["1001", ""]
    times = pd.Series(pd.to_datetime(["2026-11-20 14:30", None]))
    assert as_text(times).tolist() == ["2026-11-20T14:30:00", ""]


def test_a_database_row_and_its_csv_export_give_the_same_event() -> None:
    settings = SourceSettings(name="s", type="sql", path=Path("."), timezone="America/New_York",
                              default_country="US")
    now = dt.datetime(2026, 11, 21, tzinfo=dt.UTC).timestamp()
    typed = pd.DataFrame({
        "event_name": ["Purchase", "Purchase"],
        "event_time": [dt.datetime(2026, 11, 20, 9, 30),                       # naive: New York time
                       dt.datetime(2026, 11, 20, 16, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))],
        "order_id": [1001, 1002],
        "value": [Decimal("1250.00"), Decimal("899.99")],
        "currency": ["USD", "EUR"],
        "email": ["a@example.com", "b@example.com"],
        "phone": [None, "(650) 555-1212"],
        "external_id": [101, 102],
    }, index=pd.RangeIndex(1, 3, name="line"), dtype=object)
    text = pd.DataFrame({
        "event_name": ["Purchase", "Purchase"],
        "event_time": ["2026-11-20 09:30", "2026-11-20T16:00:00+01:00"],
        "order_id": ["1001", "1002"], "value": ["1,250.00", "899.99"], "currency": ["usd", "EUR"],
        "email": ["a@example.com", "b@example.com"], "phone": ["", "(650) 555-1212"],
        "external_id": ["101", "102"],
    }, index=pd.RangeIndex(1, 3, name="line"), dtype=object)
    from_db = map_chunk(RawChunk(typed), settings, now).events
    from_csv = map_chunk(RawChunk(text), settings, now).events
    assert from_db["payload"].tolist() == from_csv["payload"].tolist()
    assert from_db["event_time"].tolist() == [
        int(dt.datetime(2026, 11, 20, 14, 30, tzinfo=dt.UTC).timestamp()),
        int(dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.UTC).timestamp())]
    assert '"value":1250,' in from_db["payload"].iloc[0] and '"value":899.99,' in from_db["payload"].iloc[1]
