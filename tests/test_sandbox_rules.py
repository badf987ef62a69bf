"""The sandbox's fast validation answers exactly as the plain rules it replaced (issue 6).

``uploader.sandbox.rules`` checks the SHA-256 digests of many events in one step and takes
shortcuts for the common event shape; the reference below is the event-by-event code it
replaced, kept as it was. Both must give the same answer (the same accepted events, or the same
error for the same event) on tables of tricky events and on hypothesis data. No timing here.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Collection
from typing import Any

import pycountry
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uploader.sandbox import rules
from uploader.sandbox.rules import (
    ACTION_SOURCES, EVENT_KEYS, FUTURE_SKEW_SECONDS, HASHED_KEYS, MAX_AGE_PHYSICAL_STORE_SECONDS,
    MAX_AGE_SECONDS, REQUIRED_EVENT_KEYS, USER_DATA_KEYS, WEAK_USER_DATA_SETS, GraphError, invalid,
)
from uploader.sandbox.server import parse_body

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = 1_750_000_000
DAY = 86400
LEAD_ID = "1234567890123456"


# --- the reference: the event-by-event rules as they were before the fast path -----------------


class _Problem(Exception):
    def __init__(self, subcode: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.subcode, self.title, self.detail = subcode, title, detail


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def reference_validate(body: dict[str, Any], now: float,
                       reject_lead_ids: Collection[str] = frozenset()) -> list[Any] | GraphError:
    try:
        events = rules._check_request_shape(body)
    except GraphError as error:
        return error
    for index, event in enumerate(events):
        try:
            _ref_event(event, now, reject_lead_ids)
        except _Problem as problem:
            return invalid(problem.subcode, problem.title, f"Event {index}: {problem.detail}")
    return events


def _ref_event(event: Any, now: float, reject_lead_ids: Collection[str]) -> None:
    if not isinstance(event, dict):
        raise _Problem(rules.SUB_MISSING_FIELD, "Invalid event", "each event must be an object")
    unknown = sorted(set(event) - EVENT_KEYS)
    if unknown:
        raise _Problem(rules.SUB_UNKNOWN_KEY, "Unknown parameter", f"unknown field {unknown[0]!r}")
    for key in REQUIRED_EVENT_KEYS:
        if key not in event:
            raise _Problem(rules.SUB_MISSING_FIELD, "Missing parameter", f"{key} is required")
    _ref_event_types(event)
    _ref_event_time(event["event_time"], event["action_source"], now)
    user_data = event["user_data"]
    if event["action_source"] == "website" and (
            not event.get("event_source_url") or not user_data.get("client_user_agent")):
        raise _Problem(rules.SUB_WEBSITE_FIELDS, "Missing website parameters",
                       "website events need event_source_url and user_data.client_user_agent")
    _ref_user_data(user_data, reject_lead_ids)
    _ref_custom_data(event["event_name"], event.get("custom_data"))


def _ref_event_types(event: dict[str, Any]) -> None:
    for key, value in event.items():
        types, wording = rules._FIELD_TYPES[key]
        wrong_bool = isinstance(value, bool) and bool not in types
        if not isinstance(value, types) or wrong_bool:
            raise _Problem(rules.SUB_BAD_VALUE, "Invalid parameter", f"{key} must be {wording}")
    if not event["event_name"]:
        raise _Problem(rules.SUB_BAD_VALUE, "Invalid parameter", "event_name must not be empty")
    if event["action_source"] not in ACTION_SOURCES:
        raise _Problem(rules.SUB_BAD_VALUE, "Invalid action_source",
                       f"action_source must be one of {', '.join(sorted(ACTION_SOURCES))}")
    if not all(isinstance(option, str) for option in event.get("data_processing_options", [])):
        raise _Problem(rules.SUB_BAD_VALUE, "Invalid parameter",
                       "data_processing_options must be an array of strings")


def _ref_event_time(event_time: int, action_source: str, now: float) -> None:
    max_age = MAX_AGE_PHYSICAL_STORE_SECONDS if action_source == "physical_store" else MAX_AGE_SECONDS
    if event_time < now - max_age:
        raise _Problem(rules.SUB_TOO_OLD, "event_time too old",
                       f"event_time is more than {max_age // 86400} days in the past")
    if event_time > now + FUTURE_SKEW_SECONDS:
        raise _Problem(rules.SUB_IN_FUTURE, "event_time in the future", "event_time is in the future")


def _ref_user_data(user_data: dict[str, Any], reject_lead_ids: Collection[str]) -> None:
    unknown = sorted(set(user_data) - USER_DATA_KEYS)
    if unknown:
        raise _Problem(rules.SUB_UNKNOWN_KEY, "Unknown parameter", f"unknown field user_data.{unknown[0]}")
    for key, value in user_data.items():
        if key == "lead_id":
            _ref_lead_id(value, reject_lead_ids)
        elif key in HASHED_KEYS:
            for item in _ref_strings(key, value, allow_list=True):
                if not _SHA256_HEX.fullmatch(item):
                    raise _Problem(rules.SUB_UNHASHED, "Unhashed customer information",
                                   f"user_data.{key} must be hashed with SHA-256")
        else:
            _ref_strings(key, value, allow_list=key == "external_id")
    if any(set(user_data) <= weak for weak in WEAK_USER_DATA_SETS):
        raise _Problem(rules.SUB_TOO_LITTLE_INFO, "Not enough customer information",
                       "user_data does not hold enough customer information to match")


def _ref_strings(key: str, value: Any, allow_list: bool) -> list[Any]:
    values = value if allow_list and isinstance(value, list) else [value]
    if not values or not all(isinstance(item, str) and item for item in values):
        shape = "a non-empty string or array of strings" if allow_list else "a non-empty string"
        raise _Problem(rules.SUB_BAD_VALUE, "Invalid parameter", f"user_data.{key} must be {shape}")
    return values


def _ref_lead_id(value: Any, reject_lead_ids: Collection[str]) -> None:
    text = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not re.fullmatch(r"[0-9]{15,17}", text):
        raise _Problem(rules.SUB_BAD_LEAD, "Invalid lead_id",
                       "user_data.lead_id must be a Meta lead id of 15 to 17 digits")
    if text in reject_lead_ids:
        raise _Problem(rules.SUB_BAD_LEAD, "Invalid lead_id",
                       "user_data.lead_id does not match a lead of this page")


def _ref_amount(value: Any) -> bool:
    """The old check, kept apart from the rules it checks; a number beyond a double (which made
    the old math.isfinite raise) is refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int):  # JSON integers beyond the largest double, past its half ulp, overflow
        return 0 <= value < int(sys.float_info.max) + 2 ** 970
    return value == value and 0 <= value < float("inf")


