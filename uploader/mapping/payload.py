"""Build each event's JSON text column-wise, so no per-row dict is ever made."""

from __future__ import annotations

import json

import pandas as pd

HASHED_KEYS: tuple[str, ...] = ("em", "ph", "fn", "ln", "db", "ge", "ct", "st", "zp", "country", "external_id")
PLAIN_KEYS: tuple[str, ...] = ("lead_id",)


def event_json(frame: pd.DataFrame) -> pd.Series:
    """One JSON object per row: the Conversions API event, hashed user data only."""
    user = _object([_member(k, frame[k], _hex) for k in HASHED_KEYS + PLAIN_KEYS])
    custom = _object([
        _member("value", frame["value"].astype(object).where(frame["value"].notna(), ""), _number),
        _member("currency", frame["currency"], _string),
        _member("order_id", frame["order_id"], _string),
        _member("event_source", frame["event_source"], _string),
        _member("lead_event_source", frame["lead_event_source"], _string),
    ])
    top = [
        _member("event_name", frame["event_name"], _string),
        _member("event_time", frame["event_time"].astype("int64").astype(str), str),
        _member("action_source", frame["action_source"], _string),
        _member("event_id", frame["event_id"], _string),
        '"user_data":' + user + ",",
        ('"custom_data":' + custom + ",").where(custom.ne("{}"), ""),
        pd.Series('"opt_out":true,', index=frame.index).where(frame["opt_out"], ""),
        _ldu(frame),
    ]
    return _object(top)


def _ldu(frame: pd.DataFrame) -> pd.Series:
    """Limited Data Use: the option and where the person is (0 = let Meta geolocate)."""
    text = ('"data_processing_options":["LDU"],"data_processing_options_country":'
            + frame["ldu_country"].astype(str) + ',"data_processing_options_state":'
            + frame["ldu_state"].astype(str) + ",")
    return text.where(frame["ldu"], "")


def _member(key: str, values: pd.Series, encode: type | object) -> pd.Series:
    """``"key":value,`` where the value is present, else ""."""
    text = values.astype(str)
    present = text.ne("")
    uniques = text[present].unique()
    encoded = text[present].map(dict(zip(uniques, map(encode, uniques))))
    out = pd.Series("", index=values.index, dtype=object)
    out[present] = f'"{key}":' + encoded + ","
    return out


def _object(members: list[pd.Series]) -> pd.Series:
    joined = members[0]
    for member in members[1:]:
        joined = joined + member
    # Values never end in a comma (they end in ", }, ] or a digit), so this only trims the separator.
    return "{" + joined.str.rstrip(",") + "}"


def _string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _hex(value: str) -> str:
    return f'"{value}"'  # hashes and lead ids are [0-9a-f]: nothing to escape


def _number(value: str) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)
