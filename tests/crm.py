"""A test CRM: the sample CRM's tables in a test database, rows written with chosen times,
and a checksum of every table to prove the uploader never changed them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from uploader.sample_crm import QUERIES, load_sample_crm, sample_dialect

# Columns of the sample schema that hold naive times (read in the source's timezone) per database.
NAIVE = {"sqlite": {"closed_at", "qualified_at", "renewed_at", "updated_at"},
         "postgresql": {"qualified_at"},
         "mysql": {"closed_at", "qualified_at", "renewed_at"}}
TIME_COLUMNS = {"closed_at", "qualified_at", "renewed_at", "updated_at"}


SAMPLE = (("crm_deals", "closed_won_deals.sql", ""),
          ("crm_leads", "qualified_leads.sql", 'event_name = "Lead"\n'),
          ("crm_renewals", "renewals.sql", 'event_name = "Subscribe"\n'))


def sample_sources(chunk_size: int = 100, only: str | None = None, extra: str = "") -> str:
    """A config with the sample queries as sources (URL from CRM_DATABASE_URL); ``only`` keeps
    one of them, ``extra`` is added to each."""
    head = f'[ledger]\nurl = "sqlite:///state/ledger.db"\n\n[run]\nchunk_size = {chunk_size}\n'
    return head + "".join(
        f'\n[[sources]]\nname = "{name}"\ntype = "sql"\nurl = "${{CRM_DATABASE_URL}}"\n'
        f'query = "{QUERIES / query}"\ncursor = "updated_at"\n{more}{extra}'
        for name, query, more in SAMPLE if only in (None, name))


def write_config(root: Path, text_: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "capi-uploader.toml"
    path.write_text(text_, encoding="utf-8")
    return path


class Crm:
    """The sample CRM in one test database."""

    def __init__(self, url: str, seed: bool = False, schema: bool = True) -> None:
        if schema:
            load_sample_crm(url, seed=seed)
        self.url = url
        self.dialect = sample_dialect(url)
        # MySQL TIMESTAMP values are written in the session's zone: make it UTC, as the values are.
        args = {"init_command": "SET time_zone = '+00:00'"} if self.dialect == "mysql" else {}
        self.engine = create_engine(url, connect_args=args)

    def close(self) -> None:
        self.engine.dispose()

    def value(self, column: str, value: Any) -> Any:
        """A Python value as the sample schema stores it (times given as aware datetimes)."""
        if isinstance(value, Decimal) and self.dialect == "sqlite":
            return str(value)  # sqlite3 binds no Decimal; NUMERIC affinity stores the number
        if column not in TIME_COLUMNS or not isinstance(value, datetime):
            return value
        utc = value.astimezone(UTC)
        if column not in NAIVE[self.dialect]:
            return utc
        naive = utc.replace(tzinfo=None)
        return naive.strftime("%Y-%m-%d %H:%M:%S") if self.dialect == "sqlite" else naive

    def insert(self, table: str, **values: Any) -> None:
        columns = ", ".join(values)
        marks = ", ".join(f":{c}" for c in values)
        with self.engine.begin() as conn:
            conn.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({marks})"),
                         {c: self.value(c, v) for c, v in values.items()})

    def insert_many(self, table: str, rows: list[dict[str, Any]]) -> None:
        columns = list(rows[0])
        statement = text(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})")
        with self.engine.begin() as conn:
            conn.execute(statement, [{c: self.value(c, row[c]) for c in columns} for row in rows])

    def update(self, table: str, row_id: int, **values: Any) -> None:
        assignments = ", ".join(f"{c} = :{c}" for c in values)
        with self.engine.begin() as conn:
            conn.execute(text(f"UPDATE {table} SET {assignments} WHERE id = :row_id"),
                         {"row_id": row_id, **{c: self.value(c, v) for c, v in values.items()}})

    def execute(self, sql: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(sql))

    def seconds(self, table: str, column: str, row_id: int) -> int:
        """A stored time as Unix seconds, naive values read as UTC (the sample's zone)."""
        with self.engine.connect() as conn:
            stored = conn.scalar(text(f"SELECT {column} FROM {table} WHERE id = :i"), {"i": row_id})
        if isinstance(stored, str):
            stored = datetime.fromisoformat(stored)
        if stored.tzinfo is None:
            stored = stored.replace(tzinfo=UTC)
        return int(stored.timestamp())

    def checksum(self) -> str:
        """A digest of every row of every table (and of the file itself for SQLite)."""
        digest = hashlib.sha256()
        with self.engine.connect() as conn:
            for table in sorted(inspect(conn).get_table_names()):
                rows = conn.execute(text(f"SELECT * FROM {table} ORDER BY 1")).all()
                digest.update(f"{table}:{[tuple(r) for r in rows]!r}".encode())
        if self.dialect == "sqlite":
            digest.update(Path(make_url(self.url).database or "").read_bytes())
        return digest.hexdigest()


def ago(**delta: float) -> datetime:
    """An aware UTC time this long ago, to whole seconds."""
    return (datetime.now(UTC) - timedelta(**delta)).replace(microsecond=0)
