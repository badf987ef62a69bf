"""``capi-uploader status``: what the ledger holds, the last runs, and what needs the operator.

Read-only: it takes no lock and sends nothing, so it is safe while a run goes on.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from uploader.ledger import FAILED, Ledger
from uploader.ledger import overview as ov
from uploader.ledger.history import RunRow, last_runs
from uploader.ledger.lock import LockHolder, current_holder
from uploader.mapping.engine import COVERAGE_KEYS
from uploader.settings import Settings
from uploader.tables import table_text


@dataclass
class Status:
    """Everything ``status`` shows."""

    now: float
    dataset_id: str | None
    counts: list[tuple[str, str, str, int]]
    runs: list[RunRow]
    cursors: list[dict[str, Any]] | None
    expiring_total: int
    expiring: list[ov.Expiring]
    failed_total: int
    failed: list[ov.Failed]
    lock: LockHolder | None

    def needs_attention(self) -> bool:
        """Events Meta refused, events about to expire, or a last run that stopped on an error."""
        last_broke = bool(self.runs) and self.runs[0].exit_code >= 2
        return bool(self.failed_total or self.expiring_total or last_broke)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset_id": self.dataset_id,
            "events": [{"source": s, "event_name": n, "status": st, "events": c} for s, n, st, c in self.counts],
            "runs": [{**{k: v for k, v in asdict(r).items() if k != "report"},
                      "started_at": _iso_dt(r.started_at), "coverage": r.report.get("coverage", {})}
                     for r in self.runs],
            "cursors": self.cursors,
            "expiring_within_24h": {"total": self.expiring_total, "first": [asdict(e) for e in self.expiring]},
            "failed": {"total": self.failed_total,
                       "latest": [{**asdict(f), "updated_at": _iso_dt(f.updated_at)} for f in self.failed]},
            "lock": None if self.lock is None else {"host": self.lock.host, "pid": self.lock.pid,
                                                    "since": _iso_dt(self.lock.acquired_at)},
        }


def gather(settings: Settings, now: float | None = None, runs: int = 10) -> Status:
    """Read the status from the ledger (for the configured dataset when one is set)."""
    now = time.time() if now is None else now
    dataset = settings.meta.dataset_id
    ledger = Ledger.open(settings.ledger_url)
    try:
        engine = ledger.engine
        expiring_total, expiring = ov.expiring(engine, dataset, now)
        counts = ov.counts(engine, dataset)
        # Both read every event of a large ledger (8-11 s each at 11 million): the list only when there is one.
        failed_total = sum(count for _, _, status, count in counts if status == FAILED)
        failed = ov.failed(engine, dataset) if failed_total else []
        return Status(now, dataset, counts, last_runs(engine, runs), ov.cursors(engine),
                      expiring_total, expiring, failed_total, failed, current_holder(engine))
    finally:
        ledger.close()


def render(status: Status) -> str:
    """The status as tables a person reads."""
    parts = [f"capi-uploader status ({'dataset ' + status.dataset_id if status.dataset_id else 'all datasets'}, "
             f"{_iso(status.now)})"]
    parts.append("  run lock: " + (f"held ({status.lock.describe(status.now)})" if status.lock else "free"))
    parts.append(_events_table(status))
    parts.append(_runs_table(status))
    if status.runs and status.runs[0].report.get("coverage"):
        parts.append(_coverage_table(status.runs[0]))
    if status.cursors is not None:
        parts.append(_cursor_table(status.cursors))
    parts.append(_expiring_table(status))
    parts.append(_failed_table(status))
    return "\n\n".join(parts)


def _events_table(status: Status) -> str:
    if not status.counts:
        return "  the ledger holds no events yet"
    rows = [[source, name, state, count] for source, name, state, count in status.counts]
    return table_text(["source", "event_name", "status", "events"], rows, title="events in the ledger")


def _runs_table(status: Status) -> str:
    if not status.runs:
        return "  no runs recorded yet"
    rows = [[_iso_dt(r.started_at), r.mode, r.started_by, f"{r.duration_seconds:.1f}s", r.exit_code,
             *(r.figures[k] for k in ("rows_read", "events_mapped", "events_new", "refused", "sent", "failed",
                                      "expired", "pending_left")), (r.error or "")[:80]]
            for r in status.runs]
    headers = ["started (UTC)", "mode", "by", "took", "exit", "rows", "mapped", "new", "refused", "sent",
               "failed", "expired", "pending", "error"]
    return table_text(headers, rows, title=f"last {len(rows)} runs (newest first)")


def _coverage_table(run: RunRow) -> str:
    rows = [[name, figures["events"], *(f"{100 * figures[k]['share']:.0f}%" for k in COVERAGE_KEYS)]
            for name, figures in run.report["coverage"].items()]
    return table_text(["event_name", "events", *COVERAGE_KEYS], rows,
                      title=f"match-key coverage of the last run ({_iso_dt(run.started_at)})")


def _cursor_table(cursors: list[dict[str, Any]]) -> str:
    if not cursors:
        return "  cursors: none yet (no SQL source has read a window)"
    headers = list(cursors[0])
    return table_text(headers, [[_cell(row[h]) for h in headers] for row in cursors], title="SQL source cursors")


def _expiring_table(status: Status) -> str:
    if not status.expiring_total:
        return "  pending events expiring within 24 hours: none"
    rows = [[e.source, e.event_name, e.event_id, _iso(e.event_time), _iso(e.expires_at)] for e in status.expiring]
    return table_text(["source", "event_name", "event_id", "event_time", "too old for Meta at"], rows,
                      title=f"WARNING: {status.expiring_total} pending events pass Meta's age limit within "
                            f"24 hours (run `capi-uploader run` now)")


def _failed_table(status: Status) -> str:
    if not status.failed_total:
        return "  events Meta refused: none"
    rows = [[f.source, f.event_name, f.event_id, f.attempts, (f.last_error or "")[:120], f.fbtrace_id or ""]
            for f in status.failed]
    return table_text(["source", "event_name", "event_id", "attempts", "Meta's message", "fbtrace_id"], rows,
                      title=f"{status.failed_total} events Meta refused (fix the cause, then "
                            "`capi-uploader retry`)")


def _cell(value: Any) -> str:
    return _iso_dt(value) if isinstance(value, datetime) else str(value)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_dt(moment: datetime) -> str:
    return moment.replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M:%SZ")