def _ref_custom_data(event_name: str, custom_data: dict[str, Any] | None) -> None:
    custom_data = custom_data or {}
    if event_name == "Purchase" and not {"value", "currency"} <= set(custom_data):
        raise _Problem(rules.SUB_PURCHASE_FIELDS, "Missing purchase parameters",
                       "Purchase events need custom_data.value and custom_data.currency")
    if "value" in custom_data:
        if not _ref_amount(custom_data["value"]):
            raise _Problem(rules.SUB_BAD_AMOUNT, "Invalid value", "custom_data.value must be a number >= 0")
    if "currency" in custom_data:
        currency = custom_data["currency"]
        is_code = isinstance(currency, str) and len(currency) == 3
        if not is_code or pycountry.currencies.get(alpha_3=currency.upper()) is None:
            raise _Problem(rules.SUB_BAD_CURRENCY, "Invalid currency",
                           "custom_data.currency must be an ISO 4217 code such as USD")


# --- helpers ----------------------------------------------------------------------------------


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def crm_event(n: int, **overrides: Any) -> dict[str, Any]:
    """An event as the uploader sends it: hashed user data, sometimes a lead id."""
    user_data: dict[str, Any] = {key: digest(f"{key}{n % 7 if key in ('ct', 'st') else n}")
                                 for key in ("em", "ph", "fn", "ln", "ct", "st", "zp", "country",
                                             "external_id")}
    if n % 5 == 0:
        user_data["lead_id"] = str(10**15 + n)
    event: dict[str, Any] = {
        "event_name": "Purchase" if n % 2 else "Lead", "event_time": NOW - 3600 - n,
        "action_source": ("system_generated", "phone_call", "physical_store")[n % 3],
        "event_id": f"e-{n}", "user_data": user_data,
        "custom_data": {"value": 10.5 + n, "currency": "usd", "order_id": f"SO-{n}"},
    }
    event.update(overrides)
    return {key: value for key, value in event.items() if value is not None}


