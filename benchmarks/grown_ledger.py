"""A SQLite ledger that has grown: N events of earlier runs, all sent, for a run to be measured against.

A nightly job's ledger keeps every event it ever sent (the key of a sent conversion must stay, or a
re-exported order would go out twice), so after a month of a million conversions a day it holds 30
million. The events here have random ids (none of them is in the benchmark's CSV, so every row of a
run is new, as on a normal night), their payloads dropped as a run drops them once Meta has an event.

    python benchmarks/grown_ledger.py --events 10000000 --out benchmarks/data/ledger-10000000.db

Rows are written with SQLite's own executemany, a million at a time in key order (the schema comes
from ``Ledger.open``, the column list from the ``events`` table), so ten million take a minute or two
and about 2.7 GB.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, when run as a script

from sqlalchemy.dialects import sqlite

from uploader.ledger import Ledger
from uploader.ledger.schema import events

DATASET = "1234567890123"
NAMES = ("Lead", "Purchase", "Subscribe")
STEP = 1_000_000


def grown_ledger(path: Path, count: int, seed: int = 1) -> Path:
    """Write a ledger holding ``count`` sent events at ``path`` (replacing any file there)."""
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    Ledger.open(f"sqlite:///{path}").close()
    statement = str(events.insert().compile(dialect=sqlite.dialect()))
    rng = random.Random(seed)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        for start in range(0, count, STEP):
            db.executemany(statement, _rows(rng, min(STEP, count - start)))
            db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def _rows(rng: random.Random, count: int) -> Iterator[tuple[object, ...]]:
    """``count`` sent events in key order, as tuples in the ``events`` table's column order."""
    keys = sorted((NAMES[rng.randrange(len(NAMES))], f"{rng.getrandbits(128):032x}") for _ in range(count))
    when = datetime(2026, 1, 1, tzinfo=UTC)
    stamp = when.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    fixed = {"dataset_id": DATASET, "source": "crm", "event_time": int(when.timestamp()),
             "action_source": "system_generated", "payload": "", "status": "sent", "attempts": 1,
             "last_error": None, "fbtrace_id": "AbCdEfGhIjK", "created_at": stamp, "updated_at": stamp,
             "sent_at": stamp, "stage_rank": 0}
    columns = [column.name for column in events.columns]
    for name, event_id in keys:
        row = {**fixed, "event_name": name, "event_id": event_id}
        yield tuple(row[c] for c in columns)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    grown_ledger(args.out, args.events, args.seed)
    print(f"{args.events:,} sent events -> {args.out} ({args.out.stat().st_size / 1e9:.1f} GB) "
          f"in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
