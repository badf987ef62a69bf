"""The one mapping engine every connector goes through: raw rows in, events and refusals out.

Raw personal data enters here and never leaves: the result holds only hashed
user data, and the raw frame is dropped when ``map_chunk`` returns.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from connectors.base import RawChunk
from uploader.mapping import hashing, normalize
from uploader.mapping.columns import conform
from uploader.mapping.fields import amounts, event_names, event_times
from uploader.mapping.identity import event_ids
from uploader.mapping.payload import HASHED_KEYS, event_json
from uploader.settings import SourceSettings
from uploader.validation import refusals

EVENT_COLUMNS = ["event_id", "event_name", "event_time", "action_source", "payload"]
REFUSAL_COLUMNS = ["line", "key", "column", "reason", "message"]
# Field in the template -> user_data key, for values the normaliser may drop as invalid.
CHECKED_FIELDS = {"email": "em", "phone": "ph", "date_of_birth": "db", "gender": "ge",
                  "country": "country", "state": "st", "zip": "zp"}


@dataclass
class MappedChunk:
    """What the ledger and the report need from one chunk; no raw personal data."""

    events: pd.DataFrame
    refused: pd.DataFrame
    dropped: Counter[str] = field(default_factory=Counter)
    ignored_columns: list[str] = field(default_factory=list)


def map_chunk(raw: RawChunk, source: SourceSettings, now: float) -> MappedChunk:
    """Map, hash and validate one chunk of raw rows."""
    frame, ignored = conform(raw.frame, source.columns)
    parsed = _parse(frame, source)
    dropped = _dropped(frame, parsed)
    parsed["em_dropped"] = frame["email"].ne("") & parsed["em"].eq("")
    parsed["ph_dropped"] = frame["phone"].ne("") & parsed["ph"].eq("")
    verdicts = refusals(parsed, now)
    good = parsed.drop(index=verdicts.index)
    good["event_id"] = event_ids(good)
    good["payload"] = event_json(good)
    good["event_time"] = good["event_time"].astype("int64")
    refused = _refusal_rows(verdicts, parsed, raw)
    return MappedChunk(good[EVENT_COLUMNS], refused, dropped, ignored)


def _parse(frame: pd.DataFrame, source: SourceSettings) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    out["event_name"] = event_names(frame["event_name"], frame["stage"], source.event_name, source.stage_map)
    out["stage"] = frame["stage"]
    out["event_time_text"] = frame["event_time"]
    out["event_time"] = event_times(frame["event_time"], source.timezone)
    out["action_source"] = frame["action_source"].str.lower().where(frame["action_source"].ne(""),
                                                                     source.action_source)
    out["value_text"] = frame["value"]
    out["value"] = amounts(frame["value"])
    out["currency"] = frame["currency"].str.upper()
    out["order_id"] = frame["order_id"]
    out["event_id"] = frame["event_id"]
    for key, values in _user_data(frame, source.default_country).items():
        out[key] = values
    return out


def _user_data(frame: pd.DataFrame, default_country: str | None) -> dict[str, pd.Series]:
    """Normalised, hashed user data keys; lead_id stays plain."""
    # The default only fills an empty cell: a country given but unknown is dropped, not replaced by a guess.
    country = normalize.country(frame["country"]).where(frame["country"].ne(""), default_country or "")
    plain = {
        "em": normalize.email(frame["email"]),
        "ph": normalize.phone(frame["phone"], country),
        "fn": normalize.name(frame["first_name"]),
        "ln": normalize.name(frame["last_name"]),
        "db": normalize.date_of_birth(frame["date_of_birth"]),
        "ge": normalize.gender(frame["gender"]),
        "ct": normalize.city(frame["city"]),
        "st": normalize.state(frame["state"], country),
        "zp": normalize.zip_code(frame["zip"], country),
        "country": country,
        "external_id": normalize.external_id(frame["external_id"]),
    }
    hashed = {key: hashing.sha256_hex(plain[key]) for key in HASHED_KEYS}
    hashed["lead_id"] = normalize.lead_id(frame["lead_id"])
    return hashed


def _dropped(frame: pd.DataFrame, parsed: pd.DataFrame) -> Counter[str]:
    """How many given values were dropped as invalid, per template field."""
    counts: Counter[str] = Counter()
    for column, key in CHECKED_FIELDS.items():
        lost = int((frame[column].ne("") & parsed[key].eq("")).sum())
        if lost:
            counts[column] = lost
    return counts


def _refusal_rows(verdicts: pd.DataFrame, parsed: pd.DataFrame, raw: RawChunk) -> pd.DataFrame:
    order_id = parsed.loc[verdicts.index, "order_id"]
    key = order_id.where(order_id.ne(""), parsed.loc[verdicts.index, "event_id"])
    rows = verdicts.assign(key=key).rename_axis("line").reset_index()[REFUSAL_COLUMNS]
    if raw.bad_lines:
        bad = pd.DataFrame([(b.line, "", b.column, b.reason, b.message) for b in raw.bad_lines],
                           columns=REFUSAL_COLUMNS)
        rows = pd.concat([rows, bad], ignore_index=True)
    return rows.sort_values("line", kind="stable", ignore_index=True)
