"""Shared fixtures: a real sandbox over loopback, project folders, and ledger databases.

PostgreSQL and MariaDB tests read TEST_POSTGRES_URL and TEST_MYSQL_URL (``.ci/run``
exports them) and skip, saying so, where they are not set. Each test gets its own
schema or database there, dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from uploader.sandbox import SandboxServer

TOKEN = "test-token-" + "x" * 24
DATASET = "987654321"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(token=TOKEN, dataset_id=DATASET) as server:
        yield server


@pytest.fixture
def env(sandbox: SandboxServer) -> dict[str, str]:
    """The environment a configured user would have, pointed at the sandbox."""
    return {"META_ACCESS_TOKEN": TOKEN, "META_DATASET_ID": DATASET, "META_GRAPH_URL": sandbox.url}


class Project:
    """A user's folder: a config file, a drop folder and the state the runs leave."""

    def __init__(self, root: Path, extra: str = "") -> None:
        self.root = root
        self.drop = root / "drop"
        self.drop.mkdir(parents=True, exist_ok=True)
        self.config = root / "capi-uploader.toml"
        self.write_config(extra)

    def write_config(self, extra: str = "", ledger_url: str = "sqlite:///state/ledger.db") -> None:
        self.config.write_text(
            f'[ledger]\nurl = "{ledger_url}"\n\n[[sources]]\nname = "sales_ops"\ntype = "csv"\n'
            f'path = "drop"\n{extra}\n', encoding="utf-8")

    def drop_file(self, name: str, content: str, encoding: str = "utf-8") -> Path:
        path = self.drop / name
        path.write_bytes(content.encode(encoding))
        return path

    @property
    def ledger_file(self) -> Path:
        return self.root / "state" / "ledger.db"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path / "project")


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty ledger database on each backend."""
    yield from _fresh_database(request.param, tmp_path / "ledger.db", "capi_test_", "the ledger")


@pytest.fixture
def postgres_ledger_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty ledger database on PostgreSQL alone, for what only PostgreSQL does."""
    yield from _fresh_database("postgresql", tmp_path / "unused.db", "capi_test_", "the ledger")


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def crm_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend to hold a test CRM (never the ledger's database)."""
    yield from _fresh_database(request.param, tmp_path / "crm.db", "crm_test_", "the SQL source")


def _fresh_database(backend: str, sqlite_file: Path, prefix: str, purpose: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{sqlite_file}"
        return
    variable = {"postgresql": "TEST_POSTGRES_URL", "mysql": "TEST_MYSQL_URL"}[backend]
    server = os.environ.get(variable)
    if not server:
        pytest.skip(f"{variable} is not set: no {backend} server to test {purpose} against")
    yield from _isolated_database(server, prefix + secrets.token_hex(4))


def _isolated_database(server: str, name: str) -> Iterator[str]:
    url = make_url(server)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    if url.get_backend_name() == "postgresql":
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {name}"))
        yield url.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(hide_password=False)
        drop = f"DROP SCHEMA {name} CASCADE"
    else:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
        yield url.set(database=name).render_as_string(hide_password=False)
        drop = f"DROP DATABASE {name}"
    with admin.connect() as conn:
        conn.execute(text(drop))
    admin.dispose()
