"""What the sandbox Graph API accepts: pure checks, no I/O, no clock of their own.

This is a second, independent reading of ``docs/meta-capi-offline.md``; it must not
import the uploader's own mapping or validation code, so that the two catch each
other's mistakes.

Every check returns a :class:`GraphError` (or raises one internally) instead of a
bare message, so the server only has to serialise it.

The event checks run on every event the uploader sends, in a process beside it in the
throughput benchmark, so the usual case is kept cheap: ``_all_pass`` runs them over the
batch with the SHA-256 digests checked a run of events at a time, and only when it is
unsure does ``_first_problem`` go event by event to name the first problem.
``tests/test_sandbox_rules.py`` holds both to the plain event-by-event rules.

Error codes. Code and subcode values marked "doc" come from the spec; the others
are this sandbox's choice (Meta does not document them), stable so tests and the
uploader can rely on them:

| code / subcode   | when                                                        |
|------------------|-------------------------------------------------------------|
| 190              | token missing or wrong (doc)                                |
| 100              | token sent in the URL query string                          |
| 100 / 33         | dataset id other than the configured one (Graph's own)      |
| 2500             | unknown path components, e.g. a malformed version           |
| 100 / 2804001    | request shape: ``data`` missing, not a list, empty, > 1000; |
|                  | ``test_event_code`` / ``partner_agent`` not a string        |
| 100 / 2804002    | event not an object, or a required field missing            |
| 100 / 2804003    | event_time older than 7 days (62 for physical_store) (doc)  |
| 100 / 2804004    | event_time more than 60 s in the future                     |
| 100 / 2804005    | unknown key in an event or in user_data                     |
| 100 / 2804006    | wrong type or value (event_time not int, bad action_source) |
| 100 / 2804007    | website event without event_source_url / client_user_agent  |
| 100 / 2804008    | Purchase without custom_data.value and currency             |
| 100 / 2804009    | currency not an ISO 4217 code                               |
| 100 / 2804010    | value not a number >= 0                                     |
| 100 / 2804011    | a user_data key that must be hashed is not 64 lowercase hex |
| 100 / 2804019    | lead_id not 15-17 digits, or a lead the sandbox rejects     |
| 100 / 2804050    | too little customer information (doc)                       |
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import pycountry

MAX_EVENTS = 1000
MAX_AGE_SECONDS = 7 * 86400
MAX_AGE_PHYSICAL_STORE_SECONDS = 62 * 86400
# Clocks of the sender and of Meta are never exactly in step.
FUTURE_SKEW_SECONDS = 60

SUB_BAD_REQUEST = 2804001
SUB_MISSING_FIELD = 2804002
SUB_TOO_OLD = 2804003
SUB_IN_FUTURE = 2804004
SUB_UNKNOWN_KEY = 2804005
SUB_BAD_VALUE = 2804006
SUB_WEBSITE_FIELDS = 2804007
SUB_PURCHASE_FIELDS = 2804008
SUB_BAD_CURRENCY = 2804009
SUB_BAD_AMOUNT = 2804010
SUB_UNHASHED = 2804011
SUB_BAD_LEAD = 2804019
SUB_TOO_LITTLE_INFO = 2804050

ACTION_SOURCES = frozenset({
    "email", "website", "app", "phone_call", "chat", "physical_store",
    "system_generated", "business_messaging", "other",
})
REQUIRED_EVENT_KEYS = ("event_name", "event_time", "user_data", "action_source")
_REQUIRED_EVENT_KEY_SET = frozenset(REQUIRED_EVENT_KEYS)
EVENT_KEYS = frozenset({
    *REQUIRED_EVENT_KEYS, "event_id", "event_source_url", "custom_data",
    "data_processing_options", "data_processing_options_country",
    "data_processing_options_state", "opt_out", "original_event_data",
    "app_data", "referrer_url",
})
HASHED_KEYS = ("em", "ph", "fn", "ln", "db", "ge", "ct", "st", "zp", "country")
PLAIN_KEYS = (
    "external_id", "client_ip_address", "client_user_agent", "fbc", "fbp",
    "lead_id", "subscription_id", "madid",
)
# Meta documents these too; accepted as strings so a real payload is not refused.
OTHER_META_USER_KEYS = (
    "fb_login_id", "anon_id", "page_id", "page_scoped_user_id", "ctwa_clid",
    "ig_account_id", "ig_sid",
)
USER_DATA_KEYS = frozenset(HASHED_KEYS + PLAIN_KEYS + OTHER_META_USER_KEYS)
# user_data made only of one of these sets does not identify anyone.
WEAK_USER_DATA_SETS = (
    frozenset({"ct", "st", "zp", "country", "ge", "client_user_agent"}),
    frozenset({"db", "client_user_agent"}),
    frozenset({"fn", "ge"}),
    frozenset({"ln", "ge"}),
)
# A key outside all of them identifies someone on its own.
_WEAK_USER_DATA_KEYS = frozenset().union(*WEAK_USER_DATA_SETS)
# Events whose digests are checked together: enough to make the per-call cost vanish, few enough
# that the joined text stays small (big buffers cost fresh memory pages on every request).
_DIGEST_RUN = 50
# ISO 4217 codes, lower case as pycountry indexes them.
_CURRENCY_CODES = frozenset(currency.alpha_3.lower() for currency in pycountry.currencies)
_CURRENCY_CODES_UPPER = frozenset(code.upper() for code in _CURRENCY_CODES)
_LEAD_ID = re.compile(r"[0-9]{15,17}")
_VERSION = re.compile(r"v[0-9]+\.[0-9]+")


@dataclass
class GraphError(Exception):
    """One Graph API error: the HTTP status and the fields of the ``error`` object."""

    status: int
    code: int
    message: str
    type: str = "OAuthException"
    subcode: int | None = None
    user_title: str | None = None
    user_msg: str | None = None
    is_transient: bool = False

    def body(self, fbtrace_id: str) -> dict[str, Any]:
        """Return the JSON body Graph would send, ``{"error": {...}}``."""
        error: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["is_transient"] = self.is_transient
        if self.user_title is not None:
            error["error_user_title"] = self.user_title
            error["error_user_msg"] = self.user_msg
        error["fbtrace_id"] = fbtrace_id
        return {"error": error}


def invalid(subcode: int, title: str, user_msg: str) -> GraphError:
    """An HTTP 400, code 100 "Invalid parameter" error with a user-facing explanation."""
    return GraphError(400, 100, "Invalid parameter", subcode=subcode,
                      user_title=title, user_msg=user_msg)


def bad_token() -> GraphError:
    """The error for a missing, empty or wrong access token (never names the token)."""
    return GraphError(400, 190, "Invalid OAuth access token - Cannot parse access token")


def token_in_url() -> GraphError:
    """The error for an access token put in the URL, where proxies and logs would keep it."""
    return GraphError(400, 100, "access_token must not be sent in the URL")


def unknown_path(path: str) -> GraphError:
    """The error for a path Graph cannot route."""
    return GraphError(400, 2500, f"Unknown path components: {path}")


def unsupported_request(method: str, path: str) -> GraphError:
    """The error for a method/path pair this sandbox does not serve."""
    return GraphError(400, 100, f"Unsupported {method.lower()} request: {path}")


def throttled() -> GraphError:
    """Graph's answer when an app sends too many requests."""
    return GraphError(400, 17, "User request limit reached", subcode=2446079, is_transient=True)


