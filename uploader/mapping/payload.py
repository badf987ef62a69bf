"""Build each event's JSON text column-wise, so no per-row dict is ever made."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

HASHED_KEYS: tuple[str, ...] = ("em", "ph", "fn", "ln", "db", "ge", "ct", "st", "zp", "country", "external_id")
PLAIN_KEYS: tuple[str, ...] = ("lead_id",)
# Each member is ``"key":value,`` (or "" when absent) and an object is "{" + its members, less
# the last comma, + "}": values never end in a comma (they end in ", }, ] or a digit).


def event_json(frame: pd.DataFrame) -> pd.Series:
    """One JSON object per row: the Conversions API event, hashed user data only."""
    user = [_member(k, frame[k], _hex) for k in HASHED_KEYS + PLAIN_KEYS]
    custom = [
        _member("value", frame["value"], _number),
        _member("currency", frame["currency"], _string, repeats=True),
        _member("order_id", frame["order_id"], _string),
        _member("event_source", frame["event_source"], _string, repeats=True),
        _member("lead_event_source", frame["lead_event_source"], _string, repeats=True),
    ]
    top = [
        _member("event_name", frame["event_name"], _string, repeats=True),
        [f'"event_time":{t},' for t in frame["event_time"].astype("int64").tolist()],
        _member("action_source", frame["action_source"], _string, repeats=True),
        _member("event_id", frame["event_id"], _string),
        _nested("user_data", user, len(frame), always=True),
        _nested("custom_data", custom, len(frame), always=False),
        np.where(frame["opt_out"].to_numpy(dtype=bool), '"opt_out":true,', "").tolist(),
        _ldu(frame),
    ]
    return pd.Series(_object(top), index=frame.index, dtype=object)


def _ldu(frame: pd.DataFrame) -> Sequence[str]:
    """Limited Data Use: the option and where the person is (0 = let Meta geolocate)."""
    ldu = frame["ldu"].to_numpy(dtype=bool)
    if not ldu.any():
        return [""] * len(frame)
    countries = frame["ldu_country"].to_numpy().tolist()
    states = frame["ldu_state"].to_numpy().tolist()
    return [f'"data_processing_options":["LDU"],"data_processing_options_country":{c},'
            f'"data_processing_options_state":{s},' if on else "" for on, c, s in zip(ldu.tolist(), countries, states)]


def _member(key: str, values: pd.Series, encode: Callable[[str], str], repeats: bool = False) -> list[str]:
    """``"key":value,`` where the value is present, else "".

    Hashes and ids are nearly all distinct and cheap to encode: per row. Numbers cost a parse and
    repeat, and so do `repeats` texts (names, codes): once per distinct value (pd.factorize).
    Numbers are read as ``str(value)``; in a float column NaN is absent.
    """
    prefix = f'"{key}":'
    if encode is _number and values.dtype.kind == "f":
        codes, uniques = pd.factorize(values.to_numpy())  # NaN: code -1, the last entry
        return _spread(codes, [prefix + _float(value) + "," for value in uniques.tolist()] + [""])
    if encode is _number:
        codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=False)
        texts = (value if isinstance(value, str) else str(value) for value in uniques)
        return _spread(codes, [prefix + encode(text) + "," if text else "" for text in texts])
    texts = values.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(texts, skipna=False) != "string":
        texts = values.astype(str).to_numpy(dtype=object)
    if repeats:
        codes, uniques = pd.factorize(texts)
        return _spread(codes, [f"{prefix}{encode(text)}," if text else "" for text in uniques])
    if encode is _hex:  # [0-9a-f]: nothing to escape
        return [f'{prefix}"{text}",' if text else "" for text in texts]
    return [f"{prefix}{encode(text)}," if text else "" for text in texts]


def _spread(codes: np.ndarray, encoded: list[str]) -> list[str]:
    """The encoded distinct values back on their rows."""
    return np.array(encoded or [""], dtype=object)[codes].tolist()


def _object(members: list[Sequence[str]]) -> list[str]:
    """Per row: "{" + the row's members joined, less the separator after the last one, + "}"."""
    columns = [member for member in members if any(member)]  # a member no row has adds nothing
    if not columns:
        return ["{}"] * len(members[0])
    return ["{" + "".join(parts).rstrip(",") + "}" for parts in zip(*columns)]


def _nested(key: str, members: Sequence[Sequence[str]], rows: int, always: bool) -> list[str]:
    """Per row: ``"key":{...},`` the object of the members; with no member, only when `always`."""
    columns = [member for member in members if any(member)]
    prefix = f'"{key}":{{'
    if not columns:
        return [prefix + "},"] * rows if always else [""] * rows
    if always:
        return [prefix + "".join(parts).rstrip(",") + "}," for parts in zip(*columns)]
    return [prefix + joined.rstrip(",") + "}," if (joined := "".join(parts)) else "" for parts in zip(*columns)]


# What json.dumps(value, ensure_ascii=False) returns for a str, without its per-call overhead.
_string: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _hex(value: str) -> str:
    return f'"{value}"'  # hashes and lead ids are [0-9a-f]: nothing to escape


def _number(value: str) -> str:
    return _float(float(value))


def _float(number: float) -> str:
    """A JSON number: whole amounts without ".0", others as Python's shortest round-trip repr."""
    return str(int(number)) if number.is_integer() else repr(number)
