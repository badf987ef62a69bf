"""The contract every source type keeps, as singer-sdk's standard tests do for taps.

Parametrised over ``SOURCE_TYPES``: a new type without a case here fails. Each case
holds 25 conversions; the test reads them through the real ledger as the pipeline
does and checks units, bounded chunks with row numbers, the one mapping engine,
and ``is_done``/``commit``: nothing read twice after a commit, everything read
again without one, and only the new rows on the next run.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from connectors import SOURCE_TYPES, RawChunk, open_source
from tests.crm import Crm
from uploader.ledger import Ledger
from uploader.mapping.engine import map_chunk
from uploader.sample_crm import QUERIES
from uploader.settings import Secret, SourceSettings

CHUNK = 10


@dataclass
class Case:
    settings: SourceSettings
    add_rows: Callable[[int, float], None]  # (how many, at what time) new conversions


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def csv_case(tmp_path: Path) -> Case:
    folder = tmp_path / "drop"
    folder.mkdir()
    made = [0]

    def add_rows(count: int, at: float) -> None:
        path = folder / f"export-{made[0]}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["event_name", "event_time", "order_id", "email", "value", "currency"])
            for n in range(made[0], made[0] + count):
                writer.writerow(["Purchase", _iso(datetime.now(UTC) - timedelta(hours=2)), f"D-{n}",
                                 f"buyer{n}@example.com", "10.00", "USD"])
        made[0] += count

    return Case(SourceSettings(name="contract", type="csv", path=folder), add_rows)


def sql_case(tmp_path: Path) -> Case:
    crm = Crm(f"sqlite:///{tmp_path / 'crm.db'}")
    crm.insert("contacts", id=1, email="buyer@example.com")
    made = [0]

    def add_rows(count: int, at: float) -> None:
        rows = [{"id": n, "contact_id": 1, "stage": "closed_won", "channel": "web", "amount": Decimal("10.00"),
                 "currency": "USD", "closed_at": datetime.now(UTC) - timedelta(hours=2),
                 "updated_at": datetime.fromtimestamp(at, UTC)} for n in range(made[0] + 1, made[0] + count + 1)]
        crm.insert_many("deals", rows)
        made[0] += count

    settings = SourceSettings(name="contract", type="sql", url=Secret(crm.url),
                              query=QUERIES / "closed_won_deals.sql", cursor="updated_at")
    return Case(settings, add_rows)


CASES: dict[str, Callable[[Path], Case]] = {"csv": csv_case, "sql": sql_case}


@pytest.fixture(params=sorted(SOURCE_TYPES))
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    assert request.param in CASES, f"source type {request.param!r} needs a contract case here"
    return CASES[request.param](tmp_path)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield opened
    opened.close()


def read(case: Case, ledger: Ledger, now: float, commit: bool = True) -> list[RawChunk]:
    """One run's reading, as the pipeline does it."""
    chunks: list[RawChunk] = []
    source = open_source(case.settings, CHUNK, now)
    assert source.name == case.settings.name
    for unit in source.units():
        assert isinstance(unit.key, str) and unit.key and isinstance(unit.label, str) and unit.label
        if unit.is_done(ledger):
            continue
        mine = list(unit.chunks())
        chunks += mine
        if commit:
            unit.commit(ledger, sum(len(c.frame) for c in mine), now)
    return chunks


def rows(chunks: list[RawChunk]) -> int:
    return sum(len(c.frame) + len(c.bad_lines) for c in chunks)


def test_chunks_are_bounded_numbered_and_map_through_the_one_engine(case: Case, ledger: Ledger) -> None:
    now = time.time()
    case.add_rows(25, now - 3600)
    chunks = read(case, ledger, now, commit=False)
    assert [len(c.frame) for c in chunks] == [10, 10, 5]
    numbers = [n for c in chunks for n in c.frame.index]
    assert all(isinstance(n, int) and n >= 1 for n in numbers) and numbers == sorted(set(numbers))
    assert all(isinstance(c.bad_lines, list) for c in chunks)
    mapped = [map_chunk(c, case.settings, now) for c in chunks]
    assert sum(len(m.events) for m in mapped) == 25 and all(m.refused.empty for m in mapped)
    ids = pd.concat([m.events for m in mapped])["event_id"]
    assert ids.is_unique


def test_without_a_commit_everything_is_read_again(case: Case, ledger: Ledger) -> None:
    now = time.time()
    case.add_rows(25, now - 3600)
    assert rows(read(case, ledger, now, commit=False)) == 25
    assert rows(read(case, ledger, now + 60, commit=False)) == 25


def test_after_a_commit_only_new_rows_are_read(case: Case, ledger: Ledger) -> None:
    now = time.time()
    case.add_rows(25, now - 3600)
    assert rows(read(case, ledger, now)) == 25
    assert rows(read(case, ledger, now + 60)) == 0
    case.add_rows(5, now + 70)  # changed after that run
    assert rows(read(case, ledger, now + 120)) == 5
    assert rows(read(case, ledger, now + 180)) == 0
