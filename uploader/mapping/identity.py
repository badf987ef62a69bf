"""Deterministic event ids: the same conversion always gets the same id, in any file or run."""

from __future__ import annotations

import hashlib

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
    by_order = RECIPE + "|order|" + frame["event_name"] + "|" + frame["order_id"]
    seconds = frame["event_time"].fillna(-1).astype("int64").astype(str)
    keys = frame[MATCH_KEYS[0]]
    for key in MATCH_KEYS[1:]:
        keys = keys + "|" + frame[key]
    by_person = RECIPE + "|person|" + frame["event_name"] + "|" + seconds + "|" + keys
    recipe = by_order.where(frame["order_id"].ne(""), by_person)
    if by_lead:
        recipe = (RECIPE + "|lead|" + frame["event_name"] + "|" + frame["lead_id"]).where(
            frame["lead_id"].ne(""), recipe)
    derived = recipe.map(_short_hash)
    return frame["event_id"].where(frame["event_id"].ne(""), derived)


def lead_stage_id(event_name: str, lead_id: str) -> str:
    """The event id a Conversion Leads stage gets (see ``event_ids(by_lead=True)``)."""
    return _short_hash(f"{RECIPE}|lead|{event_name}|{lead_id}")


def _short_hash(text: str) -> str:
    # 128 bits: collisions are out of reach for any realistic ledger.
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
