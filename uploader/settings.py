"""Load and validate the configuration: a TOML file plus the environment and `.env`.

Every problem is collected and reported at once, each named by its setting
(``sources[0].path: folder "drop" does not exist``), before anything runs.
Settings are frozen dataclasses: read-only once loaded.
"""

from __future__ import annotations

import os
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from connectors import SOURCE_TYPES
from uploader.errors import ConfigError
from uploader.mapping.columns import TEMPLATE, header_key
from uploader.policies import (POLICY_KEYS, CancellationPolicy, ConsentPolicy, ConversionLeads, LduPolicy,
                               source_policies)
from uploader.sql_settings import SQL_KEYS, sql_settings

DEFAULT_CONFIG = "capi-uploader.toml"
CONFIG_ENV = "CAPI_UPLOADER_CONFIG"
ACTION_SOURCES = frozenset(
    "email website app phone_call chat physical_store system_generated business_messaging other".split()
)
MAX_BATCH = 1000


class Secret:
    """A string that never shows itself in a repr, a log line or a traceback."""

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class MetaSettings:
    """Where and how to reach the Conversions API."""

    access_token: Secret | None
    dataset_id: str | None
    api_version: str = "v25.0"
    graph_url: str = "https://graph.facebook.com"
    test_event_code: str | None = None
    batch_size: int = MAX_BATCH
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    concurrency: int = 4
    max_attempts: int = 5
    retry_base_seconds: float = 1.0
    retry_budget_seconds: float = 600.0

    def events_url(self) -> str:
        return f"{self.graph_url.rstrip('/')}/{self.api_version}/{self.dataset_id}/events"


@dataclass(frozen=True)
class ScheduleSettings:
    """When ``capi-uploader schedule`` runs: a cron expression or a fixed interval."""

    cron: str | None = "15 2 * * *"       # nightly at 02:15
    interval_minutes: float | None = None  # instead of cron
    timezone: str | None = None            # None: the machine's, as cron does
    misfire_grace_seconds: int = 3600


@dataclass(frozen=True)
class LoggingSettings:
    """Log level and format; records are always redacted."""

    level: str = "WARNING"
    format: str = "text"          # or "json": one object per line, for log shippers
    file: Path | None = None      # default: standard error


@dataclass(frozen=True)
class SourceSettings:
    """One place conversions come from: a CSV drop folder (path, encoding) or a SQL query
    (url, query, cursor, lookback, start); the mapping settings are common to both."""

    name: str
    type: str
    path: Path | None = None
    action_source: str = "system_generated"
    event_name: str | None = None
    timezone: str = "UTC"
    default_country: str | None = None
    encoding: str = "utf-8-sig"
    columns: Mapping[str, str] = field(default_factory=dict)
    stage_map: Mapping[str, str] = field(default_factory=dict)
    url: Secret | None = None          # sql: the CRM database (a password must never reach a log)
    query: Path | None = None          # sql: the file holding the SELECT, with :since and :until
    cursor: str | None = None          # sql: the column the window applies to, e.g. updated_at
    lookback: float = 0.0              # sql: seconds re-read before the stored cursor
    start: float | None = None         # sql: where the first run starts (Unix seconds)
    conversion_leads: ConversionLeads | None = None  # Meta's CRM integration (lead stages)
    consent: ConsentPolicy = field(default_factory=ConsentPolicy)
    ldu: LduPolicy = field(default_factory=LduPolicy)
    cancellations: CancellationPolicy = field(default_factory=CancellationPolicy)
    after: str = "move"                # csv: "move" processed files to processed/, or "keep" them
    settle_seconds: float = 0.0        # csv: leave files modified this recently for the next run
    delimiter: str | None = None       # csv: the field separator; None: the one each file's header shows
    decimal: str = "."                 # csv: the decimal separator of value and refund_value ("." or ",")


@dataclass(frozen=True)
class Settings:
    """The whole validated configuration."""

    config_path: Path
    ledger_url: str
    sources: tuple[SourceSettings, ...]
    meta: MetaSettings
    quarantine_dir: Path
    chunk_size: int = 5_000
    map_workers: int = 0               # processes mapping chunks beside this one (uploader/mapping/workers.py)
    reports_dir: Path = Path("reports")
    lock_stale_seconds: float = 300.0
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)


