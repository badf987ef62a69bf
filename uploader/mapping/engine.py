"""The one mapping engine every connector goes through: raw rows in, events and refusals out.

Raw personal data enters here and never leaves: the result holds only hashed
user data, and the raw frame is dropped when ``map_chunk`` returns.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from connectors.base import RawChunk
from uploader.mapping import hashing, normalize
from uploader.mapping.columns import conform, each_distinct, factorize_text
from uploader.mapping.fields import amounts, event_names, event_times
from uploader.mapping.identity import event_ids
from uploader.mapping.leads import (conversion_lead_fields, consent_gate, flags, ldu_fields, lead_ids,
                                    lifecycle_times, refunds)
from uploader.mapping.payload import HASHED_KEYS, event_json
from uploader.settings import SourceSettings
from uploader.validation import refusals, window_days

EVENT_COLUMNS = ["event_id", "event_name", "event_time", "action_source", "stage_rank", "lead_id", "payload"]
REFUND_COLUMNS = EVENT_COLUMNS + ["original_event_name", "original_event_id"]
REFUSAL_COLUMNS = ["line", "key", "column", "reason", "message"]
# Field in the template -> user_data key, for values the normaliser may drop as invalid.
CHECKED_FIELDS = {"email": "em", "phone": "ph", "date_of_birth": "db", "gender": "ge",
                  "country": "country", "state": "st", "zip": "zp"}
# Match keys counted for the run report's coverage (fn+ln counts events with both names).
COVERAGE_KEYS = ("em", "ph", "external_id", "fn+ln", "zp", "country", "lead_id")


@dataclass
class MappedChunk:
    """What the ledger and the report need from one chunk; no raw personal data."""

    events: pd.DataFrame
    refused: pd.DataFrame
    dropped: Counter[str] = field(default_factory=Counter)
    ignored_columns: list[str] = field(default_factory=list)
    # Per event_name: events, and how many carry each of COVERAGE_KEYS (counts only).
    coverage: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["events", *COVERAGE_KEYS]))
    # Rows not sent because consent is missing or denied, by reason (nothing of them is kept).
    withheld: Counter[str] = field(default_factory=Counter)
    # Conversions cancelled in the CRM: never to be sent; and the refunds to report for
    # those already sent (the pipeline checks the ledger for the original).
    cancelled: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=EVENT_COLUMNS))
    refunds: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REFUND_COLUMNS))


def map_chunk(raw: RawChunk, source: SourceSettings, now: float) -> MappedChunk:
    """Map, hash and validate one chunk of raw rows."""
    frame, ignored = conform(raw.frame, _renames(source))
    frame, withheld = consent_gate(frame, source.consent)
    parsed = _parse(frame, source)
    dropped = _dropped(frame, parsed)
    parsed["em_dropped"] = _filled(frame["email"]) & ~_filled(parsed["em"])
    parsed["ph_dropped"] = _filled(frame["phone"]) & ~_filled(parsed["ph"])
    verdicts = refusals(parsed, now)
    good = parsed.drop(index=verdicts.index)
    good["event_id"] = event_ids(good, by_lead=source.conversion_leads is not None)
    is_cancelled = good["cancelled_at"].notna()
    events, cancelled = good[~is_cancelled], good[is_cancelled]
    refused = _refusal_rows(verdicts, parsed, raw)
    return MappedChunk(_finish(events, EVENT_COLUMNS), refused, dropped, ignored, coverage(events), withheld,
                       _finish(cancelled, EVENT_COLUMNS), _refunds(cancelled, source, now))


def _finish(events: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """`columns` of the events, with each event's JSON payload and event_time in whole seconds."""
    payload = event_json(events) if len(events) else ""
    # Only the output columns are copied, not the whole parsed frame.
    out = events[[c for c in columns if c != "payload"]].assign(payload=payload)
    return out.assign(event_time=out["event_time"].astype("int64"))[columns]


def _refunds(cancelled: pd.DataFrame, source: SourceSettings, now: float) -> pd.DataFrame:
    """Refund events for cancelled conversions, when the source reports them; a cancellation
    too old (or dated in the future) for Meta cannot be reported."""
    if source.cancellations.policy != "report" or cancelled.empty:
        return pd.DataFrame(columns=REFUND_COLUMNS)
    out = refunds(cancelled, source.cancellations.event_name)
    window = out["action_source"].map(window_days) * 86400
    out = out[(out["event_time"] <= now) & (now - out["event_time"] <= window)]
    out = out.assign(event_id=event_ids(out))
    return _finish(out, REFUND_COLUMNS)


def _renames(source: SourceSettings) -> dict[str, str]:
    column = source.consent.column
    return {**source.columns, column: "consent"} if column != "consent" else dict(source.columns)