def server_failure() -> GraphError:
    """A Graph-side failure, worth retrying."""
    return GraphError(500, 1, "An unknown error occurred", is_transient=True)


def check_version(version: str) -> GraphError | None:
    """Refuse a path whose version segment is not like ``v25.0``."""
    return None if _VERSION.fullmatch(version) else unknown_path(f"/{version}")


def check_token(supplied: Collection[str], expected: str | None) -> GraphError | None:
    """Refuse when no token is supplied, one is empty, or one differs from ``expected``."""
    if not supplied or any(not token for token in supplied):
        return bad_token()
    if expected is not None and any(token != expected for token in supplied):
        return bad_token()
    return None


def check_dataset(path_dataset_id: str, expected: str | None, method: str = "POST") -> GraphError | None:
    """Refuse a dataset id other than the configured one, as Graph does for unknown objects."""
    if expected is None or path_dataset_id == expected:
        return None
    return GraphError(
        400, 100,
        f"Unsupported {method.lower()} request. Object with ID '{path_dataset_id}' does not exist, "
        "cannot be loaded due to missing permissions, or does not support this operation",
        type="GraphMethodException", subcode=33,
    )


def validate_events_body(
    body: dict[str, Any], now: float, reject_lead_ids: Collection[str] = frozenset()
) -> list[dict[str, Any]] | GraphError:
    """Check a whole ``/events`` body; return its events, or the error for the first bad one.

    One bad event rejects the whole request, as Meta does.
    """
    try:
        events = _check_request_shape(body)
    except GraphError as error:
        return error
    if _all_pass(events, now, reject_lead_ids):
        return events
    return _first_problem(events, now, reject_lead_ids) or events