def default_map_workers() -> int:
    """One mapping process per core beyond the first (this process reads, records and sends), at most two."""
    return max(0, min(os.cpu_count() or 1, 3) - 1)


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """``$CAPI_UPLOADER_CONFIG`` if set, else ``capi-uploader.toml`` in the current folder."""
    env = os.environ if env is None else env
    return Path(env.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``path`` and the environment (with ``.env`` beside the config and in the
    current folder filling the gaps) into validated :class:`Settings`.

    Raises :class:`ConfigError` listing every problem found.
    """
    raw = _read_toml(path)
    env = merged_environment(path, os.environ if environ is None else environ)
    problems: list[str] = []
    base = path.resolve().parent
    settings = _build(raw, env, base, path, problems)
    if problems:
        raise ConfigError(problems)
    return settings


def merged_environment(config_path: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The process environment wins; ``.env`` files only fill in what it lacks."""
    merged: dict[str, str] = {}
    for dotenv in (config_path.resolve().parent / ".env", Path.cwd() / ".env"):
        if dotenv.is_file():
            values = {k: v for k, v in dotenv_values(dotenv).items() if v is not None}
            merged = {**values, **merged}
    merged.update(environ)
    return merged


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(
            f"config file {str(path)!r} not found (pass --config PATH or set {CONFIG_ENV}; "
            f"see config/capi-uploader.example.toml)"
        )
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def _build(raw: dict[str, Any], env: Mapping[str, str], base: Path, path: Path,
           problems: list[str]) -> Settings:
    _unknown_keys(raw, {"ledger", "sources", "meta", "run", "schedule", "logging"}, "", problems)
    ledger = _table(raw, "ledger", problems)
    run = _table(raw, "run", problems)
    _unknown_keys(ledger, {"url"}, "ledger.", problems)
    _unknown_keys(run, {"chunk_size", "map_workers", "quarantine_dir", "reports_dir", "lock_stale_seconds"}, "run.",
                  problems)
    return Settings(
        config_path=path,
        ledger_url=_ledger_url(ledger.get("url"), base, problems),
        sources=_sources(raw.get("sources"), env, base, problems),
        meta=_meta(_table(raw, "meta", problems), env, problems),
        quarantine_dir=base / _string(run, "quarantine_dir", "run.", problems, "quarantine"),
        chunk_size=_int(run, "chunk_size", "run.", problems, 5_000, low=100),
        map_workers=_int(run, "map_workers", "run.", problems, default_map_workers(), low=0, high=32),
        reports_dir=base / _string(run, "reports_dir", "run.", problems, "reports"),
        lock_stale_seconds=_float(run, "lock_stale_seconds", "run.", problems, 300.0),
        schedule=_schedule(_table(raw, "schedule", problems), problems),
        logging=_logging(_table(raw, "logging", problems), base, problems),
    )


def _schedule(table: dict[str, Any], problems: list[str]) -> ScheduleSettings:
    from apscheduler.triggers.cron import CronTrigger  # deferred: only needed to check the expression

    _unknown_keys(table, {"cron", "interval_minutes", "timezone", "misfire_grace_seconds"}, "schedule.", problems)
    timezone = _timezone(table, "schedule.", problems) if "timezone" in table else None
    interval = table.get("interval_minutes")
    if interval is not None and (isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0):
        problems.append("schedule.interval_minutes: must be a number of minutes above 0")
        interval = None
    cron = _string(table, "cron", "schedule.", problems, None)
    if cron is not None and "interval_minutes" in table:
        problems.append("schedule: set either cron or interval_minutes, not both")
    elif cron is not None:
        try:
            CronTrigger.from_crontab(cron, timezone=timezone or "UTC")
        except ValueError as exc:
            problems.append(f"schedule.cron: {cron!r} is not a crontab expression such as \"15 2 * * *\" ({exc})")
    return ScheduleSettings(
        cron=None if interval is not None else cron or ScheduleSettings.cron,
        interval_minutes=float(interval) if interval is not None else None,
        timezone=timezone,
        misfire_grace_seconds=_int(table, "misfire_grace_seconds", "schedule.", problems, 3600),
    )


def _logging(table: dict[str, Any], base: Path, problems: list[str]) -> LoggingSettings:
    _unknown_keys(table, {"level", "format", "file"}, "logging.", problems)
    level = str(_string(table, "level", "logging.", problems, "WARNING")).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append(f"logging.level: {level.lower()!r} is not one of debug, info, warning, error")
        level = "WARNING"
    fmt = _string(table, "format", "logging.", problems, "text")
    if fmt not in ("text", "json"):
        problems.append(f'logging.format: {fmt!r} must be "text" or "json"')
        fmt = "text"
    file = _string(table, "file", "logging.", problems, None)
    return LoggingSettings(level=level, format=fmt, file=base / file if file else None)


def _table(raw: Mapping[str, Any], key: str, problems: list[str]) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        problems.append(f"{key}: must be a table ([{key}])")
        return {}
    return value


def _unknown_keys(table: Mapping[str, Any], known: set[str], prefix: str,
                  problems: list[str]) -> None:
    for key in sorted(set(table) - known):
        problems.append(f"{prefix}{key}: unknown setting (known: {', '.join(sorted(known))})")


def _ledger_url(value: Any, base: Path, problems: list[str]) -> str:
    if value is None:
        return f"sqlite:///{base / 'state' / 'ledger.db'}"
    if not isinstance(value, str) or "://" not in value:
        problems.append('ledger.url: must be a SQLAlchemy URL such as "sqlite:///state/ledger.db"')
        return ""
    match = re.fullmatch(r"sqlite(\+\w+)?:///(?!/)(.+)", value)
    if match and match.group(2) != ":memory:":
        # A relative SQLite path is relative to the config file, so cron's working folder doesn't matter.
        return f"sqlite{match.group(1) or ''}:///{base / match.group(2)}"
    return value


def _sources(value: Any, env: Mapping[str, str], base: Path,
             problems: list[str]) -> tuple[SourceSettings, ...]:
    if not isinstance(value, list) or not value:
        problems.append('sources: at least one [[sources]] entry is needed (type = "csv", path = "drop")')
        return ()
    built = [_source(item, f"sources[{i}].", env, base, problems) for i, item in enumerate(value)]
    names = [s.name for s in built if s is not None]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"sources: the name {name!r} is used twice; every source needs its own name")
    return tuple(s for s in built if s is not None)


