"""One pass: read every source, map, validate, record in the ledger, deliver what is pending.

``run_once`` is the single entry point: the CLI's ``run`` and ``validate`` and the
demo all call it. Each chunk is committed to the ledger before the next is read,
and a file is marked processed only after all its chunks are recorded, so a crash
at any point re-reads at most one file and the ledger drops what it already holds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from connectors import Unit, Window, open_source
from uploader.delivery import GraphClient, deliver, preflight
from uploader.errors import SourceError
from uploader.ledger import Ledger
from uploader.mapping.engine import MappedChunk, map_chunk
from uploader.report import Quarantine, RunReport
from uploader.settings import Settings, SourceSettings, require_delivery

if TYPE_CHECKING:  # only the delivery layer imports httpx for real
    import httpx

log = logging.getLogger("capi_uploader.pipeline")


def run_once(settings: Settings, *, send: bool = True, clock: Callable[[], float] = time.time,
             transport: httpx.BaseTransport | None = None, window: Window | None = None,
             sleep: Callable[[float], None] = time.sleep) -> RunReport:
    """Run one pass. ``send=False`` is ``validate``: nothing is recorded or sent.
    A ``window`` (a backfill) re-reads that range of every source.

    Before anything is read, one cheap request checks the token and dataset, so a bad
    token stops the run (CredentialsError, exit 2) with the ledger untouched.
    """
    started = clock()
    report = RunReport(mode="run" if send else "validate")
    stamp = datetime.fromtimestamp(started, UTC).strftime("%Y%m%dT%H%M%SZ")
    with ExitStack() as stack:
        client = _connect(settings, transport, report, stack) if send else None
        ledger = Ledger.open(settings.ledger_url)
        stack.callback(ledger.close)
        quarantine = Quarantine(settings.quarantine_dir / f"quarantine-{stamp}.csv")
        stack.callback(quarantine.close)
        for source in settings.sources:
            _Reader(settings, source, ledger, quarantine, report, started, send).read(window)
        if client is not None:
            _deliver(settings, ledger, client, report, clock, sleep)
    report.quarantine_path = quarantine.path if quarantine.written else None
    return report


def requeue_failed(settings: Settings, clock: Callable[[], float] = time.time) -> tuple[int, int]:
    """Failed events back to pending; those now too old become expired. Returns both counts."""
    require_delivery(settings.meta)
    ledger = Ledger.open(settings.ledger_url)
    try:
        return ledger.requeue_failed(settings.meta.dataset_id or "", clock())
    finally:
        ledger.close()


def _connect(settings: Settings, transport: httpx.BaseTransport | None, report: RunReport,
             stack: ExitStack) -> GraphClient:
    require_delivery(settings.meta)
    client = stack.enter_context(GraphClient(settings.meta, transport=transport))
    warning = preflight(client)
    if warning:
        log.warning(warning)
        report.warnings.append(warning)
    return client


class _Reader:
    """Reads one source into the ledger, unit by unit, committing each unit when it is complete."""

    def __init__(self, settings: Settings, source: SourceSettings, ledger: Ledger, quarantine: Quarantine,
                 report: RunReport, now: float, send: bool) -> None:
        self.settings, self.source, self.ledger = settings, source, ledger
        self.quarantine, self.report, self.now, self.send = quarantine, report, now, send

    def read(self, window: Window | None) -> None:
        for unit in open_source(self.source, self.settings.chunk_size, self.now).units(window):
            if unit.is_done(self.ledger):
                self.report.files_skipped.append(unit.label)
                continue
            try:
                rows = self._read_unit(unit)
            except (OSError, SourceError) as exc:
                log.warning("%s/%s not read: %s", self.source.name, unit.label, exc)
                self.report.file_errors.append(f"{self.source.name}/{unit.label}: {exc}")
                continue
            self.report.files_read.append(unit.label)
            if self.send:
                unit.commit(self.ledger, rows, self.now)

    def _read_unit(self, unit: Unit) -> int:
        rows = 0
        for raw in unit.chunks():
            mapped = map_chunk(raw, self.source, self.now)
            rows += len(raw.frame) + len(raw.bad_lines)
            self.quarantine.add(self.source.name, unit.label, mapped.refused)
            _count(self.report, self.source.name, mapped)
            self._record(mapped)
        self.report.rows_read += rows
        return rows

    def _record(self, mapped: MappedChunk) -> None:
        unique = mapped.events.drop_duplicates(subset=["event_name", "event_id"])
        if self.send:
            dataset = self.settings.meta.dataset_id or ""
            self.report.events_new += self.ledger.record(dataset, self.source.name, unique, self.now)
            self.report.duplicates = self.report.events_mapped - self.report.events_new
        else:
            self.report.duplicates += len(mapped.events) - len(unique)


def _count(report: RunReport, source: str, mapped: MappedChunk) -> None:
    report.events_mapped += len(mapped.events)
    report.refused.update(mapped.refused["reason"].tolist())
    report.dropped_values.update(mapped.dropped)
    report.ignored_columns.setdefault(source, set()).update(mapped.ignored_columns)
    if report.sample_payload is None and not mapped.events.empty:
        report.sample_payload = mapped.events["payload"].iloc[0]


def _deliver(settings: Settings, ledger: Ledger, client: GraphClient, report: RunReport,
             clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
    result = deliver(ledger, client, settings.meta, clock, sleep)
    report.sent, report.failed, report.expired = result.sent, result.failed, result.expired
    report.batches_failed, report.delivery_errors = result.batches_failed, result.errors
    report.rejections, report.halted = result.rejections, result.halted
    report.pending_left, report.expiring_soon = result.pending_left, result.expiring_soon
