"""The reference: Meta's official ``facebook-business`` SDK building the same events, no sending.

For each chunk of CSV rows, the untimed preparation does what any SDK user must do before the SDK
can take a row (typed event_time, value, Gender and ActionSource enums; the SDK refuses a field it
cannot normalise with an exception, so fields it would refuse are left out beforehand, which spares
the timed part every exception). The timed part is the SDK's own work: UserData, CustomData, Event
and EventRequest objects, their normalisation (Meta's hashing) and JSON, via
``EventRequest.get_params()``, in requests of 1,000 events, exactly as ``execute()`` would build
them. Nothing is sent: no HTTP client is created and ``FacebookAdsApi`` is never initialised.

Untimed, after each chunk, the SDK's phone hash of every row is compared with ours.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from facebook_business.adobjects.serverside.action_source import ActionSource
from facebook_business.adobjects.serverside.custom_data import CustomData
from facebook_business.adobjects.serverside.event import Event
from facebook_business.adobjects.serverside.event_request import EventRequest
from facebook_business.adobjects.serverside.gender import Gender
from facebook_business.adobjects.serverside.normalize import Normalize
from facebook_business.adobjects.serverside.user_data import UserData

from connectors.csv_folder import CsvFile
from uploader.mapping import hashing, normalize
from uploader.mapping.columns import conform

SDK_FIELDS = {"email": "em", "phone": "ph", "first_name": "fn", "last_name": "ln", "city": "ct",
              "state": "st", "zip": "zp", "country": "country", "date_of_birth": "db"}
USER_DATA_ARGS = {"email": "email", "phone": "phone", "first_name": "first_name", "last_name": "last_name",
                  "city": "city", "state": "state", "zip": "zip_code", "country": "country_code",
                  "date_of_birth": "date_of_birth"}
GENDERS = {"f": Gender.FEMALE, "female": Gender.FEMALE, "m": Gender.MALE, "male": Gender.MALE}
REQUEST_SIZE = 1000


@dataclass
class SdkResult:
    rows: int = 0
    events: int = 0
    build_seconds: float = 0.0
    prepare_seconds: float = 0.0
    json_bytes: int = 0
    phones: Counter[str] = field(default_factory=Counter)


def run(path: Path, chunk_size: int, default_country: str, stage_map: dict[str, str]) -> SdkResult:
    """Build every row of ``path`` with the SDK; time only the SDK's part."""
    result = SdkResult()
    for raw in CsvFile("bench", path, "utf-8-sig", chunk_size).chunks():
        started = time.perf_counter()
        frame, _ = conform(raw.frame, {})
        kwargs = [_prepare(row, default_country, stage_map) for row in frame.itertuples(index=False)]
        built = time.perf_counter()
        for start in range(0, len(kwargs), REQUEST_SIZE):
            request = EventRequest(pixel_id="1234567890", events=[_event(k) for k in kwargs[start:start + REQUEST_SIZE]])
            params = request.get_params()
            result.json_bytes += sum(len(text) for text in params["data"])
            result.events += len(params["data"])
        done = time.perf_counter()
        result.prepare_seconds += built - started
        result.build_seconds += done - built
        result.rows += len(raw.frame) + len(raw.bad_lines)
        result.phones.update(compare_phones(frame, default_country))
    return result


def _prepare(row: Any, default_country: str, stage_map: dict[str, str]) -> dict[str, Any]:
    """One row as the SDK's constructors want it; fields the SDK would refuse are left out."""
    user = {}
    for column, arg in USER_DATA_ARGS.items():
        value = getattr(row, column)
        if value and _sdk_accepts(SDK_FIELDS[column], value):
            user[arg] = value
    if row.external_id:
        user["external_id"] = row.external_id
    if row.lead_id:
        user["lead_id"] = row.lead_id
    gender = GENDERS.get(row.gender.lower())
    if gender is not None:
        user["gender"] = gender
    custom = {}
    if row.value:
        try:
            custom["value"] = float(row.value.replace(",", ""))
        except ValueError:
            pass
    if row.currency and _sdk_accepts("currency", row.currency):
        custom["currency"] = row.currency
    if row.order_id:
        custom["order_id"] = row.order_id
    return {"event_name": row.event_name or stage_map.get(row.stage.lower(), "Lead"),
            "event_time": _seconds(row.event_time), "action_source": _action_source(row.action_source),
            "event_id": row.event_id or None, "user": user, "custom": custom}


def _sdk_accepts(key: str, value: str) -> bool:
    try:
        Normalize.normalize_field(key, value)
    except (TypeError, ValueError):
        return False
    return True


def _seconds(text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return 0
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def _action_source(text: str) -> ActionSource:
    try:
        return ActionSource(text.lower() or "system_generated")
    except ValueError:
        return ActionSource.SYSTEM_GENERATED


def _event(kwargs: dict[str, Any]) -> Event:
    """The timed part per row: the SDK's objects (normalisation runs in get_params)."""
    return Event(event_name=kwargs["event_name"], event_time=kwargs["event_time"],
                 action_source=kwargs["action_source"], event_id=kwargs["event_id"],
                 user_data=UserData(**kwargs["user"]), custom_data=CustomData(**kwargs["custom"]))


def compare_phones(frame: pd.DataFrame, default_country: str) -> Counter[str]:
    """Per row with a phone: does the SDK's ``ph`` hash equal ours (Meta's rules)?"""
    country = normalize.country(frame["country"]).where(frame["country"].ne(""), default_country.lower())
    ours = hashing.sha256_hex(normalize.phone(frame["phone"], country))
    counts: Counter[str] = Counter()
    for raw, mine in zip(frame["phone"], ours):
        if not raw:
            continue
        theirs = _sdk_phone(raw)
        if theirs == mine:
            counts["same"] += 1
        elif theirs and mine:
            counts["sdk_wrong_hash"] += 1        # a hash of the wrong digits (no country code, ...)
        elif theirs:
            counts["sdk_hash_of_invalid"] += 1   # we drop it as impossible, the SDK sends a hash
        else:
            counts["sdk_refused_valid"] += 1     # the SDK raises on a number Meta's rules accept
    return counts


def _sdk_phone(raw: str) -> str:
    try:
        return Normalize.normalize_field("ph", raw) or ""
    except (TypeError, ValueError):
        return ""


def iter_json(result: SdkResult) -> Iterator[str]:
    yield json.dumps(result.__dict__, default=dict)
