"""Deterministic event ids: the same conversion always gets the same id, in any file or run."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

# Bump only with a migration: changing the recipe would make every old conversion look new.
RECIPE = "capi-uploader/v1"
MATCH_KEYS: tuple[str, ...] = ("em", "ph", "external_id", "lead_id", "fn", "ln", "db", "zp", "ct", "st", "country", "ge")


def event_ids(frame: pd.DataFrame, by_lead: bool = False) -> pd.Series:
    """The ``event_id`` column where given; else a hash of event_name + order_id; without an
    order_id, a hash of event_name + event_time + the hashed match keys.

    ``by_lead`` (Conversion Leads): a CRM stage happens once per lead, so event_name +
    lead_id comes first, and the same stage read again in any run is the same event.
    """
    given = _column(frame, "event_id")
    names, orders = _column(frame, "event_name"), _column(frame, "order_id")
    todo = given == ""  # only rows without an id of their own are hashed
    leads = _column(frame, "lead_id") if by_lead else np.full(len(frame), "", dtype=object)
    by_lead_rows = todo & (leads != "")
    by_order_rows = todo & ~by_lead_rows & (orders != "")
    by_person_rows = todo & ~by_lead_rows & ~by_order_rows
    out = given.copy()
    out[by_lead_rows] = [_short_hash(f"{RECIPE}|lead|{n}|{lead}")
                         for n, lead in zip(names[by_lead_rows], leads[by_lead_rows])]
    out[by_order_rows] = [_short_hash(f"{RECIPE}|order|{n}|{o}")
                          for n, o in zip(names[by_order_rows], orders[by_order_rows])]
    out[by_person_rows] = _person_ids(frame[by_person_rows], names[by_person_rows])
    return pd.Series(out, index=frame.index, dtype=object)


def _person_ids(frame: pd.DataFrame, names: np.ndarray) -> list[str]:
    """event_name + event_time + the hashed match keys, for rows with neither id nor order_id."""
    seconds = frame["event_time"].fillna(-1).astype("int64").to_numpy()
    keys = frame[list(MATCH_KEYS)].to_numpy(dtype=object)
    return [_short_hash(f"{RECIPE}|person|{n}|{t}|" + "|".join(k)) for n, t, k in zip(names, seconds, keys)]


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy(dtype=object)


def lead_stage_id(event_name: str, lead_id: str) -> str:
    """The event id a Conversion Leads stage gets (see ``event_ids(by_lead=True)``)."""
    return _short_hash(f"{RECIPE}|lead|{event_name}|{lead_id}")


def _short_hash(text: str) -> str:
    # 128 bits: collisions are out of reach for any realistic ledger.
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
