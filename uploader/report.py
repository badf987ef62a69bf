"""The run summary and the quarantine report of refused rows.

Neither ever holds raw personal data: refusals carry line numbers, reason codes
and messages about non-personal fields only.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from uploader.delivery.sender import Rejection
from uploader.mapping.engine import COVERAGE_KEYS
from uploader.tables import table_text

QUARANTINE_COLUMNS = ["source", "file", "line", "order_id/event_id", "column", "reason", "message"]
STAGE_GAPS_KEPT = 1000  # stage-gap lines a run report names; it counts them all


class Quarantine:
    """Appends refused rows to a CSV (one per run), created on the first refusal.

    Without a path it spools to an anonymous temporary file instead, which ``save_as`` copies
    out: a file's own report is written beside it only once the file is done, and its refused
    rows wait on disk, not in memory, however many there are.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._handle: TextIO | None = None
        self._writer: csv.writer | None = None  # type: ignore[valid-type]

    def add(self, source: str, file: str, refused: pd.DataFrame) -> None:
        if refused.empty:
            return
        if self._writer is None:
            self._handle = self._open()
            self._writer = csv.writer(self._handle)
            self._writer.writerow(QUARANTINE_COLUMNS)
        rows = refused[["line", "key", "column", "reason", "message"]].assign(source=source, file=file)
        self._writer.writerows(rows[["source", "file", "line", "key", "column", "reason", "message"]]
                               .itertuples(index=False))

    def _open(self) -> TextIO:
        if self.path is None:
            return tempfile.TemporaryFile("w+", encoding="utf-8", newline="")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self.path.open("w", encoding="utf-8", newline="")

    @property
    def written(self) -> bool:
        return self._writer is not None

    def save_as(self, path: Path) -> None:
        """Copy what was written (a spool's rows) to ``path``, if anything was."""
        if self._handle is None:
            return
        self._handle.flush()
        self._handle.seek(0)
        with path.open("w", encoding="utf-8", newline="") as out:
            shutil.copyfileobj(self._handle, out)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


