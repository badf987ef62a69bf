"""The settings only a ``type = "sql"`` source has: url, query, cursor, lookback, start.

Checked like every other setting: each problem is added to ``problems`` with the
setting's name, and the URL (which may hold a password) is kept as a ``Secret``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo


SQL_KEYS = frozenset({"url", "query", "cursor", "lookback", "start"})
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


def sql_settings(item: Mapping[str, Any], prefix: str, env: Mapping[str, str], base: Path, timezone: str,
                 problems: list[str]) -> dict[str, Any]:
    """The SQL source's own fields of ``SourceSettings``, checked."""
    return {
        "url": _url(item.get("url"), f"{prefix}url", env, base, problems),
        "query": _query(item.get("query"), f"{prefix}query", base, problems),
        "cursor": _cursor(item.get("cursor"), f"{prefix}cursor", problems),
        "lookback": _lookback(item.get("lookback", 0), f"{prefix}lookback", problems),
        "start": _start(item.get("start"), f"{prefix}start", timezone, problems),
    }


def _url(value: Any, setting: str, env: Mapping[str, str], base: Path, problems: list[str]) -> Any:
    from uploader.settings import Secret, expand_env  # deferred: settings imports this module

    if not isinstance(value, str) or not value.strip():
        problems.append(f'{setting}: missing (a SQLAlchemy URL, best from the environment: '
                        f'url = "${{CRM_DATABASE_URL}}")')
        return None
    password = re.search(r"://[^/@]*:([^/@]*)@", value)
    if password and "${" not in password.group(1):
        problems.append(f'{setting}: holds a password; keep it out of the config file: '
                        f'url = "${{CRM_DATABASE_URL}}" with the URL in the environment or .env')
        return None
    before = len(problems)
    url = anchor_sqlite(expand_env(value, env, setting, problems), base)
    if len(problems) > before:
        return None
    from connectors.sql_db import url_problem  # SQLAlchemy: only where a SQL source is configured

    problem = url_problem(url)
    if problem:
        problems.append(f"{setting}: {problem}")
        return None
    return Secret(url)


def anchor_sqlite(url: str, base: Path) -> str:
    """A relative SQLite path is relative to the config file, so cron's working folder doesn't matter."""
    match = re.fullmatch(r"sqlite(\+\w+)?:///(?!/)([^?]+)(\?.*)?", url)
    if not match or match.group(2) == ":memory:" or match.group(2).startswith("file:"):
        return url
    return f"sqlite{match.group(1) or ''}:///{base / match.group(2)}{match.group(3) or ''}"


def _query(value: Any, setting: str, base: Path, problems: list[str]) -> Path | None:
    if not isinstance(value, str) or not value.strip():
        problems.append(f'{setting}: missing (a file with the SELECT to run, e.g. "sql/queries/closed_won_deals.sql")')
        return None
    from connectors.sql_db import executable_sql  # SQLAlchemy: only where a SQL source is configured

    path = base / os.path.expanduser(value)
    try:
        sql = executable_sql(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        problems.append(f'{setting}: cannot read the file "{value}" (looked at {path})')
        return None
    missing = [name for name in (":since", ":until") if not re.search(re.escape(name) + r"\b", sql)]
    if missing:
        problems.append(f'{setting}: "{value}" must use the bind parameters :since and :until '
                        f'(missing: {", ".join(missing)}), e.g. WHERE updated_at >= :since AND updated_at < :until')
    return path


def _cursor(value: Any, setting: str, problems: list[str]) -> str | None:
    if value is None:
        problems.append(f'{setting}: missing (the column that says when a row last changed, e.g. "updated_at")')
    elif not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        problems.append(f"{setting}: must be a column name of the query's result, such as \"updated_at\"")
    else:
        return value
    return None


def _lookback(value: Any, setting: str, problems: list[str]) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value) if isinstance(value, str) else None
    if match is None:
        problems.append(f'{setting}: must be a duration such as "30m", "2h", "1d" or a number of seconds')
        return 0.0
    return float(match.group(1)) * _UNITS[match.group(2)]


def _start(value: Any, setting: str, timezone: str, problems: list[str]) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            value = None
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if not isinstance(value, datetime):
        problems.append(f'{setting}: must be a date and time such as 2026-11-01T00:00:00Z '
                        '(without an offset it is read in the source\'s timezone)')
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(timezone))
    return value.timestamp()
