"""The CRM database side of the SQL source: read-only sessions, typed bind values, errors.

This is the only module that sees SQLAlchemy's errors for a CRM database: they are
translated here into ``ConfigError`` (the URL or its driver is wrong) or ``SourceError``
(the database cannot be read now; the source is skipped and the run goes on), with a
one-line message that never includes the password.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from uploader.errors import ConfigError, SourceError

log = logging.getLogger("capi_uploader.sql")

SUPPORTED = ("sqlite", "postgresql", "mysql", "mariadb")
# backend -> (the extra to install, the driver it provides)
EXTRAS = {"postgresql": ("postgres", "postgresql+psycopg"), "mysql": ("mysql", "mysql+pymysql"),
          "mariadb": ("mysql", "mariadb+pymysql")}


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be used for a CRM database, or None; never repeats the password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "is not a SQLAlchemy URL such as postgresql+psycopg://crm_reader@db.example.com/crm"
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED:
        return f"the {backend} database is not supported (use SQLite, PostgreSQL or MySQL/MariaDB)"
    try:
        parsed.get_dialect().import_dbapi()
    except (NoSuchModuleError, ImportError):
        extra, provided = EXTRAS.get(backend, ("", ""))
        hint = f" (pip install 'capi-uploader[{extra}]' provides {provided})" if extra else ""
        return f"the driver {parsed.drivername!r} is not installed{hint}"
    return None


def executable_sql(sql: str) -> str:
    """The query without its whole-line ``--`` comments: SQLAlchemy would take a ``:name`` in a
    comment for a bind parameter, and the driver would then count one parameter too many."""
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


def safe_url(url: str) -> str:
    """The URL as it may appear in a message: the password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a URL)"


def open_engine(url: str, setting: str) -> Engine:
    """An engine for reading the CRM; a SQLite file is opened read-only and never created."""
    problem = url_problem(url)
    if problem:
        raise ConfigError(f"{setting}: {safe_url(url)} {problem}")
    # NullPool: one connection per read, closed at once; nothing lingers on the CRM server.
    return create_engine(_read_only_url(make_url(url)), poolclass=NullPool)


def _read_only_url(url: URL) -> URL:
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return url
    if url.database.startswith("file:"):
        return url.update_query_dict({"mode": "ro", "uri": "true"})
    path = urllib.parse.quote(url.database)
    return url.set(database=f"file:{path}").update_query_dict({"mode": "ro", "uri": "true"})


@contextmanager
def read_only_session(engine: Engine, timezone: str, url: str) -> Iterator[Connection]:
    """A connection inside a read-only transaction, with the source's time zone where the
    database has one; rolled back and closed on exit (nothing is ever committed)."""
    try:
        conn = engine.connect()
    except SQLAlchemyError as exc:
        raise SourceError(f"cannot connect to {safe_url(url)}: {first_line(exc, url)}") from None
    try:
        _start_read_only(conn, timezone)
        yield conn
    except SQLAlchemyError as exc:
        raise SourceError(f"cannot read {safe_url(url)}: {first_line(exc, url)}") from None
    finally:
        try:
            conn.close()  # rolls back: nothing is ever committed
        except SQLAlchemyError as exc:  # a connection that broke mid-read; the reason was reported
            log.debug("closing the CRM connection failed: %s", first_line(exc, url))


def _start_read_only(conn: Connection, timezone: str) -> None:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        # Must be the transaction's first statement; SET LOCAL ends with the transaction.
        conn.execute(text("SET TRANSACTION READ ONLY"))
        conn.execute(text("SELECT set_config('TimeZone', :tz, true)"), {"tz": timezone})
    elif dialect in ("mysql", "mariadb"):
        _mysql_time_zone(conn, timezone)
        conn.execute(text("START TRANSACTION READ ONLY"))
    else:
        conn.execute(text("PRAGMA query_only = ON"))


def _mysql_time_zone(conn: Connection, timezone: str) -> None:
    """TIMESTAMP columns are shown in the session's zone: make it the source's zone."""
    if timezone in ("UTC", "Etc/UTC"):
        conn.execute(text("SET time_zone = '+00:00'"))  # works without the server's zone tables
        return
    try:
        conn.execute(text("SET time_zone = :tz"), {"tz": timezone})
    except DBAPIError:
        log.warning("the MySQL server knows no time zone %r (load its zone tables with mysql_tzinfo_to_sql); "
                    "TIMESTAMP columns are read in the server's zone", timezone)


def bind_time(seconds: float, dialect: str, timezone: str) -> datetime | str:
    """A window bound as each database compares it with a timestamp column.

    PostgreSQL gets an absolute time (its naive columns are read in the session zone, set
    to the source's); MySQL a naive time in the source's zone; SQLite, which stores times
    as text, the text ``YYYY-MM-DD HH:MM:SS[.ffffff]`` in the source's zone.
    """
    moment = datetime.fromtimestamp(seconds, ZoneInfo(timezone))
    if dialect == "postgresql":
        return moment
    naive = moment.replace(tzinfo=None)
    if dialect != "sqlite":
        return naive
    # Text that sorts like the times it names, next to values stored as 'YYYY-MM-DD HH:MM:SS[.ffffff]'.
    return naive.isoformat(sep=" ", timespec="microseconds" if naive.microsecond else "seconds")


def query_error(exc: SQLAlchemyError, query: str, url: str) -> SourceError:
    """A failed query as a one-line SourceError."""
    return SourceError(f"the query {query} failed on {safe_url(url)}: {first_line(exc, url)}")


def first_line(exc: BaseException, url: str) -> str:
    """The driver's own message, first line only, with the password (if any) masked."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    message = lines[0] if lines else type(cause).__name__
    password = _password(url)
    return message.replace(password, "***") if password else message


def _password(url: str) -> str | None:
    try:
        return make_url(url).password
    except ArgumentError:
        return None
