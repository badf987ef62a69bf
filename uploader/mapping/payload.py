"""Build each event's JSON text column-wise, so no per-row dict is ever made."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
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
    out = pd.Series("", index=frame.index, dtype=object)
    ldu = frame["ldu"].to_numpy(dtype=bool)
    if ldu.any():  # built only for the rows that need it
        rows = frame[ldu]
        out[ldu] = ('"data_processing_options":["LDU"],"data_processing_options_country":'
                    + rows["ldu_country"].astype(str) + ',"data_processing_options_state":'
                    + rows["ldu_state"].astype(str) + ",")
    return out


def _member(key: str, values: pd.Series, encode: Callable[[str], str]) -> pd.Series:
    """``"key":value,`` where the value is present, else "".

    Hashes and ids are nearly all distinct and cheap to encode: per row. Numbers cost a parse and
    repeat: once per distinct value (pd.factorize), read as ``str(value)``.
    """
    prefix = f'"{key}":'
    if encode is _number:
        codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=False)
        texts = (value if isinstance(value, str) else str(value) for value in uniques)
        encoded = np.array([prefix + encode(text) + "," if text else "" for text in texts] or [""], dtype=object)
        return pd.Series(encoded[codes], index=values.index, dtype=object)
    texts = values.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(texts, skipna=False) != "string":
        texts = values.astype(str).to_numpy(dtype=object)
    if encode is _hex:  # [0-9a-f]: nothing to escape
        out = [f'{prefix}"{text}",' if text else "" for text in texts]
    else:
        out = [prefix + encode(text) + "," if text else "" for text in texts]
    return pd.Series(out, index=values.index, dtype=object)


def _object(members: list[pd.Series]) -> pd.Series:
    columns = [member.to_numpy(dtype=object) for member in members]
    # Values never end in a comma (they end in ", }, ] or a digit), so this only trims the separator.
    joined = ["{" + "".join(parts).rstrip(",") + "}" for parts in zip(*columns)]
    return pd.Series(joined, index=members[0].index, dtype=object)


def _string(value: str) -> str:
    # What json.dumps(value, ensure_ascii=False) returns for a str, without its per-call overhead.
    return json.encoder.encode_basestring(value)


def _hex(value: str) -> str:
    return f'"{value}"'  # hashes and lead ids are [0-9a-f]: nothing to escape


def _number(value: str) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)
