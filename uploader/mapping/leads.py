"""Lead-quality and privacy fields, column-wise: consent gating, Limited Data Use,
opt_out, Conversion Leads (CRM stages) and cancellations. Pure functions over a chunk.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd

from uploader.mapping.columns import each_distinct
from uploader.mapping.fields import event_times
from uploader.policies import ConsentPolicy, ConversionLeads, LduPolicy
from uploader.settings import SourceSettings

GRANTED = frozenset({"yes", "y", "true", "t", "1", "granted", "opt_in", "opt-in", "optin", "accepted",
                     "consented", "allow", "allowed"})
DENIED = frozenset({"no", "n", "false", "f", "0", "denied", "opt_out", "opt-out", "optout", "declined",
                    "withdrawn", "revoked", "refused"})
TRUE = frozenset({"yes", "y", "true", "t", "1", "x"})
# Meta documents 1 = US and 1000 = California; for every other place 0/0 asks Meta to geolocate.
LDU_US, LDU_CALIFORNIA, LDU_GEOLOCATE = 1, 1000, 0
LEAD_ID = r"\d{15,17}"
_LEAD_ID_RE = re.compile(LEAD_ID)


def consent_gate(frame: pd.DataFrame, policy: ConsentPolicy) -> tuple[pd.DataFrame, Counter[str]]:
    """Drop rows that may not be sent, before anything about them is hashed or stored.

    Returns the rows that may go on and the count of the others by reason
    (``consent_denied``: the row says no; ``consent_missing``: ``require`` and no yes).
    """
    answer = each_distinct(frame["consent"], _consent_answer)
    denied = answer == "denied"
    missing = ~denied & (answer != "granted") if policy.policy == "require" else np.zeros(len(frame), dtype=bool)
    withheld: Counter[str] = Counter()
    if denied.any():
        withheld["consent_denied"] = int(denied.sum())
    if missing.any():
        withheld["consent_missing"] = int(missing.sum())
    return (frame[~(denied | missing)] if withheld else frame), withheld


def _consent_answer(text: object) -> str:
    """"granted", "denied" or "" (anything else) for one consent cell."""
    answer = text.strip().lower() if isinstance(text, str) else ""
    return "denied" if answer in DENIED else "granted" if answer in GRANTED else ""


def flags(values: pd.Series) -> pd.Series:
    """True where a yes/no column says yes."""
    says_yes = each_distinct(values, lambda text: isinstance(text, str) and text.strip().lower() in TRUE, dtype=bool)
    return pd.Series(says_yes, index=values.index, name=values.name, dtype=bool)


def ldu_fields(country: pd.Series, state: pd.Series, policy: LduPolicy) -> pd.DataFrame:
    """Per row: whether to send ``data_processing_options: ["LDU"]``, and its country/state codes.

    ``by_region`` flags rows in the configured US states, and rows whose place is unknown
    (Meta then geolocates them): when in doubt, the data is limited rather than not.
    """
    codes, states = country.to_numpy(dtype=object), state.to_numpy(dtype=object)
    us = codes == "us"
    california = us & (states == "ca")
    if policy.mode == "always":
        on = np.ones(len(codes), dtype=bool)
    elif policy.mode == "by_region":
        unknown = (codes == "") | (us & (states == ""))
        on = (us & state.isin(policy.states).to_numpy(dtype=bool)) | unknown
    else:
        on = np.zeros(len(codes), dtype=bool)
    return pd.DataFrame({
        "ldu": on,
        "ldu_country": np.where(on & california, LDU_US, LDU_GEOLOCATE),
        "ldu_state": np.where(on & california, LDU_CALIFORNIA, LDU_GEOLOCATE),
    }, index=country.index)


def conversion_lead_fields(frame: pd.DataFrame, leads: ConversionLeads | None,
                           event_names: pd.Series) -> pd.DataFrame:
    """custom_data.event_source / lead_event_source, and each event's place on the ladder."""
    on = leads is not None
    ladder = {name: rank for rank, name in enumerate(leads.ladder, start=1)} if leads else {}
    return pd.DataFrame({
        "lead_required": on,
        "event_source": "crm" if on else "",
        "lead_event_source": leads.crm_name if leads else "",
        "stage_rank": event_names.map(ladder).fillna(0).astype("int64") if ladder else np.zeros(len(frame), np.int64),
    }, index=frame.index)


def lifecycle_times(frame: pd.DataFrame, source: SourceSettings) -> pd.DataFrame:
    """When the lead was created and when the conversion was cancelled, in Unix seconds."""
    return pd.DataFrame({
        "lead_created_at": event_times(frame["lead_created_at"], source.timezone),
        "cancelled_at_text": frame["cancelled_at"],
        "cancelled_at": event_times(frame["cancelled_at"], source.timezone),
    }, index=frame.index)


def lead_ids(values: pd.Series, required: bool) -> tuple[pd.Series, pd.Series]:
    """Meta's lead ids (never hashed) and, outside Conversion Leads mode, which were dropped
    as invalid (a bad lead_id would make Meta refuse the whole batch)."""
    if required:
        return values, pd.Series(False, index=values.index)
    texts = values.to_numpy(dtype=object)
    valid = each_distinct(values, lambda text: _LEAD_ID_RE.fullmatch(text) is not None, dtype=bool)
    return (pd.Series(np.where(valid, texts, ""), index=values.index, name=values.name, dtype=object),
            pd.Series((texts != "") & ~valid, index=values.index))


def refunds(events: pd.DataFrame, name: str) -> pd.DataFrame:
    """The refund events for cancelled conversions with a value: positive value, the
    cancellation time, a new event name; the original's key kept to check it was sent."""
    has_value = events["refund_value"].notna() | events["value"].notna()
    out = events[has_value].copy()
    out["original_event_name"], out["original_event_id"] = out["event_name"], out["event_id"]
    out["value"] = out["refund_value"].fillna(out["value"]).abs()
    out["event_name"] = name
    out["event_time"] = out["cancelled_at"]
    out["event_id"] = ""
    return out
