"""The standard template: which columns a source may carry, and how headers are matched."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

TEMPLATE: tuple[str, ...] = (
    "event_name", "event_time", "action_source", "event_id", "order_id",
    "email", "phone", "first_name", "last_name", "city", "state", "zip", "country",
    "date_of_birth", "gender", "external_id", "lead_id", "value", "currency", "stage",
)


def header_key(name: object) -> str:
    """Headers match ignoring case and surrounding spaces."""
    return str(name).strip().lower()


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
    out = pd.DataFrame(index=frame.index)
    for field in TEMPLATE:
        out[field] = as_text(frame[chosen[field]]) if field in chosen else ""
    return out, ignored


def as_text(values: pd.Series) -> pd.Series:
    """Every value as stripped text, missing ones as ""."""
    text = values.astype(object).where(values.notna(), "")
    return text.astype(str).str.strip()