def same_answer(body: dict[str, Any], now: float = NOW,
                reject_lead_ids: Collection[str] = frozenset()) -> list[Any] | GraphError:
    """Both answers for ``body``; they must be equal (or both raise the same exception type)."""
    try:
        expected: Any = reference_validate(body, now, reject_lead_ids)
    except Exception as exc:  # noqa: BLE001 - a rule that crashes must crash the same way
        with pytest.raises(type(exc)):
            rules.validate_events_body(body, now, reject_lead_ids)
        return exc  # type: ignore[return-value]
    actual = rules.validate_events_body(body, now, reject_lead_ids)
    assert actual == expected
    return actual


# --- tables -----------------------------------------------------------------------------------


def test_a_batch_from_the_uploader_is_accepted_whole() -> None:
    events = [crm_event(n) for n in range(1000)]
    assert same_answer({"data": events}) == events


H = digest("x")
TRICKY_EVENTS = [
    {"user_data": {"em": H.upper()}},
    {"user_data": {"em": "A" * 64}},
    {"user_data": {"em": H[:63] + "A"}},
    {"user_data": {"em": "0" * 64}},
    {"user_data": {"em": H[:-1]}},
    {"user_data": {"em": H + "0"}},
    {"user_data": {"em": H[:32] + " " + H[33:]}},
    {"user_data": {"em": H[:63] + "g"}},
    {"user_data": {"em": H[:63] + "\u0660"}},  # an Arabic-Indic digit: a digit, not hex
    {"user_data": {"em": ""}},
    {"user_data": {"em": None}},
    {"user_data": {"em": 5}},
    {"user_data": {"em": [H, H]}},
    {"user_data": {"em": [H, H.upper()]}},
    {"user_data": {"em": []}},
    {"user_data": {"ph": [H, ""]}},
    {"user_data": {"em": f"{H} {H}"}},
    {"user_data": {"em": H, "ph": H[:63]}},
    {"user_data": {"external_id": "crm-42"}},
    {"user_data": {"external_id": ["crm-42", H]}},
    {"user_data": {"external_id": ["crm-42", ""]}},
    {"user_data": {"client_ip_address": "203.0.113.9", "em": H}},
    {"user_data": {"em": H, "client_ip_address": 1}},
    {"user_data": {"lead_id": LEAD_ID}},
    {"user_data": {"lead_id": int(LEAD_ID), "em": H}},
    {"user_data": {"lead_id": "123", "em": H.upper()}},
    {"user_data": {"em": H.upper(), "lead_id": "123"}},
    {"user_data": {"lead_id": True}},
    {"user_data": {"ct": H, "st": H, "zp": H, "country": H, "ge": H}},
    {"user_data": {"ct": H, "ge": "bad"}},
    {"user_data": {}},
    {"user_data": {"em": H, "emial": H}},
    {"user_data": {"emial": "bad", "em": "bad"}},
    {"event_time": NOW - 7 * DAY - 1},
    {"event_time": NOW - 7 * DAY},
    {"event_time": NOW - 62 * DAY, "action_source": "physical_store"},
    {"event_time": NOW - 62 * DAY - 1, "action_source": "physical_store"},
    {"event_time": NOW + 60},
    {"event_time": NOW + 61},
    {"event_time": True},
    {"event_time": float(NOW)},
    {"event_name": ""},
    {"event_name": None},
    {"action_source": "website"},
    {"action_source": "website", "event_source_url": "https://x.example",
     "user_data": {"em": H, "client_user_agent": "Mozilla/5.0"}},
    {"action_source": "crm"},
    {"opt_out": 1},
    {"opt_out": False},
    {"data_processing_options": []},
    {"data_processing_options": ["LDU", 1]},
    {"data_processing_options_country": True},
    {"evnt_id": "x", "event_name": ""},
    {"custom_data": None, "event_name": "Purchase"},
    {"custom_data": {}},
    {"custom_data": {"value": 10}, "event_name": "Purchase"},
    {"custom_data": {"value": True, "currency": "USD"}},
    {"custom_data": {"value": float("inf"), "currency": "USD"}},
    {"custom_data": {"value": -0.0, "currency": "USD"}},
    {"custom_data": {"value": 1, "currency": "usd"}},
    {"custom_data": {"value": 1, "currency": "uSd"}},
    {"custom_data": {"value": 1, "currency": "XXX"}},
    {"custom_data": {"value": 1, "currency": "ABC"}},
    {"custom_data": {"value": 1, "currency": "\u017fek"}},  # long s: upper() makes it "SEK"
    {"custom_data": {"value": 1, "currency": ["USD"]}},
    {"custom_data": {"value": 10**400, "currency": "USD"}},  # beyond a double: refused, not a crash
    {"custom_data": {"currency": "USD", "value": 1}, "user_data": {"em": "unhashed"}},
]