def _check_request_shape(body: dict[str, Any]) -> list[Any]:
    data = body.get("data")
    if not isinstance(data, list) or not data:
        raise invalid(SUB_BAD_REQUEST, "Invalid data", "data must be a non-empty array of events")
    if len(data) > MAX_EVENTS:
        raise invalid(SUB_BAD_REQUEST, "Too many events",
                      f"data holds {len(data)} events; at most {MAX_EVENTS} are allowed")
    for field in ("test_event_code", "partner_agent"):
        if field in body and not isinstance(body[field], str):
            raise invalid(SUB_BAD_REQUEST, "Invalid parameter", f"{field} must be a string")
    return data


class _EventProblem(Exception):
    """Raised by the per-event checks; turned into a GraphError naming the event index."""

    def __init__(self, subcode: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.subcode, self.title, self.detail = subcode, title, detail


def _all_pass(events: list[Any], now: float, reject_lead_ids: Collection[str]) -> bool:
    """The quick look for the common case: whether every event passes, the user_data values
    that should be SHA-256 digests checked in one step for each run of events.

    False only means "look closer": an event broke a rule, or a value is not a digest (which a
    plain external_id or client_ip_address may rightly be). _first_problem decides.
    """
    for start in range(0, len(events), _DIGEST_RUN):
        digests: list[Collection[Any]] = []
        try:
            for event in events[start:start + _DIGEST_RUN]:
                check_event(event, now, reject_lead_ids, digests)
        # Any exception: a check that fails outright (math.isfinite of a 400-digit value) must
        # fail only where the event-by-event order gets to it, after any earlier bad digest.
        except Exception:  # noqa: BLE001
            return False
        if not _all_sha256(list(itertools.chain.from_iterable(digests))):
            return False
    return True


def _first_problem(events: list[Any], now: float, reject_lead_ids: Collection[str]) -> GraphError | None:
    """The error for the first event that breaks a rule, event by event; None when none does."""
    for index, event in enumerate(events):
        try:
            check_event(event, now, reject_lead_ids)
        except _EventProblem as problem:
            return invalid(problem.subcode, problem.title, f"Event {index}: {problem.detail}")
    return None


def check_event(event: Any, now: float, reject_lead_ids: Collection[str] = frozenset(),
                digests: list[Collection[Any]] | None = None) -> None:
    """Raise ``_EventProblem`` for the first rule one event breaks.

    Given ``digests``, the user_data values other than lead_id's are appended to it unchecked,
    for the caller to check as SHA-256 digests with the rest of the batch (see _all_pass).
    """
    if not isinstance(event, dict):
        raise _EventProblem(SUB_MISSING_FIELD, "Invalid event", "each event must be an object")
    if not _has_plain_fields(event):
        _check_event_keys(event)
        _check_event_types(event)
    _check_event_values(event, now)
    _check_user_data(event["user_data"], reject_lead_ids, digests)
    _check_custom_data(event["event_name"], event.get("custom_data"))


# Field -> (accepted types, wording). bool is excluded where a number is meant, below.
_FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "event_name": ((str,), "a non-empty string"),
    "event_time": ((int,), "an integer (Unix seconds)"),
    "user_data": ((dict,), "an object"),
    "action_source": ((str,), "a string"),
    "event_id": ((str,), "a string"),
    "event_source_url": ((str,), "a string"),
    "referrer_url": ((str,), "a string"),
    "custom_data": ((dict,), "an object"),
    "original_event_data": ((dict,), "an object"),
    "app_data": ((dict,), "an object"),
    "data_processing_options": ((list,), "an array of strings"),
    "data_processing_options_country": ((int,), "an integer"),
    "data_processing_options_state": ((int,), "an integer"),
    "opt_out": ((bool,), "a boolean"),
}
# Each field's one type, exactly (JSON gives no subclasses): a value of it passes as it is.
_EXACT_FIELD_TYPE = {key: exact for key, ((exact,), _) in _FIELD_TYPES.items()}


