"""Parsing of the event's own fields (not personal data): time, name, value, currency."""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from uploader.mapping.columns import each_distinct

# An explicit offset or Z at the end: the time is absolute and the source's zone does not apply.
_AWARE = r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
_UNIX = r"^\d{9,10}(?:\.\d+)?$"
_AMOUNT = r"^(?:\d+|\d{1,3}(?:,\d{3})+)(?:\.\d+)?$"
_NEGATIVE = r"^-(?:\d+)(?:\.\d+)?$"
_UNIX_RE, _AWARE_RE = re.compile(_UNIX), re.compile(_AWARE)
_AMOUNT_RE, _NEGATIVE_RE = re.compile(_AMOUNT), re.compile(_NEGATIVE)
# With a decimal comma (sources[].decimal = ","): 1.234,50 and 10,5; thousands are dotted.
_COMMA_AMOUNT_RE = re.compile(r"^(?:\d+|\d{1,3}(?:\.\d{3})+)(?:,\d+)?$")
_COMMA_NEGATIVE_RE = re.compile(r"^-\d+(?:,\d+)?$")
UNIX, AWARE, NAIVE = 1, 2, 3  # the kinds of time text; 0: empty


def time_kind(text: str) -> int:
    """Unix seconds, a time with an offset or Z (absolute), or any other non-empty text (naive)."""
    if not text:
        return 0
    return UNIX if _UNIX_RE.match(text) else AWARE if _AWARE_RE.search(text) else NAIVE


def event_times(values: pd.Series, timezone: str) -> pd.Series:
    """Unix seconds (float, NaN where unparseable) from ISO 8601 text with or without an
    offset, or Unix seconds. Naive times are read in ``timezone``."""
    out = pd.Series(np.nan, index=values.index, dtype="float64")
    texts = values.to_numpy(dtype=object)
    given = texts != ""
    if not given.any():  # a column the source does not fill
        return out
    kinds = np.zeros(len(texts), dtype=np.int8)
    kinds[given] = [time_kind(text) for text in texts[given]]  # one pass classifies every value
    unix, aware, naive = kinds == UNIX, kinds == AWARE, kinds == NAIVE
    if unix.any():
        out[unix] = pd.to_numeric(values[unix], errors="coerce").astype("float64")
    if aware.any():
        out[aware] = _seconds(pd.to_datetime(values[aware], format="ISO8601", utc=True, errors="coerce"))
    if naive.any():
        out[naive] = _seconds(_localize(pd.to_datetime(values[naive], format="ISO8601", errors="coerce"), timezone))
    return out.floordiv(1)


def _localize(times: pd.Series, timezone: str) -> pd.Series:
    if times.empty:
        return times
    # Ambiguous autumn hours are read as standard time and spring-gap times move forward:
    # deterministic, so a re-read gives the same event_time and the same event_id.
    return times.dt.tz_localize(timezone, ambiguous=np.zeros(len(times), dtype=bool),
                                nonexistent="shift_forward")


def _seconds(times: pd.Series) -> pd.Series:
    if times.empty:
        return pd.Series(dtype="float64", index=times.index)
    # Straight to seconds: pandas parses into microseconds, where year 1 or 9999 fit and
    # nanoseconds do not (such a time is then refused by validation, not a crash).
    stamps = times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[s]")
    seconds = pd.Series(stamps.astype("int64"), index=times.index)
    return seconds.astype("float64").where(times.notna())


def event_names(names: pd.Series, stages: pd.Series, default: str | None,
                stage_map: Mapping[str, str]) -> pd.Series:
    """The event name: the column, else the stage through ``stage_map``, else the source default."""
    mapping = {k.strip().lower(): v for k, v in stage_map.items()}  # stages are values, not headers
    from_stage = each_distinct(stages, lambda stage: mapping.get(stage.lower(), "") if isinstance(stage, str) else "")
    given = names.to_numpy(dtype=object)
    out = np.where(given != "", given, from_stage)
    return pd.Series(np.where(out != "", out, default or ""), index=names.index, name=names.name, dtype=object)


def amounts(values: pd.Series, decimal: str = ".") -> pd.Series:
    """Numbers from text like ``1234.5`` or ``1,234.50`` (with ``decimal=","``: ``1234,5`` or
    ``1.234,50``); NaN where empty or not a number."""
    texts = values.to_numpy(dtype=object)
    clean = np.full(len(texts), "", dtype=object)
    given = texts != ""  # many amount columns are mostly empty
    if given.any():
        read = amount_text if decimal == "." else comma_amount_text
        clean[given] = np.array([read(text) for text in texts[given]], dtype=object)
    return pd.to_numeric(pd.Series(clean, index=values.index, name=values.name, dtype=object), errors="coerce")


def amount_text(text: str) -> str:
    """The number in an amount's text, without spaces and thousands separators; "" if none."""
    clean = text.replace(" ", "")
    return clean.replace(",", "") if _AMOUNT_RE.match(clean) or _NEGATIVE_RE.match(clean) else ""


def comma_amount_text(text: str) -> str:
    """``amount_text`` for a decimal comma: ``1.234,50`` -> ``1234.50``; "" if not a number."""
    clean = text.replace(" ", "")
    if _COMMA_AMOUNT_RE.match(clean) or _COMMA_NEGATIVE_RE.match(clean):
        return clean.replace(".", "").replace(",", ".")
    return ""
