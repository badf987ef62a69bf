"""One pass: read every source, map, validate, send what is new, then what is still pending.

``run_once`` is the single entry point: the CLI's ``run``, ``validate``, ``backfill``
and ``retry``, the scheduled job and the demo all call it. A run that sends holds
the ledger's run lock and leaves a run report (see ``uploader/runs.py``).

Each chunk's events that the ledger does not hold yet go to Meta while the next chunk is
read and mapped, and each batch's outcome (sent, failed, or pending for the next run) is
its events' first record in the ledger. A file is marked processed (a SQL cursor moved on)
only once every event read from it has its outcome recorded, so a crash at any point
re-reads at most one unit, the ledger skips what it already holds, and only the batches
in flight at the crash go out twice, with the same event ids.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pandas as pd

from connectors import Unit, Window, open_source
from connectors.base import FileUnit
from uploader.delivery import Accepted, GraphClient, Sender, preflight
from uploader.errors import FileNotMoved, FileNotSettled, SourceError
from uploader.ledger import Ledger, stop_on_ledger_errors, stored_events
from uploader.lifecycle import record_cancellations, stage_gaps
from uploader.mapping.engine import MappedChunk
from uploader.mapping.workers import ChunkMapper
from uploader.progress import NoProgress, Progress
from uploader.report import Quarantine, RunReport
from uploader.runs import recorded_run
from uploader.settings import Settings, SourceSettings, require_delivery

if TYPE_CHECKING:  # only the delivery layer imports httpx for real
    import httpx

log = logging.getLogger("capi_uploader.pipeline")


def run_once(settings: Settings, *, send: bool = True, clock: Callable[[], float] = time.time,
             transport: httpx.BaseTransport | None = None, window: Window | None = None,
             sleep: Callable[[float], None] = time.sleep, progress: Progress | None = None,
             started_by: str = "cli", requeue: bool = False) -> RunReport:
    """Run one pass. ``send=False`` is ``validate``: nothing is recorded or sent.
    A ``window`` (a backfill) re-reads that range of every source; rows already too old
    for Meta there are reported as expired, not refused. Raises RunLocked (exit 3) when
    another run holds the lock.

    Before anything is read, one cheap request checks the token and dataset, so a bad
    token stops the run (CredentialsError, exit 2) with the ledger untouched. ``requeue``
    (``retry``) puts failed events back to pending once the run holds the lock.
    """
    if send:
        require_delivery(settings.meta)
    started = clock()
    report = _new_report(settings, send, window, started, started_by)
    progress = progress or NoProgress()
    stamp = datetime.fromtimestamp(started, UTC).strftime("%Y%m%dT%H%M%SZ")
    with stop_on_ledger_errors(), ExitStack() as stack:
        # The preflight comes first: a bad token stops the run before the ledger is even opened.
        client = _connect(settings, transport, report, stack) if send else None
        ledger = Ledger.open(settings.ledger_url)
        stack.callback(ledger.close)
        if send:  # then the lock: a second run exits before it reads anything
            stack.enter_context(recorded_run(ledger, settings, report, clock))
            if requeue:
                report.requeued, report.requeue_expired = ledger.requeue_failed(settings.meta.dataset_id or "",
                                                                                clock())
        quarantine = Quarantine(settings.quarantine_dir / f"quarantine-{stamp}.csv")
        stack.callback(_close_quarantine, quarantine, report)  # before the report is kept
        mapper = stack.enter_context(ChunkMapper(settings.map_workers))
        sender = None
        if client is not None:
            sender = Sender(ledger, _Counted(client, progress), settings.meta, clock, sleep)  # type: ignore[arg-type]
            stack.callback(_close_sender, sender, report)
        reading = time.monotonic()
        for source in settings.sources:
            _Reader(settings, source, ledger, quarantine, report, started, sender, progress, mapper).read(window)
        report.durations["read"] = time.monotonic() - reading
        if sender is not None:
            _send_backlog(sender, report, progress)
    return report


def _new_report(settings: Settings, send: bool, window: Window | None, started: float,
                started_by: str) -> RunReport:
    mode = ("backfill" if send else "backfill dry run") if window else ("run" if send else "validate")
    return RunReport(mode=mode, started_by=started_by, started_at=started,
                     window=(window.since, window.until) if window else None,
                     sources=[source.name for source in settings.sources])


def _close_quarantine(quarantine: Quarantine, report: RunReport) -> None:
    quarantine.close()
    report.quarantine_path = quarantine.path if quarantine.written else None


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
                 report: RunReport, now: float, sender: Sender | None, progress: Progress,
                 mapper: ChunkMapper) -> None:
        self.settings, self.source, self.ledger = settings, source, ledger
        self.quarantine, self.report, self.now, self.sender = quarantine, report, now, sender
        self.progress, self.mapper, self.backfill = progress, mapper, False

    def read(self, window: Window | None) -> None:
        self.backfill = window is not None
        for unit in open_source(self.source, self.settings.chunk_size, self.now).units(window):
            if unit.is_done(self.ledger):
                self._done_before(unit)
                continue
            self.progress.reading(self.source.name, unit.label)
            beside = Quarantine()  # a file's own refusals, spooled until it is committed
            try:
                self._read_and_commit(unit, beside)
            finally:
                beside.close()

    def _read_and_commit(self, unit: Unit, beside: Quarantine) -> None:
        try:
            rows = self._read_unit(unit, beside)
        except FileNotSettled as exc:
            self._waiting(unit, exc)
            return
        except (OSError, SourceError) as exc:
            log.warning("%s/%s not read: %s", self.source.name, unit.label, exc)
            errors = self.report.file_errors if isinstance(unit, FileUnit) else self.report.window_errors
            errors.append(f"{self.source.name}/{unit.label}: {exc}")
            return
        read = self.report.files_read if isinstance(unit, FileUnit) else self.report.windows_read
        read.append(unit.label)
        if self.sender is not None:
            self.sender.flush()  # every event of the unit has its outcome recorded: it can be committed
            self._commit(unit, rows, beside)

    def _read_unit(self, unit: Unit, beside: Quarantine) -> int:
        rows = 0
        for chunk_rows, mapped in self.mapper.map_unit(unit, self.source, self.now):
            rows += chunk_rows
            self.quarantine.add(self.source.name, unit.label, mapped.refused)
            if isinstance(unit, FileUnit):
                beside.add(self.source.name, unit.label, mapped.refused)
            _count(self.report, self.source.name, mapped, self.backfill)
            self._record(mapped)
            self.progress.rows(chunk_rows)
        self.report.rows_read += rows
        return rows

    def _commit(self, unit: Unit, rows: int, beside: Quarantine) -> None:
        try:
            unit.commit(self.ledger, rows, self.now)
        except FileNotSettled as exc:  # it changed while it was read: read again next run
            self._waiting(unit, exc)
            return
        except FileNotMoved as exc:  # recorded as done, but left where it is
            self._not_moved(unit, exc)
        if isinstance(unit, FileUnit):
            beside.save_as(unit.quarantine_path())

    def _done_before(self, unit: Unit) -> None:
        """A unit an earlier run recorded is skipped; a file of it dropped again is put away, but
        only by a run that records: ``validate`` moves nothing."""
        if self.sender is not None and isinstance(unit, FileUnit):
            try:
                unit.put_away()
            except FileNotMoved as exc:  # done, and still where it was
                self._not_moved(unit, exc)
                return
        self.report.files_skipped.append(unit.label)

    def _not_moved(self, unit: Unit, exc: FileNotMoved) -> None:
        log.warning("%s/%s: %s", self.source.name, unit.label, exc)
        self.report.files_not_moved.append(f"{self.source.name}/{unit.label}: {exc}")

    def _waiting(self, unit: Unit, exc: FileNotSettled) -> None:
        log.info("%s/%s: %s", self.source.name, unit.label, exc)
        self.report.files_waiting.append(unit.label)

    def _record(self, mapped: MappedChunk) -> None:
        unique = mapped.events.drop_duplicates(subset=["event_name", "event_id"])
        dataset = self.settings.meta.dataset_id or ""
        leads = self.source.conversion_leads
        if leads is not None and leads.ladder:
            self.report.add_stage_gaps(stage_gaps(self.ledger, dataset, unique, leads.ladder))
        if self.sender is None:  # validate: nothing is recorded
            self.report.duplicates += len(mapped.events) - len(unique)
            self.report.cancelled += len(mapped.cancelled)
            return
        withdrawn = set(zip(mapped.cancelled["event_name"], mapped.cancelled["event_id"]))
        if withdrawn:  # a conversion cancelled in the same run is not sent, and the ledger is settled first
            self.sender.withdraw(withdrawn)
            self.sender.flush()
        cancelled, refunds = record_cancellations(self.ledger, dataset, self.source.name, mapped.cancelled,
                                                  mapped.refunds, self.now)
        self.report.cancelled += cancelled
        self.report.refunds += refunds
        fresh = self._fresh(unique, dataset, self.sender)
        self.report.events_new += len(fresh)
        self.report.duplicates = self.report.events_mapped - self.report.events_new
        self.progress.sending(len(fresh))
        self.sender.offer(stored_events(fresh, self.source.name))

    def _fresh(self, unique: pd.DataFrame, dataset: str, sender: Sender) -> pd.DataFrame:
        """The events neither the ledger nor this run's batches on their way hold, in delivery order."""
        keys = list(zip(unique["event_name"], unique["event_id"]))
        held = self.ledger.existing(dataset, keys) | sender.unsettled()
        fresh = unique[[key not in held for key in keys]] if held else unique
        return fresh.sort_values(["event_time", "stage_rank", "event_name", "event_id"], kind="stable")


