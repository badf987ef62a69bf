"""The run summary and the quarantine report of refused rows.

Neither ever holds raw personal data: refusals carry line numbers, reason codes
and messages about non-personal fields only.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import pandas as pd

QUARANTINE_COLUMNS = ["source", "file", "line", "order_id/event_id", "column", "reason", "message"]


class Quarantine:
    """Appends refused rows to one CSV per run; the file is created on the first refusal."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: TextIO | None = None
        self._writer: csv.writer | None = None  # type: ignore[valid-type]

    def add(self, source: str, file: str, refused: pd.DataFrame) -> None:
        if refused.empty:
            return
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._handle)
            self._writer.writerow(QUARANTINE_COLUMNS)
        rows = refused[["line", "key", "column", "reason", "message"]].assign(source=source, file=file)
        self._writer.writerows(rows[["source", "file", "line", "key", "column", "reason", "message"]]
                               .itertuples(index=False))

    @property
    def written(self) -> bool:
        return self._writer is not None

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
    files_skipped: list[str] = field(default_factory=list)
    file_errors: list[str] = field(default_factory=list)
    quarantine_path: Path | None = None
    sample_payload: str | None = None
    sent: int = 0
    expired: int = 0
    batches_failed: int = 0
    delivery_errors: list[str] = field(default_factory=list)
    pending_left: int = 0

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    def exit_code(self) -> int:
        """0: everything delivered and nothing refused; 1: the run finished but needs a look."""
        trouble = self.refused_total or self.file_errors or self.pending_left or self.expired
        return 1 if trouble else 0

    def render(self) -> str:
        """The summary a person reads after a run."""
        lines = [f"capi-uploader {self.mode}: {self.rows_read} rows read from {len(self.files_read)} file(s)"]
        if self.files_skipped:
            lines.append(f"  files already processed, skipped: {len(self.files_skipped)} ({', '.join(self.files_skipped[:5])})")
        lines.append(f"  events mapped:        {self.events_mapped}")
        if self.mode == "run":
            lines.append(f"  new in the ledger:    {self.events_new}")
        lines.append(f"  duplicates skipped:   {self.duplicates}")
        lines.append(f"  rows refused:         {self.refused_total}")
        lines += [f"    {reason:<26}{count}" for reason, count in self.refused.most_common()]
        if self.dropped_values:
            dropped = ", ".join(f"{field} {count}" for field, count in self.dropped_values.most_common())
            lines.append(f"  invalid values dropped (row kept): {dropped}")
        for source, columns in self.ignored_columns.items():
            if columns:
                lines.append(f"  {source}: columns ignored (not in the template): {', '.join(sorted(columns))}")
        lines += [f"  file not read: {error}" for error in self.file_errors]
        if self.mode == "run":
            lines += self._delivery_lines()
        if self.quarantine_path:
            lines.append(f"  refused rows are listed in {self.quarantine_path}")
        return "\n".join(lines)

    def _delivery_lines(self) -> list[str]:
        lines = [f"  sent to Meta:         {self.sent}"]
        if self.expired:
            lines.append(f"  expired (too old for Meta, not sent): {self.expired}")
        lines.append(f"  still pending:        {self.pending_left}")
        if self.batches_failed:
            lines.append(f"  batches not delivered: {self.batches_failed} (their events stay pending for the next run)")
            lines += [f"    {error}" for error in self.delivery_errors[:5]]
        return lines