def _has_plain_fields(event: dict[str, Any]) -> bool:
    """True when _check_event_keys and _check_event_types would pass ``event``, as most do."""
    for key, value in event.items():
        if type(value) is not _EXACT_FIELD_TYPE.get(key):  # an unknown key gets None
            return False
    return _REQUIRED_EVENT_KEY_SET <= event.keys()


def _check_event_keys(event: dict[str, Any]) -> None:
    if not event.keys() <= EVENT_KEYS:
        unknown = min(event.keys() - EVENT_KEYS)
        raise _EventProblem(SUB_UNKNOWN_KEY, "Unknown parameter", f"unknown field {unknown!r}")
    if not event.keys() >= _REQUIRED_EVENT_KEY_SET:
        missing = next(key for key in REQUIRED_EVENT_KEYS if key not in event)
        raise _EventProblem(SUB_MISSING_FIELD, "Missing parameter", f"{missing} is required")


def _check_event_types(event: dict[str, Any]) -> None:
    for key, value in event.items():
        types, wording = _FIELD_TYPES[key]
        wrong_bool = isinstance(value, bool) and bool not in types
        if not isinstance(value, types) or wrong_bool:
            raise _EventProblem(SUB_BAD_VALUE, "Invalid parameter", f"{key} must be {wording}")


def _check_event_values(event: dict[str, Any], now: float) -> None:
    if not event["event_name"]:
        raise _EventProblem(SUB_BAD_VALUE, "Invalid parameter", "event_name must not be empty")
    action_source = event["action_source"]
    if action_source not in ACTION_SOURCES:
        raise _EventProblem(SUB_BAD_VALUE, "Invalid action_source",
                            f"action_source must be one of {', '.join(sorted(ACTION_SOURCES))}")
    options = event.get("data_processing_options")
    if options and not all(isinstance(option, str) for option in options):
        raise _EventProblem(SUB_BAD_VALUE, "Invalid parameter",
                            "data_processing_options must be an array of strings")
    event_time = event["event_time"]
    max_age = MAX_AGE_PHYSICAL_STORE_SECONDS if action_source == "physical_store" else MAX_AGE_SECONDS
    if event_time < now - max_age:
        raise _EventProblem(SUB_TOO_OLD, "event_time too old",
                            f"event_time is more than {max_age // 86400} days in the past")
    if event_time > now + FUTURE_SKEW_SECONDS:
        raise _EventProblem(SUB_IN_FUTURE, "event_time in the future",
                            "event_time is in the future")
    if action_source == "website":
        _check_website(event, event["user_data"])


def _check_website(event: dict[str, Any], user_data: dict[str, Any]) -> None:
    if not event.get("event_source_url") or not user_data.get("client_user_agent"):
        raise _EventProblem(SUB_WEBSITE_FIELDS, "Missing website parameters",
                            "website events need event_source_url and user_data.client_user_agent")


def _check_user_data(user_data: dict[str, Any], reject_lead_ids: Collection[str],
                     digests: list[Collection[Any]] | None = None) -> None:
    if not USER_DATA_KEYS.issuperset(user_data):
        unknown = min(user_data.keys() - USER_DATA_KEYS)
        raise _EventProblem(SUB_UNKNOWN_KEY, "Unknown parameter", f"unknown field user_data.{unknown}")
    # Commonly every value but lead_id's is one SHA-256 digest, which the rule of each of those
    # keys accepts: checked in one step (or left to the caller). If not, key by key, to name
    # the first bad value.
    has_lead_id = "lead_id" in user_data
    hashed = [v for k, v in user_data.items() if k != "lead_id"] if has_lead_id else user_data.values()
    if digests is not None:
        digests.append(hashed)
    elif not _all_sha256(hashed):
        for key, value in user_data.items():
            _check_user_value(key, value, reject_lead_ids)
    if has_lead_id:  # (again, if the loop ran: then it passes)
        _check_lead_id(user_data["lead_id"], reject_lead_ids)
    # Enough customer information, now that every key present holds a real value:
    present = user_data.keys()
    if present <= _WEAK_USER_DATA_KEYS and any(present <= weak for weak in WEAK_USER_DATA_SETS):
        raise _EventProblem(SUB_TOO_LITTLE_INFO, "Not enough customer information",
                            "user_data does not hold enough customer information to match")


