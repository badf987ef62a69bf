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
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from connectors import Unit, open_source
from uploader.delivery import GraphClient, deliver
from uploader.errors import SourceError
from uploader.ledger import Ledger
from uploader.mapping.engine import MappedChunk, map_chunk
from uploader.report import Quarantine, RunReport
from uploader.settings import Settings, SourceSettings, require_delivery

if TYPE_CHECKING:  # only the delivery layer imports httpx for real
    import httpx

log = logging.getLogger("capi_uploader.pipeline")


def run_once(settings: Settings, *, send: bool = True, clock: Callable[[], float] = time.time,
             transport: httpx.BaseTransport | None = None) -> RunReport:
    """Run one pass. ``send=False`` is ``validate``: nothing is recorded or sent."""
    if send:
        require_delivery(settings.meta)
    started = clock()
    report = RunReport(mode="run" if send else "validate")
    stamp = datetime.fromtimestamp(started, UTC).strftime("%Y%m%dT%H%M%SZ")
    quarantine = Quarantine(settings.quarantine_dir / f"quarantine-{stamp}.csv")
    ledger = Ledger.open(settings.ledger_url)
    try:
        for source in settings.sources:
            _read_source(source, settings, ledger, quarantine, report, started, send)
        if send:
            _deliver(settings, ledger, report, clock, transport)
    finally:
        quarantine.close()
        ledger.close()
    report.quarantine_path = quarantine.path if quarantine.written else None
    return report


def _read_source(source: SourceSettings, settings: Settings, ledger: Ledger, quarantine: Quarantine,
                 report: RunReport, now: float, send: bool) -> None:
    for unit in open_source(source, settings.chunk_size).units():
        if ledger.is_processed(source.name, unit.key):
            report.files_skipped.append(unit.label)
            continue
        try:
            rows = _read_unit(unit, source, settings, ledger, quarantine, report, now, send)
        except (OSError, SourceError) as exc:
            report.file_errors.append(f"{source.name}/{unit.label}: {exc}")
            continue
        report.files_read.append(unit.label)
        if send:
            ledger.mark_processed(source.name, unit.key, unit.label, rows, now)


def _read_unit(unit: Unit, source: SourceSettings, settings: Settings, ledger: Ledger,
               quarantine: Quarantine, report: RunReport, now: float, send: bool) -> int:
    rows = 0
    for raw in unit.chunks():
        mapped = map_chunk(raw, source, now)
        rows += len(raw.frame) + len(raw.bad_lines)
        quarantine.add(source.name, unit.label, mapped.refused)
        _count(report, source.name, mapped)
        unique = mapped.events.drop_duplicates(subset=["event_name", "event_id"])
        if send:
            report.events_new += ledger.record(settings.meta.dataset_id or "", source.name, unique, now)
            report.duplicates = report.events_mapped - report.events_new
        else:
            report.duplicates += len(mapped.events) - len(unique)
    report.rows_read += rows
    return rows


def _count(report: RunReport, source: str, mapped: MappedChunk) -> None:
    report.events_mapped += len(mapped.events)
    report.refused.update(mapped.refused["reason"].tolist())
    report.dropped_values.update(mapped.dropped)
    report.ignored_columns.setdefault(source, set()).update(mapped.ignored_columns)
    if report.sample_payload is None and not mapped.events.empty:
        report.sample_payload = mapped.events["payload"].iloc[0]


def _deliver(settings: Settings, ledger: Ledger, report: RunReport, clock: Callable[[], float],
             transport: httpx.BaseTransport | None) -> None:
    meta = settings.meta
    with GraphClient(meta, transport=transport) as client:
        result = deliver(ledger, client, meta.dataset_id or "", meta.batch_size, clock)
    report.sent, report.expired = result.sent, result.expired
    report.batches_failed, report.delivery_errors = result.batches_failed, result.errors
    report.pending_left = result.pending_left