COMMON_SOURCE_KEYS = {"name", "type", "action_source", "event_name", "timezone", "default_country",
                      "columns", "stage_map"} | POLICY_KEYS
TYPE_KEYS: dict[str, frozenset[str]] = {"csv": frozenset({"path", "encoding", "after", "settle_seconds",
                                                            "delimiter", "decimal"}),
                                        "sql": SQL_KEYS}
SOURCE_KEYS = COMMON_SOURCE_KEYS.union(*TYPE_KEYS.values())


def _source(item: Any, prefix: str, env: Mapping[str, str], base: Path,
            problems: list[str]) -> SourceSettings | None:
    if not isinstance(item, dict):
        problems.append(f"{prefix[:-1]}: must be a table ([[sources]])")
        return None
    kind = _string(item, "type", prefix, problems, None)
    _unknown_keys(item, COMMON_SOURCE_KEYS | TYPE_KEYS.get(kind, SOURCE_KEYS), prefix, problems)
    name = _string(item, "name", prefix, problems, None)
    if name is None:
        problems.append(f"{prefix}name: missing (a short label such as \"sales_ops\")")
    elif not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        problems.append(f"{prefix}name: {name!r} may hold only letters, digits, '_', '-' and '.'")
    if kind not in SOURCE_TYPES:
        problems.append(f"{prefix}type: {kind!r} is not a known source type (known: {', '.join(SOURCE_TYPES)})")
    timezone = _timezone(item, prefix, problems)
    return SourceSettings(
        name=name or "",
        type=kind or "",
        action_source=_action_source(item, prefix, problems),
        event_name=_string(item, "event_name", prefix, problems, None),
        timezone=timezone,
        default_country=_country(item, prefix, problems),
        encoding=_encoding(item, prefix, problems),
        columns=_renames(item, prefix, problems),
        stage_map=_string_map(item, "stage_map", prefix, problems),
        **source_policies(item, prefix, problems),
        **_typed(kind, item, prefix, env, base, timezone, problems),
    )


def _typed(kind: str | None, item: Mapping[str, Any], prefix: str, env: Mapping[str, str], base: Path,
           timezone: str, problems: list[str]) -> dict[str, Any]:
    """The settings of the source's own type; for an unknown type, those it was given are checked."""
    known = kind in TYPE_KEYS
    typed: dict[str, Any] = {}
    if kind == "csv" or (not known and "path" in item):
        typed["path"] = _folder(item, prefix, env, base, problems)
        typed["after"] = _after(item, prefix, problems)
        typed["settle_seconds"] = _seconds(item, "settle_seconds", prefix, problems, 0.0)
        typed["delimiter"], typed["decimal"] = _separators(item, prefix, problems)
    if kind == "sql" or (not known and SQL_KEYS & item.keys()):
        typed.update(sql_settings(item, prefix, env, base, timezone, problems))
    return typed