def _check_user_value(key: str, value: Any, reject_lead_ids: Collection[str]) -> None:
    if key == "lead_id":
        _check_lead_id(value, reject_lead_ids)
    elif key in HASHED_KEYS:
        _check_hashed(key, value)
    elif key == "external_id":
        _check_strings(key, value, allow_list=True)
    else:
        _check_strings(key, value, allow_list=False)


def _check_strings(key: str, value: Any, allow_list: bool) -> list[str]:
    values = value if allow_list and isinstance(value, list) else [value]
    if not values or not all(isinstance(item, str) and item for item in values):
        shape = "a non-empty string or array of strings" if allow_list else "a non-empty string"
        raise _EventProblem(SUB_BAD_VALUE, "Invalid parameter", f"user_data.{key} must be {shape}")
    return values


def _check_hashed(key: str, value: Any) -> None:
    if not _all_sha256(_check_strings(key, value, allow_list=True)):
        raise _EventProblem(SUB_UNHASHED, "Unhashed customer information",
                            f"user_data.{key} must be hashed with SHA-256")


# Each byte's class: a lowercase hex digit reads "0", a space " ", any other byte "!".
_BYTE_CLASSES = bytes(
    ord("0") if chr(byte) in "0123456789abcdef" else ord(" ") if byte == ord(" ") else ord("!")
    for byte in range(256)
)
_DIGEST_CLASSES = b"0" * 64 + b" "


def _all_sha256(values: Collection[Any]) -> bool:
    """True when there are values and each is a SHA-256 digest: 64 lowercase hex characters.

    One C-level pass over all of them rather than a regex per value: joined with spaces and
    read byte class by byte class, they must spell digest, space, digest, ... exactly.
    """
    try:
        joined = " ".join(values).encode("ascii")
    except (TypeError, UnicodeEncodeError):  # a value that is not a string, or not ASCII
        return False
    return bool(values) and joined.translate(_BYTE_CLASSES) == (_DIGEST_CLASSES * len(values))[:-1]


def _check_lead_id(value: Any, reject_lead_ids: Collection[str]) -> None:
    text = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not _LEAD_ID.fullmatch(text):
        raise _EventProblem(SUB_BAD_LEAD, "Invalid lead_id",
                            "user_data.lead_id must be a Meta lead id of 15 to 17 digits")
    if text in reject_lead_ids:
        raise _EventProblem(SUB_BAD_LEAD, "Invalid lead_id",
                            "user_data.lead_id does not match a lead of this page")


def _check_custom_data(event_name: str, custom_data: dict[str, Any] | None) -> None:
    custom_data = custom_data or {}
    if event_name == "Purchase" and ("value" not in custom_data or "currency" not in custom_data):
        raise _EventProblem(SUB_PURCHASE_FIELDS, "Missing purchase parameters",
                            "Purchase events need custom_data.value and custom_data.currency")
    if "value" in custom_data:
        _check_amount(custom_data["value"])
    if "currency" in custom_data:
        _check_currency(custom_data["currency"])


def _check_amount(value: Any) -> None:
    if type(value) is float and 0.0 <= value < math.inf:
        return  # the usual value, in one step (NaN fails both comparisons)
    if not is_amount(value):
        raise _EventProblem(SUB_BAD_AMOUNT, "Invalid value",
                            "custom_data.value must be a number >= 0")


def is_amount(value: Any) -> bool:
    """A JSON number >= 0 that a double holds (a 400-digit integer is refused, not a crash)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        number = float(value)
    except OverflowError:
        return False
    return math.isfinite(number) and number >= 0


def _check_currency(currency: Any) -> None:
    if type(currency) is str and currency in _CURRENCY_CODES_UPPER:
        return  # the usual spelling, found without the case folding below
    is_code = isinstance(currency, str) and len(currency) == 3
    # Looked up as pycountry.currencies.get(alpha_3=currency.upper()) would, without its overhead.
    if not is_code or currency.upper().lower() not in _CURRENCY_CODES:
        raise _EventProblem(SUB_BAD_CURRENCY, "Invalid currency",
                            "custom_data.currency must be an ISO 4217 code such as USD")
