"""The validation rules give exactly the verdicts of the column-wise rules they replaced.

The rules before issue 6 (throughput) are kept here verbatim as the reference: each built its
message for every row it would refuse, with pandas operations over the whole frame, and the
verdicts were set by label. The rules now test with numpy masks and explain only the rows they
refuse; both are compared on hypothesis frames.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_fast_paths import _parsed_frame
from uploader.settings import ACTION_SOURCES
from uploader.validation import rules
from uploader.validation.rules import DEFAULT_WINDOW_DAYS, IDENTIFYING, TOO_LITTLE

PROPS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _quoted(values: pd.Series) -> pd.Series:
    return "'" + values.astype(str).str.slice(0, 60) + "'"


def _iso(seconds: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(seconds, unit="s", utc=True, errors="coerce")
    return stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ").fillna("?")


Verdict = tuple[pd.Series, str, "pd.Series | str"]
Rule = Callable[[pd.DataFrame, float], Verdict]


def window_days(action_source: str) -> int:
    """How old an event may be when sent: 7 days, 62 for physical_store."""
    return rules.WINDOW_DAYS.get(action_source, DEFAULT_WINDOW_DAYS)


def _event_name(f: pd.DataFrame, now: float) -> Verdict:
    return f["event_name"].eq("") & f["stage"].eq(""), "event_name", "event_name is empty"


def _stage(f: pd.DataFrame, now: float) -> Verdict:
    bad = f["event_name"].eq("")
    return bad, "stage", "stage " + _quoted(f.loc[bad, "stage"]) + " has no event name in this source's stage_map"


def _action_source(f: pd.DataFrame, now: float) -> Verdict:
    bad = ~f["action_source"].isin(ACTION_SOURCES)
    message = "action_source " + _quoted(f.loc[bad, "action_source"]) + " is not one of " + ", ".join(sorted(ACTION_SOURCES))
    return bad, "action_source", message


def _event_time(f: pd.DataFrame, now: float) -> Verdict:
    bad = f["event_time"].isna()
    text = f.loc[bad, "event_time_text"]
    message = ("event_time " + _quoted(text) + " is not a date and time "
               "(use ISO 8601 such as 2026-11-20T14:30:00+01:00, or Unix seconds)")
    return bad, "event_time", message.where(text.ne(""), "event_time is empty")


def _future(f: pd.DataFrame, now: float) -> Verdict:
    bad = f["event_time"] > now
    return bad, "event_time", "event_time " + _iso(f.loc[bad, "event_time"]) + " is in the future"


def _too_old(f: pd.DataFrame, now: float) -> Verdict:
    window = f["action_source"].map(window_days)
    age_days = (now - f["event_time"]) / 86400
    # A cancelled conversion is never sent itself: only its refund's time matters.
    bad = (age_days > window) & f["cancelled_at_text"].eq("")
    message = ("event_time " + _iso(f.loc[bad, "event_time"]) + " is " + age_days[bad].round(1).astype(str)
               + " days old; Meta takes " + f.loc[bad, "action_source"] + " events up to "
               + window[bad].astype(str) + " days old")
    return bad, "event_time", message


def _before_creation(f: pd.DataFrame, now: float) -> Verdict:
    bad = f["event_time"] < f["lead_created_at"]
    message = ("the stage time " + _iso(f.loc[bad, "event_time"]) + " is before the lead was created ("
               + _iso(f.loc[bad, "lead_created_at"]) + ")")
    return bad, "event_time", message


def _cancelled_at(f: pd.DataFrame, now: float) -> Verdict:
    bad = f["cancelled_at_text"].ne("") & f["cancelled_at"].isna()
    return bad, "cancelled_at", "cancelled_at " + _quoted(f.loc[bad, "cancelled_at_text"]) + " is not a date and time"


def _lead_id(f: pd.DataFrame, now: float) -> Verdict:
    bad = f["lead_required"] & ~f["lead_id"].str.fullmatch(r"\d{15,17}")
    lead_id = f.loc[bad, "lead_id"]
    message = ("lead_id " + _quoted(lead_id) + " is not a Meta lead id (15 to 17 digits)").where(
        lead_id.ne(""), "lead_id is empty: Conversion Leads events need Meta's lead id")
    return bad, "lead_id", message


def _value(f: pd.DataFrame, now: float) -> Verdict:
    bad = f["value_text"].ne("") & f["value"].isna()
    return bad, "value", "value " + _quoted(f.loc[bad, "value_text"]) + " is not a number"


def _negative(f: pd.DataFrame, now: float) -> Verdict:
    bad = f["value"] < 0
    return bad, "value", "value " + f.loc[bad, "value_text"] + " is negative"


def _currency(f: pd.DataFrame, now: float) -> Verdict:
    bad = f["currency"].ne("") & ~f["currency"].isin(rules.currency_codes())
    return bad, "currency", "currency " + _quoted(f.loc[bad, "currency"]) + " is not an ISO 4217 code such as USD or EUR"


def _purchase(f: pd.DataFrame, now: float) -> Verdict:
    no_value, no_currency = f["value"].isna(), f["currency"].eq("")
    bad = f["event_name"].eq("Purchase") & (no_value | no_currency)
    no_value, no_currency = no_value[bad], no_currency[bad]
    column = no_value.map({True: "value", False: "currency"})
    missing = pd.Series("value and currency", index=column.index).where(no_value & no_currency, column)
    return bad, column, "a Purchase needs value and currency (missing: " + missing + ")"


def _no_match_key(f: pd.DataFrame, now: float) -> Verdict:
    bad = ~f[list(IDENTIFYING)].ne("").any(axis=1)
    em_dropped, ph_dropped = f.loc[bad, "em_dropped"], f.loc[bad, "ph_dropped"]
    dropped = ("; dropped as invalid: " + (em_dropped.map({True: "email ", False: ""})
               + ph_dropped.map({True: "phone", False: ""})).str.strip())
    message = "no customer information to match on (email, phone, external_id, lead_id or name)"
    message = message + dropped.where(em_dropped | ph_dropped, "")
    return bad, "email", message


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


def refusals(frame: pd.DataFrame, now: float) -> pd.DataFrame:
    reason = pd.Series("", index=frame.index, dtype=object)
    column = reason.copy()
    message = reason.copy()
    open_rows = pd.Series(True, index=frame.index)
    for code, rule in RULES:
        if not open_rows.any():
            break
        # Every rule looks at each row on its own, so it can see the whole frame (no copy of the
        # open rows per rule); only the rows still open take its verdict.
        mask, col, text = rule(frame, now)
        mask = mask & open_rows
        hit = mask[mask].index
        open_rows &= ~mask
        reason[hit] = code
        column[hit] = col[hit] if isinstance(col, pd.Series) else col
        message[hit] = text[hit] if isinstance(text, pd.Series) else text
    refused = reason.ne("")
    return pd.DataFrame({"reason": reason[refused], "column": column[refused], "message": message[refused]})


NOW = 1_800_000_000


@PROPS
@given(st.lists(st.tuples(*[st.integers(0, 4095)] * 13), min_size=1, max_size=60))
def test_refusals_equal_the_column_wise_rules(rows: list[tuple]) -> None:
    frame = _parsed_frame(rows)
    pd.testing.assert_frame_equal(rules.refusals(frame, NOW), refusals(frame, NOW))


@PROPS
@given(st.lists(st.tuples(*[st.integers(0, 4095)] * 13), min_size=1, max_size=60), st.booleans())
def test_refusals_equal_the_column_wise_rules_on_engine_dtypes(rows: list[tuple], lead_required: bool) -> None:
    """Object text columns and bool flags, as the mapping engine makes them; a line index."""
    frame = _parsed_frame(rows)
    for column in frame.columns:
        if frame[column].dtype != bool and frame[column].dtype.kind not in "fi":
            frame[column] = frame[column].astype(object)
    frame["lead_required"] = lead_required
    frame["action_source"] = [sorted(ACTION_SOURCES)[r[2] % len(ACTION_SOURCES)] for r in rows]
    frame.index = pd.Index([2 * i + 5 for i in range(len(frame))], name="line")
    pd.testing.assert_frame_equal(rules.refusals(frame, NOW), refusals(frame, NOW))


def test_no_rows() -> None:
    frame = _parsed_frame([(0,) * 13]).iloc[:0]
    pd.testing.assert_frame_equal(rules.refusals(frame, NOW), refusals(frame, NOW))