def _after(item: Mapping[str, Any], prefix: str, problems: list[str]) -> str:
    value = _string(item, "after", prefix, problems, "move")
    if value not in ("move", "keep"):
        problems.append(f'{prefix}after: {value!r} must be "move" (to processed/) or "keep" (leave the file)')
        return "move"
    return value


def _separators(item: Mapping[str, Any], prefix: str, problems: list[str]) -> tuple[str | None, str]:
    """A CSV source's field delimiter (None: each file's header shows it) and decimal separator."""
    delimiter = _string(item, "delimiter", prefix, problems, None)
    if delimiter is not None and (len(delimiter) != 1 or delimiter in '"\r\n' or delimiter.isalnum()):
        problems.append(f'{prefix}delimiter: {delimiter!r} must be one character such as ";" or "\\t" '
                        "(leave it out to take the one each file's header shows)")
        delimiter = None
    decimal = _string(item, "decimal", prefix, problems, ".")
    if decimal not in (".", ","):
        problems.append(f'{prefix}decimal: {decimal!r} must be "." (10.50) or "," (10,50)')
        decimal = "."
    if decimal == delimiter:
        problems.append(f"{prefix}decimal: {decimal!r} cannot also be the delimiter")
    return delimiter, decimal


def _seconds(table: Mapping[str, Any], key: str, prefix: str, problems: list[str], default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        problems.append(f"{prefix}{key}: must be a number of seconds, 0 or more")
        return default
    return float(value)


def _folder(item: Mapping[str, Any], prefix: str, env: Mapping[str, str], base: Path,
            problems: list[str]) -> Path:
    raw = _string(item, "path", prefix, problems, None)
    if raw is None:
        problems.append(f'{prefix}path: missing (the folder the CSV files are dropped in, e.g. "drop")')
        return base
    folder = base / os.path.expanduser(expand_env(raw, env, f"{prefix}path", problems))
    if not folder.is_dir():
        problems.append(f'{prefix}path: folder "{raw}" does not exist (looked at {folder})')
    return folder


def expand_env(text: str, env: Mapping[str, str], setting: str, problems: list[str]) -> str:
    """Replace ``${NAME}`` with the environment's value, reporting names that are not set."""

    def value(match: re.Match[str]) -> str:
        if match.group(1) not in env:
            problems.append(f"{setting}: ${{{match.group(1)}}} is not set (looked in the environment and .env)")
            return ""
        return env[match.group(1)]

    return re.sub(r"\$\{(\w+)\}", value, text)


def _action_source(item: Mapping[str, Any], prefix: str, problems: list[str]) -> str:
    value = _string(item, "action_source", prefix, problems, "system_generated")
    if value not in ACTION_SOURCES:
        problems.append(f"{prefix}action_source: {value!r} is not one of {', '.join(sorted(ACTION_SOURCES))}")
    return value


def _timezone(item: Mapping[str, Any], prefix: str, problems: list[str]) -> str:
    value = _string(item, "timezone", prefix, problems, "UTC")
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.append(f"{prefix}timezone: {value!r} is not a time zone name such as \"Europe/Berlin\"")
        return "UTC"
    return value


def _country(item: Mapping[str, Any], prefix: str, problems: list[str]) -> str | None:
    import pycountry  # deferred: only needed when a default country is set

    value = _string(item, "default_country", prefix, problems, None)
    if value is None:
        return None
    if pycountry.countries.get(alpha_2=value.upper()) is None:
        problems.append(f"{prefix}default_country: {value!r} is not a two-letter ISO country code such as \"US\"")
        return None
    return value.lower()


def _encoding(item: Mapping[str, Any], prefix: str, problems: list[str]) -> str:
    import codecs

    value = _string(item, "encoding", prefix, problems, "utf-8-sig")
    try:
        codecs.lookup(value)
    except LookupError:
        problems.append(f"{prefix}encoding: {value!r} is not an encoding Python knows (e.g. \"cp1252\")")
        return "utf-8-sig"
    # Plain UTF-8 files may still start with a BOM that Excel wrote.
    return "utf-8-sig" if codecs.lookup(value).name == "utf-8" else value


def _renames(item: Mapping[str, Any], prefix: str, problems: list[str]) -> dict[str, str]:
    renames = _string_map(item, "columns", prefix, problems)
    for header, target in renames.items():
        if header_key(target) not in TEMPLATE:
            problems.append(f"{prefix}columns: {header!r} is renamed to {target!r}, which is not a template "
                            f"column ({', '.join(TEMPLATE)})")
    return renames


def _string_map(item: Mapping[str, Any], key: str, prefix: str,
                problems: list[str]) -> dict[str, str]:
    value = item.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        problems.append(f'{prefix}{key}: must be a table of text values, e.g. {key} = {{ "Deal Amount" = "value" }}')
        return {}
    return dict(value)


def _meta(table: dict[str, Any], env: Mapping[str, str], problems: list[str]) -> MetaSettings:
    _unknown_keys(table, {"batch_size", "connect_timeout", "read_timeout", "concurrency", "max_attempts",
                          "retry_base_seconds", "retry_budget_seconds"}, "meta.", problems)
    token = env.get("META_ACCESS_TOKEN") or None
    dataset = env.get("META_DATASET_ID") or None
    if dataset is not None and not re.fullmatch(r"\d+", dataset):
        problems.append(f"META_DATASET_ID: {dataset!r} must be the numeric dataset (pixel) id")
    version = env.get("META_API_VERSION") or "v25.0"
    if not re.fullmatch(r"v\d+\.\d+", version):
        problems.append(f"META_API_VERSION: {version!r} must look like v25.0")
    return MetaSettings(
        access_token=Secret(token) if token else None,
        dataset_id=dataset,
        api_version=version,
        graph_url=_graph_url(env.get("META_GRAPH_URL") or "https://graph.facebook.com", problems),
        test_event_code=env.get("META_TEST_EVENT_CODE") or None,
        batch_size=_int(table, "batch_size", "meta.", problems, MAX_BATCH, low=1, high=MAX_BATCH),
        connect_timeout=_float(table, "connect_timeout", "meta.", problems, 10.0),
        read_timeout=_float(table, "read_timeout", "meta.", problems, 60.0),
        concurrency=_int(table, "concurrency", "meta.", problems, 4, low=1, high=16),
        max_attempts=_int(table, "max_attempts", "meta.", problems, 5, low=1, high=20),
        retry_base_seconds=_float(table, "retry_base_seconds", "meta.", problems, 1.0),
        retry_budget_seconds=_float(table, "retry_budget_seconds", "meta.", problems, 600.0),
    )


def _graph_url(url: str, problems: list[str]) -> str:
    match = re.fullmatch(r"(https?)://([^/:]+)(:\d+)?/?", url)
    if not match:
        problems.append(f"META_GRAPH_URL: {url!r} must look like https://graph.facebook.com")
    elif match.group(1) == "http" and match.group(2) not in ("127.0.0.1", "localhost", "::1"):
        problems.append("META_GRAPH_URL: plain http is allowed only for a sandbox on this machine "
                        "(127.0.0.1 or localhost); use https")
    return url.rstrip("/")


def require_delivery(meta: MetaSettings) -> None:
    """Raise :class:`ConfigError` unless everything needed to send is set."""
    problems = [
        f"{name}: not set (looked in the environment and .env)"
        for name, value in (("META_ACCESS_TOKEN", meta.access_token), ("META_DATASET_ID", meta.dataset_id))
        if not value
    ]
    if problems:
        raise ConfigError(problems)


def _string(table: Mapping[str, Any], key: str, prefix: str, problems: list[str],
            default: Any) -> Any:
    value = table.get(key, default)
    if value is not None and not isinstance(value, str):
        problems.append(f"{prefix}{key}: must be text in quotes")
        return default
    return value


def _int(table: Mapping[str, Any], key: str, prefix: str, problems: list[str], default: int,
         low: int = 1, high: int | None = None) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
        limit = f"between {low} and {high}" if high else f"at least {low}"
        problems.append(f"{prefix}{key}: must be a whole number {limit}")
        return default
    return value


def _float(table: Mapping[str, Any], key: str, prefix: str, problems: list[str],
           default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        problems.append(f"{prefix}{key}: must be a number of seconds above 0")
        return default
    return float(value)
