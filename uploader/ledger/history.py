"""Run history: one row per run in the ``runs`` table, read back by ``status``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from uploader.ledger.schema import runs

FIGURES = ("rows_read", "events_mapped", "events_new", "refused", "sent", "failed", "expired", "pending_left")


@dataclass(frozen=True)
class RunRow:
    """One past run as ``status`` shows it."""

    run_id: str
    mode: str
    started_by: str
    host: str
    started_at: datetime
    duration_seconds: float
    exit_code: int
    error: str | None
    figures: dict[str, int]
    report: dict[str, Any]


def save_run(engine: Engine, report: dict[str, Any]) -> None:
    """Store a run report (``RunReport.to_dict()``) with its key figures as columns."""
    row = {
        "run_id": report["run_id"], "mode": report["mode"], "started_by": report["started_by"],
        "host": report["host"][:255], "pid": report["pid"],
        "started_at": _naive(report["started_at"]), "finished_at": _naive(report["finished_at"]),
        "duration_seconds": report["durations_seconds"].get("total", 0.0),
        "exit_code": report["exit_code"], "error": report["error"],
        "rows_read": report["rows_read"], "events_mapped": report["events_mapped"],
        "events_new": report["events_new"], "duplicates": report["duplicates_skipped"],
        "refused": report["refused"]["total"], "sent": report["sent"], "failed": report["failed"],
        "expired": report["expired"]["total"], "pending_left": report["pending_left"],
        "report_path": report.get("report_path"), "report": json.dumps(report, ensure_ascii=False),
    }
    with engine.begin() as conn:
        conn.execute(runs.insert().values(**row))


def last_runs(engine: Engine, limit: int = 10) -> list[RunRow]:
    """The most recent runs, newest first."""
    query = select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [RunRow(r["run_id"], r["mode"], r["started_by"], r["host"], r["started_at"], r["duration_seconds"],
                   r["exit_code"], r["error"], {k: r[k] for k in FIGURES}, json.loads(r["report"]))
            for r in rows]


def _naive(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)