def coverage(events: pd.DataFrame) -> pd.DataFrame:
    """How many events of each event_name carry each match key, from the hashed user_data columns."""
    codes, names = factorize_text(events["event_name"].to_numpy(dtype=object))
    present = {key: _filled(events[key]) for key in COVERAGE_KEYS if key != "fn+ln"}
    present["fn+ln"] = _filled(events["fn"]) & _filled(events["ln"])
    # Counted per event name with bincount: a pandas groupby costs more than the counting.
    counts = {"events": np.bincount(codes, minlength=len(names))}
    counts.update({key: np.bincount(codes[present[key]], minlength=len(names)) for key in COVERAGE_KEYS})
    return pd.DataFrame(counts, index=pd.Index(names.astype(object), name="event_name"), dtype="int64")


def _parse(frame: pd.DataFrame, source: SourceSettings) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    out["event_name"] = event_names(frame["event_name"], frame["stage"], source.event_name, source.stage_map)
    out["stage"] = frame["stage"]
    out["event_time_text"] = frame["event_time"]
    out["event_time"] = event_times(frame["event_time"], source.timezone)
    out["action_source"] = each_distinct(frame["action_source"], lambda text: text.lower() or source.action_source)
    out["value_text"] = frame["value"]
    out["value"] = amounts(frame["value"], source.decimal)
    out["currency"] = each_distinct(frame["currency"], str.upper)
    out["order_id"] = frame["order_id"]
    out["event_id"] = frame["event_id"]
    out["refund_value"] = amounts(frame["refund_value"], source.decimal)
    out["opt_out"] = flags(frame["opt_out"])
    hashed, plain = _user_data(frame, source.default_country)
    for key, values in hashed.items():
        out[key] = values
    out["lead_id"], out["lead_id_dropped"] = lead_ids(out["lead_id"], source.conversion_leads is not None)
    if source.conversion_leads is not None:
        out["action_source"] = "system_generated"  # Meta's CRM integration spec
    extra = [conversion_lead_fields(frame, source.conversion_leads, out["event_name"]),
             lifecycle_times(frame, source), ldu_fields(plain["country"], plain["st"], source.ldu)]
    return pd.concat([out, *extra], axis=1)


def _user_data(frame: pd.DataFrame, default_country: str | None) -> tuple[dict[str, pd.Series], dict[str, pd.Series]]:
    """Normalised, hashed user data keys (lead_id stays plain), and the normalised country and
    state before hashing (for Limited Data Use), which never leave this module."""
    # The default only fills an empty cell: a country given but unknown is dropped, not replaced by a guess.
    country = normalize.country(frame["country"]).where(frame["country"].ne(""), default_country or "")
    plain = {"country": country, "st": normalize.state(frame["state"], country)}
    # Normalised and hashed in one pass per distinct value (hashed=True).
    hashed = {
        "em": normalize.email(frame["email"], hashed=True),
        "ph": normalize.phone(frame["phone"], country, hashed=True),
        "fn": normalize.name(frame["first_name"], hashed=True),
        "ln": normalize.name(frame["last_name"], hashed=True),
        "db": normalize.date_of_birth(frame["date_of_birth"], hashed=True),
        "ge": normalize.gender(frame["gender"], hashed=True),
        "ct": normalize.city(frame["city"], hashed=True),
        "st": hashing.sha256_hex(plain["st"]),
        "zp": normalize.zip_code(frame["zip"], country, hashed=True),
        "country": hashing.sha256_hex(country),
        "external_id": normalize.external_id(frame["external_id"], hashed=True),
    }
    hashed = {key: hashed[key] for key in HASHED_KEYS}  # the column order of the parsed frame
    hashed["lead_id"] = normalize.lead_id(frame["lead_id"])
    return hashed, plain


def _dropped(frame: pd.DataFrame, parsed: pd.DataFrame) -> Counter[str]:
    """How many given values were dropped as invalid, per template field."""
    counts: Counter[str] = Counter()
    for column, key in CHECKED_FIELDS.items():
        lost = int((_filled(frame[column]) & ~_filled(parsed[key])).sum())
        if lost:
            counts[column] = lost
    if parsed["lead_id_dropped"].any():
        counts["lead_id"] = int(parsed["lead_id_dropped"].sum())
    return counts


def _filled(values: pd.Series) -> np.ndarray:
    """Where a text column holds a value (not ""): numpy's comparison, several times cheaper than pandas'."""
    return values.to_numpy(dtype=object) != ""


def _refusal_rows(verdicts: pd.DataFrame, parsed: pd.DataFrame, raw: RawChunk) -> pd.DataFrame:
    order_id = parsed.loc[verdicts.index, "order_id"]
    key = order_id.where(order_id.ne(""), parsed.loc[verdicts.index, "event_id"])
    rows = verdicts.assign(key=key).rename_axis("line").reset_index()[REFUSAL_COLUMNS]
    if raw.bad_lines:
        bad = pd.DataFrame([(b.line, "", b.column, b.reason, b.message) for b in raw.bad_lines],
                           columns=REFUSAL_COLUMNS)
        rows = pd.concat([rows, bad], ignore_index=True)
    return rows.sort_values("line", kind="stable", ignore_index=True)
