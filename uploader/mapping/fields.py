"""Parsing of the event's own fields (not personal data): time, name, value, currency."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from uploader.mapping.columns import header_key

# An explicit offset or Z at the end: the time is absolute and the source's zone does not apply.
_AWARE = r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
_UNIX = r"^\d{9,10}(?:\.\d+)?$"
_AMOUNT = r"^(?:\d+|\d{1,3}(?:,\d{3})+)(?:\.\d+)?$"


def event_times(values: pd.Series, timezone: str) -> pd.Series:
    """Unix seconds (float, NaN where unparseable) from ISO 8601 text with or without an
    offset, or Unix seconds. Naive times are read in ``timezone``."""
    out = pd.Series(np.nan, index=values.index, dtype="float64")
    unix = values.str.match(_UNIX)
    out[unix] = pd.to_numeric(values[unix], errors="coerce").astype("float64")
    aware = ~unix & values.str.contains(_AWARE, regex=True)
    out[aware] = _seconds(pd.to_datetime(values[aware], format="ISO8601", utc=True, errors="coerce"))
    naive = ~unix & ~aware & values.ne("")
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
    stamps = times.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")
    seconds = stamps.astype("int64") // 10**9
    return seconds.astype("float64").where(times.notna())


def event_names(names: pd.Series, stages: pd.Series, default: str | None,
                stage_map: Mapping[str, str]) -> pd.Series:
    """The event name: the column, else the stage through ``stage_map``, else the source default."""
    mapping = {header_key(k): v for k, v in stage_map.items()}
    from_stage = stages.str.lower().map(mapping).astype(object).fillna("")
    out = names.where(names.ne(""), from_stage)
    return out.where(out.ne(""), default or "")


def amounts(values: pd.Series) -> pd.Series:
    """Numbers from text like ``1234.5`` or ``1,234.50``; NaN where empty or not a number."""
    clean = values.str.replace(" ", "", regex=False)
    ok = clean.str.match(_AMOUNT) | clean.str.match(r"^-(?:\d+)(?:\.\d+)?$")
    return pd.to_numeric(clean.where(ok, "").str.replace(",", "", regex=False), errors="coerce")
