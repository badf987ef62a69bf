"""The rules, one pair of functions each, applied to a whole chunk at once.

Each rule tests every row (a numpy mask of the rows it refuses) and explains the rows it
refuses: the column to fix and a plain-language message. A row is refused for the first rule
it breaks; the order below is the order a person would fix things in. Messages are built only
for the rows a rule refuses, so a rule nothing breaks costs one mask.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

import numpy as np
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
_LEAD_ID_RE = re.compile(r"\d{15,17}")

Test = Callable[[pd.DataFrame, float], np.ndarray]
# (column, message) for the refused rows: each one str for all of them, or a Series per row.
Explanation = tuple["pd.Series | str", "pd.Series | str"]
Explain = Callable[[pd.DataFrame, float], Explanation]


def window_days(action_source: str) -> int:
    """How old an event may be when sent: 7 days, 62 for physical_store."""
    return WINDOW_DAYS.get(action_source, DEFAULT_WINDOW_DAYS)


def _text(f: pd.DataFrame, column: str) -> np.ndarray:
    return f[column].to_numpy(dtype=object)


def _number(f: pd.DataFrame, column: str) -> np.ndarray:
    return f[column].to_numpy(dtype="float64")


def _event_name(f: pd.DataFrame, now: float) -> np.ndarray:
    return (_text(f, "event_name") == "") & (_text(f, "stage") == "")


def _event_name_why(rows: pd.DataFrame, now: float) -> Explanation:
    return "event_name", "event_name is empty"


def _stage(f: pd.DataFrame, now: float) -> np.ndarray:
    return _text(f, "event_name") == ""


def _stage_why(rows: pd.DataFrame, now: float) -> Explanation:
    return "stage", "stage " + _quoted(rows["stage"]) + " has no event name in this source's stage_map"


def _action_source(f: pd.DataFrame, now: float) -> np.ndarray:
    return ~f["action_source"].isin(ACTION_SOURCES).to_numpy(dtype=bool)


def _action_source_why(rows: pd.DataFrame, now: float) -> Explanation:
    sources = ", ".join(sorted(ACTION_SOURCES))
    return "action_source", "action_source " + _quoted(rows["action_source"]) + " is not one of " + sources


def _event_time(f: pd.DataFrame, now: float) -> np.ndarray:
    return np.isnan(_number(f, "event_time"))


def _event_time_why(rows: pd.DataFrame, now: float) -> Explanation:
    text = rows["event_time_text"]
    message = ("event_time " + _quoted(text) + " is not a date and time "
               "(use ISO 8601 such as 2026-11-20T14:30:00+01:00, or Unix seconds)")
    return "event_time", message.where(text.ne(""), "event_time is empty")


def _future(f: pd.DataFrame, now: float) -> np.ndarray:
    return _number(f, "event_time") > now


def _future_why(rows: pd.DataFrame, now: float) -> Explanation:
    return "event_time", "event_time " + _iso(rows["event_time"]) + " is in the future"


def _windows(action_sources: np.ndarray) -> np.ndarray:
    """``window_days`` of each row."""
    window = np.full(len(action_sources), DEFAULT_WINDOW_DAYS, dtype=np.int64)
    for source, days in WINDOW_DAYS.items():
        window[action_sources == source] = days
    return window


def _too_old(f: pd.DataFrame, now: float) -> np.ndarray:
    age_days = (now - _number(f, "event_time")) / 86400
    # A cancelled conversion is never sent itself: only its refund's time matters.
    return (age_days > _windows(_text(f, "action_source"))) & (_text(f, "cancelled_at_text") == "")


def _too_old_why(rows: pd.DataFrame, now: float) -> Explanation:
    window = rows["action_source"].map(window_days)
    age_days = (now - rows["event_time"]) / 86400
    message = ("event_time " + _iso(rows["event_time"]) + " is " + age_days.round(1).astype(str)
               + " days old; Meta takes " + rows["action_source"] + " events up to "
               + window.astype(str) + " days old")
    return "event_time", message


def _before_creation(f: pd.DataFrame, now: float) -> np.ndarray:
    return _number(f, "event_time") < _number(f, "lead_created_at")


def _before_creation_why(rows: pd.DataFrame, now: float) -> Explanation:
    message = ("the stage time " + _iso(rows["event_time"]) + " is before the lead was created ("
               + _iso(rows["lead_created_at"]) + ")")
    return "event_time", message


def _cancelled_at(f: pd.DataFrame, now: float) -> np.ndarray:
    return (_text(f, "cancelled_at_text") != "") & np.isnan(_number(f, "cancelled_at"))


def _cancelled_at_why(rows: pd.DataFrame, now: float) -> Explanation:
    return "cancelled_at", "cancelled_at " + _quoted(rows["cancelled_at_text"]) + " is not a date and time"


def _lead_id(f: pd.DataFrame, now: float) -> np.ndarray:
    bad = f["lead_required"].to_numpy(dtype=bool).copy()
    if bad.any():  # the lead id is looked at only where one is required
        bad[bad] = [_LEAD_ID_RE.fullmatch(lead_id) is None for lead_id in _text(f, "lead_id")[bad]]
    return bad


def _lead_id_why(rows: pd.DataFrame, now: float) -> Explanation:
    lead_id = rows["lead_id"]
    message = ("lead_id " + _quoted(lead_id) + " is not a Meta lead id (15 to 17 digits)").where(
        lead_id.ne(""), "lead_id is empty: Conversion Leads events need Meta's lead id")
    return "lead_id", message


def _value(f: pd.DataFrame, now: float) -> np.ndarray:
    return (_text(f, "value_text") != "") & np.isnan(_number(f, "value"))


def _value_why(rows: pd.DataFrame, now: float) -> Explanation:
    text = rows["value_text"]
    # "10,50" can only be a decimal comma (thousands take three digits): say which setting reads it.
    comma = text.str.fullmatch(r"\s*-?[0-9.]*[0-9],[0-9]{1,2}\s*")
    hint = np.where(comma, ' (a decimal comma? set decimal = "," for this source)', "")
    return "value", "value " + _quoted(text) + " is not a number" + hint


def _negative(f: pd.DataFrame, now: float) -> np.ndarray:
    return _number(f, "value") < 0


def _negative_why(rows: pd.DataFrame, now: float) -> Explanation:
    return "value", "value " + rows["value_text"] + " is negative"


def _currency(f: pd.DataFrame, now: float) -> np.ndarray:
    return (_text(f, "currency") != "") & ~f["currency"].isin(currency_codes()).to_numpy(dtype=bool)


def _currency_why(rows: pd.DataFrame, now: float) -> Explanation:
    return "currency", "currency " + _quoted(rows["currency"]) + " is not an ISO 4217 code such as USD or EUR"


def _purchase(f: pd.DataFrame, now: float) -> np.ndarray:
    no_value, no_currency = np.isnan(_number(f, "value")), _text(f, "currency") == ""
    return (_text(f, "event_name") == "Purchase") & (no_value | no_currency)


def _purchase_why(rows: pd.DataFrame, now: float) -> Explanation:
    no_value, no_currency = rows["value"].isna(), rows["currency"].eq("")
    column = no_value.map({True: "value", False: "currency"})
    missing = pd.Series("value and currency", index=column.index).where(no_value & no_currency, column)
    return column, "a Purchase needs value and currency (missing: " + missing + ")"


def _present(f: pd.DataFrame, keys: tuple[str, ...]) -> np.ndarray:
    """Rows x keys: where each key holds a value."""
    if not keys:
        return np.zeros((len(f), 0), dtype=bool)
    return np.column_stack([_text(f, key) != "" for key in keys])


def _no_match_key(f: pd.DataFrame, now: float) -> np.ndarray:
    return np.logical_not(_present(f, IDENTIFYING).any(axis=1))


def _no_match_key_why(rows: pd.DataFrame, now: float) -> Explanation:
    em_dropped, ph_dropped = rows["em_dropped"], rows["ph_dropped"]
    dropped = ("; dropped as invalid: " + (em_dropped.map({True: "email ", False: ""})
               + ph_dropped.map({True: "phone", False: ""})).str.strip())
    message = "no customer information to match on (email, phone, external_id, lead_id or name)"
    return "email", message + dropped.where(em_dropped | ph_dropped, "")


def _too_little(f: pd.DataFrame, now: float) -> np.ndarray:
    keys = IDENTIFYING + ("country",)
    present = _present(f, keys)
    too_little = np.zeros(len(f), dtype=bool)
    for allowed in TOO_LITTLE:
        outside = [i for i, key in enumerate(keys) if key not in allowed]
        too_little |= ~present[:, outside].any(axis=1)
    return too_little


def _too_little_why(rows: pd.DataFrame, now: float) -> Explanation:
    message = ("too little customer information for Meta: add an email, phone, external_id or lead_id "
               "(city, state, zip, country, gender, birth date or one name alone are not enough)")
    return "email", message


RULES: tuple[tuple[str, Test, Explain], ...] = (
    ("missing_event_name", _event_name, _event_name_why),
    ("unknown_stage", _stage, _stage_why),
    ("bad_action_source", _action_source, _action_source_why),
    ("bad_event_time", _event_time, _event_time_why),
    ("future_event_time", _future, _future_why),
    ("too_old", _too_old, _too_old_why),
    ("stage_before_creation", _before_creation, _before_creation_why),
    ("bad_cancelled_at", _cancelled_at, _cancelled_at_why),
    ("bad_lead_id", _lead_id, _lead_id_why),
    ("bad_value", _value, _value_why),
    ("negative_value", _negative, _negative_why),
    ("bad_currency", _currency, _currency_why),
    ("purchase_without_value", _purchase, _purchase_why),
    ("no_match_key", _no_match_key, _no_match_key_why),
    ("too_little_customer_info", _too_little, _too_little_why),
)
REASONS: tuple[str, ...] = ("malformed_row", "bad_encoding") + tuple(code for code, _, _ in RULES)


def refusals(frame: pd.DataFrame, now: float) -> pd.DataFrame:
    """Rows to refuse: one row each (index = the row's line), with reason, column and message."""
    verdicts = {name: np.full(len(frame), "", dtype=object) for name in ("reason", "column", "message")}
    open_rows = np.ones(len(frame), dtype=bool)
    for code, test, explain in RULES:
        if not open_rows.any():
            break
        # Every rule looks at each row on its own, so it can test the whole frame (no copy of the
        # open rows per rule); only the rows still open take its verdict.
        hit = test(frame, now) & open_rows
        if not hit.any():
            continue
        open_rows &= ~hit
        column, message = explain(frame[hit], now)
        for name, value in (("reason", code), ("column", column), ("message", message)):
            verdicts[name][hit] = value.to_numpy(dtype=object) if isinstance(value, pd.Series) else value
    refused = ~open_rows
    return pd.DataFrame({name: values[refused] for name, values in verdicts.items()},
                        index=frame.index[refused], dtype=object)


@cache
def currency_codes() -> frozenset[str]:
    """Active ISO 4217 codes."""
    return frozenset(c.alpha_3 for c in pycountry.currencies)


def _quoted(values: pd.Series) -> pd.Series:
    return "'" + values.astype(str).str.slice(0, 60) + "'"


def _iso(seconds: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(seconds, unit="s", utc=True, errors="coerce")
    return stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ").fillna("?")