@pytest.mark.parametrize("overrides", TRICKY_EVENTS, ids=[str(i) for i in range(len(TRICKY_EVENTS))])
@pytest.mark.parametrize("where", [0, 1, 77, 149])
def test_tricky_events_get_the_same_answer(overrides: dict[str, Any], where: int) -> None:
    events = [crm_event(n) for n in range(150)]
    events[where] = crm_event(where, **overrides)
    same_answer({"data": events}, reject_lead_ids={LEAD_ID})


def test_the_first_of_several_bad_events_is_named() -> None:
    events = [crm_event(n) for n in range(200)]
    events[120] = crm_event(120, action_source="crm")
    events[130] = crm_event(130, user_data={"em": "john@example.com"})  # in another digest run
    events[60] = crm_event(60, user_data={"em": "JOHN"})
    error = same_answer({"data": events})
    assert isinstance(error, GraphError) and error.user_msg.startswith("Event 60: ")


def test_a_value_beyond_a_double_is_refused_after_earlier_bad_digests() -> None:
    events = [crm_event(n) for n in range(60)]
    events[20] = crm_event(20, custom_data={"value": 10**400, "currency": "USD"})
    error = same_answer({"data": events})
    assert isinstance(error, GraphError) and error.user_msg.startswith("Event 20: ")
    assert error.subcode == rules.SUB_BAD_AMOUNT
    events[10] = crm_event(10, user_data={"em": "john@example.com"})
    error = same_answer({"data": events})
    assert isinstance(error, GraphError) and error.user_msg.startswith("Event 10: ")


def test_not_objects_and_bad_shapes() -> None:
    for data in ([1], [None, crm_event(0)], [crm_event(0), []], [], "x", [crm_event(0)] * 1001):
        same_answer({"data": data})
    same_answer({"data": [crm_event(0)], "test_event_code": 5})


# --- hypothesis ---------------------------------------------------------------------------------

hex_digest = st.text("0123456789abcdef", min_size=64, max_size=64)
almost_digest = st.one_of(
    hex_digest.map(str.upper), st.text("0123456789abcdefA ", min_size=62, max_size=66),
    st.text(max_size=66), st.sampled_from(["", " ", H + " ", "\u0660" * 64]),
)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**64, 2**64),
                        st.floats(allow_nan=False), st.text(max_size=4))