@dataclass
class RunReport:
    """Everything a run did, for the summary and the exit code."""

    mode: str
    rows_read: int = 0
    events_mapped: int = 0
    events_new: int = 0
    duplicates: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    dropped_values: Counter[str] = field(default_factory=Counter)
    ignored_columns: dict[str, set[str]] = field(default_factory=dict)
    files_read: list[str] = field(default_factory=list)
    windows_read: list[str] = field(default_factory=list)  # SQL query windows
    files_skipped: list[str] = field(default_factory=list)
    file_errors: list[str] = field(default_factory=list)
    window_errors: list[str] = field(default_factory=list)  # SQL query windows that could not be read
    files_not_moved: list[str] = field(default_factory=list)  # done, but processed/ refused them
    quarantine_path: Path | None = None
    sample_payload: str | None = None
    sent: int = 0
    failed: int = 0
    expired: int = 0
    requeued: int = 0  # retry: failed events put back to pending
    requeue_expired: int = 0  # retry: failed events too old by now, marked expired instead
    batches_failed: int = 0
    delivery_errors: list[str] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    halted: str | None = None
    pending_left: int = 0
    expiring_soon: int = 0
    warnings: list[str] = field(default_factory=list)
    # Scheduling and run history (uploader/runs.py fills the timing, lock and error fields).
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_by: str = "cli"
    started_at: float = 0.0
    finished_at: float = 0.0
    durations: dict[str, float] = field(default_factory=dict)
    window: tuple[float | None, float | None] | None = None
    sources: list[str] = field(default_factory=list)
    expired_on_read: int = 0  # a backfill's rows already too old for Meta: reported, never sent
    files_waiting: list[str] = field(default_factory=list)
    coverage: dict[str, Counter[str]] = field(default_factory=dict)
    error: str | None = None  # the run stopped on this error (with error_code) before it finished
    error_code: int = 2
    report_path: Path | None = None
    # Lead quality and privacy (uploader/lifecycle.py, uploader/mapping/leads.py).
    withheld: Counter[str] = field(default_factory=Counter)  # not sent for want of consent, by reason
    cancelled: int = 0  # conversions cancelled in the CRM: never sent
    refunds: int = 0  # refund events recorded for cancellations of conversions already sent
    # Leads that skipped earlier ladder stages: the first STAGE_GAPS_KEPT lines, and how many in all
    # (a first run over a CRM that only exports late stages could name every lead).
    stage_gaps: list[str] = field(default_factory=list)
    stage_gaps_total: int = 0

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    @property
    def sends(self) -> bool:
        """True for the modes that record and deliver (run, backfill), not for dry runs."""
        return self.mode in ("run", "backfill")

    def add_stage_gaps(self, gaps: list[str]) -> None:
        """Count a chunk's stage-gap lines, keeping the first STAGE_GAPS_KEPT of the run for the report."""
        self.stage_gaps_total += len(gaps)
        self.stage_gaps += gaps[:max(STAGE_GAPS_KEPT - len(self.stage_gaps), 0)]

    def add_coverage(self, counts: pd.DataFrame) -> None:
        """Add one chunk's match-key counts (index event_name, columns ``events`` and the keys)."""
        for event_name, row in counts.iterrows():
            self.coverage.setdefault(str(event_name), Counter()).update(
                {key: int(value) for key, value in row.items()})

    def coverage_rows(self) -> list[list[object]]:
        """Per event_name: events, then the share carrying each match key, as percentages."""
        rows: list[list[object]] = []
        for event_name, counts in sorted(self.coverage.items()):
            events = counts["events"]
            rows.append([event_name, events] + [_percent(counts[key], events) for key in COVERAGE_KEYS])
        return rows

    def exit_code(self) -> int:
        """0: everything delivered and nothing refused; 1: the run finished but needs a look."""
        trouble = (self.refused_total or self.file_errors or self.window_errors or self.pending_left or self.expired
                   or self.failed or self.expired_on_read or self.files_not_moved)
        return 1 if trouble else 0

    def render(self) -> str:
        """The summary a person reads after a run."""
        lines = [f"capi-uploader {self.mode}: {_count(self.rows_read, 'row')} read from {self._inputs()}"]
        if self.files_skipped:
            lines.append(f"  files already processed, skipped: {len(self.files_skipped)} ({', '.join(self.files_skipped[:5])})")
        if self.files_waiting:
            lines.append(f"  files still being written, left for the next run: {', '.join(self.files_waiting)}")
        lines.append(f"  events mapped:        {self.events_mapped}")
        if self.sends:
            lines.append(f"  new in the ledger:    {self.events_new}")
        lines.append(f"  duplicates skipped:   {self.duplicates}")
        lines.append(f"  rows refused:         {self.refused_total}")
        lines += [f"    {reason:<26}{count}" for reason, count in self.refused.most_common()]
        if self.expired_on_read:
            lines.append(f"  expired when read (older than Meta accepts, not sent): {self.expired_on_read}")
        if self.dropped_values:
            dropped = ", ".join(f"{field} {count}" for field, count in self.dropped_values.most_common())
            lines.append(f"  invalid values dropped (row kept): {dropped}")
        for source, columns in self.ignored_columns.items():
            if columns:
                lines.append(f"  {source}: columns ignored (not in the template): {', '.join(sorted(columns))}")
        lines += [f"  file not read: {error}" for error in self.file_errors]
        lines += [f"  query window not read: {error}" for error in self.window_errors]
        lines += [f"  file not moved: {error}" for error in self.files_not_moved]
        lines += self._lead_lines()
        if self.sends:
            lines += self._delivery_lines()
        if self.quarantine_path:
            what = "refused and expired rows are" if self.expired_on_read else "refused rows are"
            lines.append(f"  {what} listed in {self.quarantine_path}")
        return "\n".join(lines + self._history_lines())

    def _inputs(self) -> str:
        parts = [_count(len(self.files_read), "file")]
        if self.windows_read:
            parts.append(_count(len(self.windows_read), "query window"))
        return " and ".join(parts)

    def _lead_lines(self) -> list[str]:
        lines = [f"  not sent for want of consent: {count} ({reason})" for reason, count in self.withheld.most_common()]
        if self.cancelled:
            lines.append(f"  cancelled in the CRM (never sent): {self.cancelled}")
        if self.refunds:
            lines.append(f"  refunds reported for cancellations of sent conversions: {self.refunds}")
        if self.stage_gaps_total:
            lines.append(f"  leads that skipped earlier stages: {self.stage_gaps_total}")
            lines += [f"    {gap}" for gap in self.stage_gaps[:10]]
        return lines

    def _history_lines(self) -> list[str]:
        lines = []
        if self.coverage:
            lines += ["", table_text(["event_name", "events", *COVERAGE_KEYS], self.coverage_rows(),
                                     title="match-key coverage (share of events carrying each key)")]
        if self.durations:
            lines.append("  took " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.durations.items()))
        if self.report_path:
            lines.append(f"  run report: {self.report_path}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """The JSON run report: figures, file names, reasons and Meta's messages; no personal data."""
        coverage = {name: {"events": counts["events"],
                           **{key: {"count": counts[key], "share": _share(counts[key], counts["events"])}
                              for key in COVERAGE_KEYS}}
                    for name, counts in sorted(self.coverage.items())}
        since, until = self.window or (None, None)
        return {
            "run_id": self.run_id, "mode": self.mode, "started_by": self.started_by,
            "host": socket.gethostname(), "pid": os.getpid(),
            "started_at": _iso(self.started_at), "finished_at": _iso(self.finished_at),
            "durations_seconds": {k: round(v, 3) for k, v in self.durations.items()},
            "window": None if self.window is None else {"since": _iso(since), "until": _iso(until)},
            "sources": self.sources, "exit_code": self.exit_code_or_error(), "error": self.error,
            "rows_read": self.rows_read, "events_mapped": self.events_mapped, "events_new": self.events_new,
            "duplicates_skipped": self.duplicates,
            "refused": {"total": self.refused_total, "by_reason": dict(self.refused.most_common())},
            "invalid_values_dropped": dict(self.dropped_values),
            "withheld_for_consent": dict(self.withheld), "cancelled": self.cancelled, "refunds": self.refunds,
            "stage_gaps": self.stage_gaps, "stage_gaps_total": self.stage_gaps_total,
            "ignored_columns": {source: sorted(cols) for source, cols in self.ignored_columns.items()},
            "query_windows_read": self.windows_read, "query_windows_not_read": self.window_errors,
            "files": {"read": self.files_read, "skipped": self.files_skipped, "not_read": self.file_errors,
                      "not_moved": self.files_not_moved, "left_for_next_run": self.files_waiting},
            "sent": self.sent, "failed": self.failed,
            "expired": {"total": self.expired + self.expired_on_read, "when_read": self.expired_on_read,
                        "while_pending": self.expired},
            "pending_left": self.pending_left, "expiring_within_24h": self.expiring_soon,
            "batches_not_delivered": self.batches_failed, "delivery_errors": self.delivery_errors,
            "refused_by_meta": [vars(r) for r in self.rejections], "halted": self.halted,
            "warnings": self.warnings,
            "quarantine_path": str(self.quarantine_path) if self.quarantine_path else None,
            "coverage": coverage,
        }

    def exit_code_or_error(self) -> int:
        """The exit code, or the error's when the run stopped on one."""
        return self.error_code if self.error else self.exit_code()

    def write_json(self, folder: Path) -> Path:
        """Write ``run-<time>-<id>.json`` in ``folder``; returns its path."""
        stamp = datetime.fromtimestamp(self.started_at, UTC).strftime("%Y%m%dT%H%M%SZ")
        path = folder / f"run-{stamp}-{self.run_id[:8]}.json"
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        self.report_path = path
        return path

    def _delivery_lines(self) -> list[str]:
        lines = [f"  sent to Meta:         {self.sent}"]
        if self.failed:
            lines.append(f"  refused by Meta:      {self.failed} (fix the cause, then `capi-uploader retry`)")
            lines += [f"    {r.event_name} {r.event_id}: {r.message} (fbtrace_id {r.fbtrace_id})"
                      for r in self.rejections[:10]]
        if self.expired:
            lines.append(f"  expired (too old for Meta, not sent): {self.expired}")
        lines.append(f"  still pending:        {self.pending_left}")
        if self.batches_failed:
            lines.append(f"  batches not delivered: {self.batches_failed} (their events stay pending for the next run)")
            lines += [f"    {error}" for error in self.delivery_errors[:5]]
        if self.halted:
            lines.append(f"  {self.halted}")
        if self.expiring_soon:
            lines.append(f"  WARNING: {self.expiring_soon} pending events pass Meta's age limit within 24 hours")
        lines += [f"  warning: {warning}" for warning in self.warnings]
        return lines


def _share(count: int, total: int) -> float:
    return round(count / total, 4) if total else 0.0


def _percent(count: int, total: int) -> str:
    return f"{100 * count / total:.0f}%" if total else "-"


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
