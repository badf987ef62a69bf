"""The rules, one function each, applied to a whole chunk at once.

Each rule returns a mask of the rows it refuses and a plain-language message.
A row is refused for the first rule it breaks; the order below is the order a
person would fix things in.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import pandas as pd
import pycountry

from uploader.settings import ACTION_SOURCES

WINDOW_DAYS: dict[str, int] = {"physical_store": 62}
DEFAULT_WINDOW_DAYS = 7
IDENTIFYING = ("em", "ph", "external_id", "lead_id", "fn", "ln", "db", "ct", "st", "zp", "ge")
# Meta's baseline (conversions-api/best-practices): user data made only of these key sets is refused.
TOO_LITTLE: tuple[frozenset[str], ...] = (
    frozenset({"ct", "st", "zp", "country", "ge", "client_user_agent"}),
    frozenset({"db", "client_user_agent", "country"}),
    frozenset({"fn", "ge", "country"}),
    frozenset({"ln", "ge", "country"}),
)

Verdict = tuple[pd.Series, str, "pd.Series | str"]
Rule = Callable[[pd.DataFrame, float], Verdict]


def window_days(action_source: str) -> int:
    """How old an event may be when sent: 7 days, 62 for physical_store."""
    return WINDOW_DAYS.get(action_source, DEFAULT_WINDOW_DAYS)


def _event_name(f: pd.DataFrame, now: float) -> Verdict:
    return f["event_name"].eq("") & f["stage"].eq(""), "event_name", "event_name is empty"


def _stage(f: pd.DataFrame, now: float) -> Verdict:
    message = "stage " + _quoted(f["stage"]) + " has no event name in this source's stage_map"
    return f["event_name"].eq(""), "stage", message


def _action_source(f: pd.DataFrame, now: float) -> Verdict:
    message = "action_source " + _quoted(f["action_source"]) + " is not one of " + ", ".join(sorted(ACTION_SOURCES))
    return ~f["action_source"].isin(ACTION_SOURCES), "action_source", message


def _event_time(f: pd.DataFrame, now: float) -> Verdict:
    message = ("event_time " + _quoted(f["event_time_text"]) + " is not a date and time "
               "(use ISO 8601 such as 2026-11-20T14:30:00+01:00, or Unix seconds)")
    message = message.where(f["event_time_text"].ne(""), "event_time is empty")
    return f["event_time"].isna(), "event_time", message


def _future(f: pd.DataFrame, now: float) -> Verdict:
    message = "event_time " + _iso(f["event_time"]) + " is in the future"
    return f["event_time"] > now, "event_time", message


def _too_old(f: pd.DataFrame, now: float) -> Verdict:
    window = f["action_source"].map(window_days)
    age_days = (now - f["event_time"]) / 86400
    message = ("event_time " + _iso(f["event_time"]) + " is " + age_days.round(1).astype(str)
               + " days old; Meta takes " + f["action_source"] + " events up to "
               + window.astype(str) + " days old")
    # A cancelled conversion is never sent itself: only its refund's time matters.
    return (age_days > window) & f["cancelled_at_text"].eq(""), "event_time", message


def _before_creation(f: pd.DataFrame, now: float) -> Verdict:
    message = ("the stage time " + _iso(f["event_time"]) + " is before the lead was created ("
               + _iso(f["lead_created_at"]) + ")")
    return f["event_time"] < f["lead_created_at"], "event_time", message


def _cancelled_at(f: pd.DataFrame, now: float) -> Verdict:
    message = "cancelled_at " + _quoted(f["cancelled_at_text"]) + " is not a date and time"
    return f["cancelled_at_text"].ne("") & f["cancelled_at"].isna(), "cancelled_at", message


def _lead_id(f: pd.DataFrame, now: float) -> Verdict:
    message = ("lead_id " + _quoted(f["lead_id"]) + " is not a Meta lead id (15 to 17 digits)").where(
        f["lead_id"].ne(""), "lead_id is empty: Conversion Leads events need Meta's lead id")
    return f["lead_required"] & ~f["lead_id"].str.fullmatch(r"\d{15,17}"), "lead_id", message


def _value(f: pd.DataFrame, now: float) -> Verdict:
    message = "value " + _quoted(f["value_text"]) + " is not a number"
    return f["value_text"].ne("") & f["value"].isna(), "value", message


def _negative(f: pd.DataFrame, now: float) -> Verdict:
    return f["value"] < 0, "value", "value " + f["value_text"] + " is negative"


def _currency(f: pd.DataFrame, now: float) -> Verdict:
    bad = f["currency"].ne("") & ~f["currency"].isin(currency_codes())
    return bad, "currency", "currency " + _quoted(f["currency"]) + " is not an ISO 4217 code such as USD or EUR"


def _purchase(f: pd.DataFrame, now: float) -> Verdict:
    no_value, no_currency = f["value"].isna(), f["currency"].eq("")
    missing = pd.Series("value and currency", index=f.index).where(no_value & no_currency,
                                                                   no_value.map({True: "value", False: "currency"}))
    column = no_value.map({True: "value", False: "currency"})
    bad = f["event_name"].eq("Purchase") & (no_value | no_currency)
    return bad, column, "a Purchase needs value and currency (missing: " + missing + ")"


def _no_match_key(f: pd.DataFrame, now: float) -> Verdict:
    dropped = ("; dropped as invalid: " + (f["em_dropped"].map({True: "email ", False: ""})
               + f["ph_dropped"].map({True: "phone", False: ""})).str.strip())
    message = "no customer information to match on (email, phone, external_id, lead_id or name)"
    message = message + dropped.where(f["em_dropped"] | f["ph_dropped"], "")
    return ~f[list(IDENTIFYING)].ne("").any(axis=1), "email", message


def _too_little(f: pd.DataFrame, now: float) -> Verdict:
    present = f[list(IDENTIFYING) + ["country"]].ne("")
    too_little = pd.Series(False, index=f.index)
    for allowed in TOO_LITTLE:
        outside = [k for k in present.columns if k not in allowed]
        too_little |= ~present[outside].any(axis=1)
    message = ("too little customer information for Meta: add an email, phone, external_id or lead_id "
               "(city, state, zip, country, gender, birth date or one name alone are not enough)")
    return too_little, "email", message


RULES: tuple[tuple[str, Rule], ...] = (
    ("missing_event_name", _event_name),
    ("unknown_stage", _stage),
    ("bad_action_source", _action_source),
    ("bad_event_time", _event_time),
    ("future_event_time", _future),
    ("too_old", _too_old),
    ("stage_before_creation", _before_creation),
    ("bad_cancelled_at", _cancelled_at),
    ("bad_lead_id", _lead_id),
    ("bad_value", _value),
    ("negative_value", _negative),
    ("bad_currency", _currency),
    ("purchase_without_value", _purchase),
    ("no_match_key", _no_match_key),
    ("too_little_customer_info", _too_little),
)
REASONS: tuple[str, ...] = ("malformed_row", "bad_encoding") + tuple(code for code, _ in RULES)


def refusals(frame: pd.DataFrame, now: float) -> pd.DataFrame:
    """Rows to refuse: one row each (index = the row's line), with reason, column and message."""
    reason = pd.Series("", index=frame.index, dtype=object)
    column = reason.copy()
    message = reason.copy()
    for code, rule in RULES:
        open_rows = reason.eq("")
        if not open_rows.any():
            break
        mask, col, text = rule(frame[open_rows], now)
        hit = mask[mask].index
        reason[hit] = code
        column[hit] = col[hit] if isinstance(col, pd.Series) else col
        message[hit] = text[hit] if isinstance(text, pd.Series) else text
    refused = reason.ne("")
    return pd.DataFrame({"reason": reason[refused], "column": column[refused], "message": message[refused]})


@cache
def currency_codes() -> frozenset[str]:
    """Active ISO 4217 codes."""
    return frozenset(c.alpha_3 for c in pycountry.currencies)


def _quoted(values: pd.Series) -> pd.Series:
    return "'" + values.astype(str).str.slice(0, 60) + "'"


def _iso(seconds: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(seconds, unit="s", utc=True, errors="coerce")
    return stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ").fillna("?")
