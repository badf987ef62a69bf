"""The standard template: which columns a source may carry, and how headers are matched."""

from __future__ import annotations

import datetime
import decimal
import re
from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt
import pandas as pd

TEMPLATE: tuple[str, ...] = (
    "event_name", "event_time", "action_source", "event_id", "order_id",
    "email", "phone", "first_name", "last_name", "city", "state", "zip", "country",
    "date_of_birth", "gender", "external_id", "lead_id", "value", "currency", "stage",
    # lead quality and privacy (README: "Lead quality with CRM stages")
    "lead_created_at", "consent", "opt_out", "cancelled_at", "refund_value",
)


_SEPARATORS_RE = re.compile(r"[\s-]+")


def header_key(name: object) -> str:
    """Headers match ignoring case and surrounding spaces, and a run of spaces or hyphens inside
    is an underscore: spreadsheet exports write "First Name" and "Event-Time" for first_name and
    event_time."""
    return _SEPARATORS_RE.sub("_", str(name).strip().lower())


def conform(frame: pd.DataFrame, renames: Mapping[str, str]) -> tuple[pd.DataFrame, list[str]]:
    """Rename a raw frame's columns to the template and return it with every template
    column present (missing ones empty), plus the source columns that were ignored."""
    wanted = {header_key(k): header_key(v) for k, v in renames.items()}
    chosen: dict[str, object] = {}
    ignored: list[str] = []
    for column in frame.columns:
        field = wanted.get(header_key(column), header_key(column))
        if field in TEMPLATE and field not in chosen:
            chosen[field] = column
        else:
            ignored.append(str(column))
    # Plain object columns of str: pandas' "str" dtype would cost a missing-value pass per operation.
    empty = np.full(len(frame), "", dtype=object)
    out = pd.DataFrame({field: as_text(frame[chosen[field]]) if field in chosen
                        else pd.Series(empty, index=frame.index, dtype=object, copy=True) for field in TEMPLATE},
                       index=frame.index)
    return out, ignored


def factorize_text(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pd.factorize keeping missing values as one more distinct value (use_na_sentinel=False),
    without the missing-value pass that costs when, as in text from as_text(), there are none."""
    codes, uniques = pd.factorize(values)
    if len(codes) and codes.min() < 0:
        return pd.factorize(values, use_na_sentinel=False)
    return codes, uniques


def each_distinct(values: pd.Series, fn: Callable[[str], object], dtype: npt.DTypeLike = object) -> np.ndarray:
    """``fn`` of every value of a text column, called once per distinct value (columns repeat a lot)."""
    codes, uniques = factorize_text(values.to_numpy(dtype=object))
    return np.array([fn(value) for value in uniques], dtype=dtype)[codes]


def as_text(values: pd.Series) -> pd.Series:
    """Every value as stripped text, missing ones (None, NULL, NaN, NaT) as "".

    Typed values (from a database driver or a typed frame) are written so the parsers read
    them back exactly: times in ISO 8601, an aware one as the same instant in UTC (a naive
    one stays naive and is read in the source's timezone), DECIMAL and floats in plain
    notation, whole numbers without ".0" (so an id 1001 is "1001" in every connector).
    """
    text = values.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(text, skipna=False) != "string":  # not all str (a CSV's are): convert
        if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
            values = values.astype(object).map(_typed_text, na_action="ignore")
        text = values.to_numpy(dtype=object)
        missing = pd.isna(text)
        if missing.any():
            text = np.where(missing, "", text)
    # Every value is a str by now. A plain list keeps dtype object: pandas' "str" dtype would
    # cost a missing-value pass in every later operation, and .str.strip() a mask of its own.
    return pd.Series(list(map(str.strip, text)), index=values.index, name=values.name, dtype=object)


def _typed_text(value: object) -> object:
    if isinstance(value, str):
        return value
    if isinstance(value, datetime.datetime):
        aware = value.tzinfo is not None and value.utcoffset() is not None
        return (value.astimezone(datetime.UTC) if aware else value).isoformat()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else np.format_float_positional(value, trim="-")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)