def _count(report: RunReport, source: str, mapped: MappedChunk, backfill: bool) -> None:
    report.events_mapped += len(mapped.events)
    reasons = mapped.refused["reason"]
    if backfill:  # the operator asked for that range: its too-old part is expired, not a data problem
        too_old = reasons.eq("too_old")
        report.expired_on_read += int(too_old.sum())
        reasons = reasons[~too_old]
    report.refused.update(reasons.tolist())
    report.add_coverage(mapped.coverage)
    report.dropped_values.update(mapped.dropped)
    report.withheld.update(mapped.withheld)
    report.ignored_columns.setdefault(source, set()).update(mapped.ignored_columns)
    if report.sample_payload is None and not mapped.events.empty:
        report.sample_payload = mapped.events["payload"].iloc[0]


def _send_backlog(sender: Sender, report: RunReport, progress: Progress) -> None:
    """After reading: the events left pending by earlier runs (and refunds), oldest first."""
    started = time.monotonic()
    progress.sending(sender.backlog_size())  # every unit read was flushed before it was committed
    sender.send_backlog()
    report.durations["deliver"] = time.monotonic() - started


def _close_sender(sender: Sender, report: RunReport) -> None:
    """Whatever Meta accepted is recorded, even when the run is stopping; then the totals."""
    result = sender.close()
    report.sent, report.failed, report.expired = result.sent, result.failed, result.expired
    report.batches_failed, report.delivery_errors = result.batches_failed, result.errors
    report.rejections, report.halted = result.rejections, result.halted
    report.pending_left, report.expiring_soon = result.pending_left, result.expiring_soon


class _Counted:
    """The Graph client, telling the progress display how many events each accepted request carried."""

    def __init__(self, client: GraphClient, progress: Progress) -> None:
        self._client, self._progress = client, progress

    def send(self, payloads: list[str]) -> object:
        answer = self._client.send(payloads)
        if isinstance(answer, Accepted):
            self._progress.sent(len(payloads))
        return answer

    def __getattr__(self, name: str) -> object:
        return getattr(self._client, name)