user_value = st.one_of(
    hex_digest, hex_digest, almost_digest, json_scalar,
    st.lists(st.one_of(hex_digest, almost_digest, json_scalar), max_size=3),
    st.sampled_from([LEAD_ID, int(LEAD_ID), "12345", "1" * 17, "1" * 18]),
)
event_value = st.one_of(
    json_scalar, st.sampled_from(sorted(ACTION_SOURCES) + ["Purchase", "crm"]),
    st.integers(NOW - 63 * DAY, NOW + 120), st.just({}), st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.sampled_from(["value", "currency", "order_id"]),
                    st.one_of(json_scalar, st.sampled_from(["USD", "eur", "XYZ"])), max_size=3),
)
# (where, key, value); a value of None for a user_data or event key means: remove the key.
edit = st.one_of(
    st.tuples(st.just("user_data"), st.sampled_from(sorted(USER_DATA_KEYS) + ["emial"]), user_value),
    st.tuples(st.just("event"), st.sampled_from(sorted(EVENT_KEYS) + ["evnt_id"]), event_value),
    st.tuples(st.just("custom_data"), st.sampled_from(["value", "currency"]),
              st.one_of(json_scalar, st.sampled_from(["USD", "usd", "XYZ", "US"]))),
)


def edited(event: dict[str, Any], edits: list[tuple[str, str, Any]]) -> dict[str, Any]:
    for where, key, value in edits:
        target = event if where == "event" else event.get(where)
        if not isinstance(target, dict):
            continue
        if value is None and where != "custom_data":
            target.pop(key, None)
        else:
            target[key] = value
    return event


@PROPS
@given(st.lists(st.lists(edit, max_size=3), min_size=1, max_size=8),
       st.integers(0, 119), st.sets(st.sampled_from([LEAD_ID, "1" * 17]), max_size=1))
def test_edited_batches_get_the_same_answer(all_edits: list[list[tuple[str, str, Any]]], start: int,
                                            reject_lead_ids: set[str]) -> None:
    events = [crm_event(n) for n in range(120)]
    for offset, edits in enumerate(all_edits):
        index = (start + 17 * offset) % len(events)
        events[index] = edited(events[index], edits)
    same_answer({"data": events}, NOW, reject_lead_ids)


NEAR_MISSES = ["A" * 64, H[:63] + "A", "0" * 64, H[:63] + "\u0660", H[:63] + "\x00"]


@PROPS
@given(st.lists(st.one_of(hex_digest, almost_digest, json_scalar, st.sampled_from(NEAR_MISSES)), max_size=6))
def test_all_sha256_is_the_regex_per_value(values: list[Any]) -> None:
    expected = bool(values) and all(isinstance(v, str) and _SHA256_HEX.fullmatch(v) for v in values)
    assert rules._all_sha256(values) is expected


def test_currency_codes_are_pycountrys() -> None:
    codes = {currency.alpha_3 for currency in pycountry.currencies}
    for text in [*codes, *(code.lower() for code in codes), "XYZ", "usd", "\u017fek", "ǅAB", "US", "USDX"]:
        expected = len(text) == 3 and pycountry.currencies.get(alpha_3=text.upper()) is not None
        assert (text.upper().lower() in rules._CURRENCY_CODES) is expected


# --- the request body ------------------------------------------------------------------------


def test_a_blank_body_is_read_as_empty_exactly_as_before() -> None:
    # parse_body no longer copies the body to strip() it; the same bodies must count as blank.
    for raw in [b"", b" \t\r\n\x0b\x0c" * 3, *(bytes([byte]) * 2 for byte in range(256))]:
        try:
            answer: Any = parse_body("application/json", raw)
        except GraphError:
            answer = None
        assert (answer == {}) is (not raw.strip()), raw


@pytest.mark.parametrize("value", [int(sys.float_info.max), int(sys.float_info.max) + 2 ** 970, 10 ** 400, 0, 7,
                                   1.5, -1, float("nan"), float("inf"), True, "10"])
def test_amounts_at_the_edges_of_a_double_agree_with_the_reference(value: Any) -> None:
    assert rules.is_amount(value) == _ref_amount(value)
