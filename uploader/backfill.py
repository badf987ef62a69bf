"""``capi-uploader backfill``: the window to re-read and the sources to read it from.

Dates are read in UTC unless they carry an offset. A bare date as ``--until``
includes that whole day; without ``--until`` the window runs up to now.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from connectors import Window
from uploader.errors import ConfigError
from uploader.settings import Settings

DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_moment(text: str, option: str, end_of_day: bool = False) -> float:
    """``2026-11-20`` or ``2026-11-20T14:30`` (UTC) or with an offset, as Unix seconds.

    Raises ValueError with a message naming ``option``.
    """
    text = text.strip()
    try:
        if DATE_ONLY.fullmatch(text):
            day = date.fromisoformat(text) + timedelta(days=1 if end_of_day else 0)
            return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{option}: {text!r} is not a date (2026-11-20) or a time (2026-11-20T14:30, "
                         "UTC unless it has an offset)") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def window(since: str, until: str | None, now: float) -> Window:
    """The backfill window ``since <= t < until``; raises ValueError for a bad or empty range."""
    start = parse_moment(since, "--since")
    end = parse_moment(until, "--until", end_of_day=True) if until else now
    if start >= end:
        raise ValueError(f"--since {since} is not before --until {until or 'now'}")
    if start > now:
        raise ValueError(f"--since {since} is in the future")
    return Window(start, end)


def only_source(settings: Settings, name: str | None) -> Settings:
    """The settings restricted to the source called ``name`` (all of them for None)."""
    if name is None:
        return settings
    chosen = tuple(source for source in settings.sources if source.name == name)
    if not chosen:
        known = ", ".join(source.name for source in settings.sources)
        raise ConfigError(f"--source: no source is called {name!r} (known: {known})")
    return replace(settings, sources=chosen)
