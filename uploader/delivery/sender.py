"""Deliver events to Meta: fresh ones as the chunks are read (``Sender.offer``), then the
ledger's pending ones, oldest first; several batches in flight, each event marked sent only on
Meta's full receipt.

Threads only speak HTTP; every ledger write happens here, in the calling thread, as soon as a
batch's outcome is known, so a crash loses at most the outcomes of the batches in flight at
that moment (their events are sent again, with the same ids, by the next run).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from uploader.delivery.classify import Action, is_throttling
from uploader.delivery.graph import Accepted, Answer, GraphClient, GraphError, credentials_advice
from uploader.delivery.isolate import BatchOutcome, deliver_batch
from uploader.delivery.retry import Retrier, RetryPolicy
from uploader.errors import CredentialsError
from uploader.ledger import PENDING, Ledger, StoredEvent
from uploader.ledger.keys import KeySet
from uploader.settings import MetaSettings

log = logging.getLogger("capi_uploader.delivery")

# Past this many events refused one by one in a batch, the error is not about single events.
MAX_REJECTED_PER_BATCH = 10
# Events Meta refused that a run names (the run report lists them); all are counted, and each one's
# error is in the ledger (capi-uploader status), so a run refusing many holds no more than these.
REJECTIONS_KEPT = 100


@dataclass(frozen=True)
class Rejection:
    """One event Meta refused, for the summary."""

    event_name: str
    event_id: str
    message: str
    fbtrace_id: str | None


@dataclass
class DeliveryResult:
    """What one delivery pass did."""

    sent: int = 0
    failed: int = 0
    expired: int = 0
    requests: int = 0
    retries: int = 0
    batches_failed: int = 0
    errors: list[str] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    halted: str | None = None
    pending_left: int = 0
    expiring_soon: int = 0


def preflight(client: GraphClient) -> str | None:
    """Check the token and dataset before any work. Raises CredentialsError (or
    EndpointUnreachable) when the run cannot succeed; returns a warning when Meta
    could not be asked right now, so the run still records what it reads."""
    answer = client.preflight()
    if isinstance(answer, Accepted):
        return None
    if answer.action is Action.STOP:
        raise CredentialsError(credentials_advice(answer))
    return f"could not check the token and dataset first ({answer.describe()}); going on"


class Sender:
    """Sends batches to Meta, up to ``meta.concurrency`` at a time, and writes each outcome to the
    ledger as soon as it is known, in the calling thread.

    Fresh events (``offer``) come straight from a mapped chunk and are not in the ledger yet: their
    outcome is their first record (sent, failed, or pending for the next run). Held events come from
    the ledger's pending queue (``send_backlog``). Either way a crash loses at most the outcomes of
    the batches in flight, whose events are sent again, with the same ids, by the next run.
    """

    def __init__(self, ledger: Ledger, client: GraphClient, meta: MetaSettings, clock: Callable[[], float],
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.ledger, self.meta, self.clock = ledger, meta, clock
        self.dataset = meta.dataset_id or ""
        self.result = DeliveryResult()
        self._retrier = Retrier(RetryPolicy(meta.max_attempts, meta.retry_base_seconds,
                                            budget_seconds=meta.retry_budget_seconds), clock, sleep)
        self._client = client
        self._pool = ThreadPoolExecutor(max_workers=meta.concurrency, thread_name_prefix="capi-send")
        self._in_flight: dict[Future[BatchOutcome], list[StoredEvent]] = {}
        self._held: set[Future[BatchOutcome]] = set()  # the in-flight batches read from the ledger
        self._waiting: list[StoredEvent] = []  # fresh events not yet a full batch
        self._deferred = KeySet()  # fresh events left pending in this run

    @property
    def halted(self) -> bool:
        return self.result.halted is not None

    def unsettled(self) -> set[tuple[str, str]]:
        """Keys offered but not yet in the ledger (waiting or in flight)."""
        batches = [self._waiting, *self._in_flight.values()]
        return {(e.event_name, e.event_id) for batch in batches for e in batch}

    def offer(self, events: Sequence[StoredEvent]) -> None:
        """Queue fresh events; every full batch goes out at once."""
        self._waiting.extend(events)
        size = self.meta.batch_size
        while len(self._waiting) >= size:
            batch, self._waiting = self._waiting[:size], self._waiting[size:]
            self._submit(batch, fresh=True)

    def withdraw(self, keys: set[tuple[str, str]]) -> None:
        """Fresh events cancelled before they were handed over: they are not sent."""
        self._waiting = [e for e in self._waiting if (e.event_name, e.event_id) not in keys]

    def flush(self) -> None:
        """Send what is waiting and settle everything in flight (before a unit is committed)."""
        waiting, self._waiting = self._waiting, []
        if waiting:
            self._submit(waiting, fresh=True)
        self._settle(wait(list(self._in_flight)).done)

    def backlog_size(self) -> int:
        """How many pending events ``send_backlog`` would send now."""
        return self.ledger.count(self.dataset, PENDING) - len(self._deferred)

    def send_backlog(self) -> None:
        """Expire what Meta would refuse as too old, then send the ledger's pending events, oldest
        first (events of earlier runs, refunds, and none of this run's that failed already)."""
        self.flush()
        self.result.expired += self.ledger.expire(self.dataset, self.clock())
        for page in self.ledger.pending(self.dataset, self.meta.batch_size):
            if self.halted:
                break
            keys = [(e.event_name, e.event_id) for e in page]
            batch = [e for e, deferred in zip(page, self._deferred.among(self.dataset, keys)) if not deferred]
            if batch:
                self._submit(batch)
        self.flush()

    def close(self) -> DeliveryResult:
        """Stop the threads, after recording whatever Meta accepted; the totals of the run."""
        try:
            self._settle(wait(list(self._in_flight)).done)
        finally:
            self._pool.shutdown(wait=True)
        self.result.retries = self._retrier.retries
        self.result.pending_left = self.ledger.count(self.dataset, PENDING)
        self.result.expiring_soon = self.ledger.expiring_soon(self.dataset, self.clock())
        return self.result

    def _submit(self, batch: list[StoredEvent], fresh: bool = False) -> None:
        """Send a batch once there is room. Once sending has halted nothing more goes out: a
        fresh batch is then kept in the ledger as pending for the next run (a held one is there)."""
        if len(self._in_flight) >= self.meta.concurrency:
            done, _ = wait(list(self._in_flight), return_when=FIRST_COMPLETED)
            self._settle(done)
        if self.halted:
            if fresh:
                self.ledger.hold(self.dataset, batch, self.clock())
            return
        future = self._pool.submit(deliver_batch, batch, self._send, MAX_REJECTED_PER_BATCH)
        self._in_flight[future] = batch
        if not fresh:
            self._held.add(future)

    def _send(self, batch: Sequence[StoredEvent]) -> Answer:
        return self._retrier.call(lambda: self._client.send([event.payload for event in batch]))

    def _settle(self, done: Iterable[Future[BatchOutcome]]) -> None:
        """Record finished batches; re-raise a batch's CredentialsError after recording the others."""
        stop: CredentialsError | None = None
        for future in done:
            self._in_flight.pop(future, None)
            fresh = future not in self._held
            self._held.discard(future)
            try:
                self._record(future.result(), fresh)
            except CredentialsError as exc:
                stop = exc
        if stop is not None:
            raise stop

    def _record(self, outcome: BatchOutcome, fresh: bool) -> None:
        result, now = self.result, self.clock()
        result.requests += outcome.requests
        for events, trace in outcome.accepted:
            self.ledger.mark_sent(self.dataset, events, trace, now, fresh=fresh)
            result.sent += len(events)
            log.info("%d events accepted (fbtrace_id %s)", len(events), trace)
        for event, error in outcome.rejected:
            self.ledger.mark_failed(self.dataset, event, error.describe(), error.fbtrace_id, now)
            result.failed += 1
            if len(result.rejections) < REJECTIONS_KEPT:
                result.rejections.append(Rejection(event.event_name, event.event_id, error.describe(),
                                                   error.fbtrace_id))
            log.warning("Meta refused event %s/%s: %s", event.event_name, event.event_id, error.describe())
        for events, error in outcome.pending:
            self.ledger.mark_attempt(self.dataset, events, error.describe(), error.fbtrace_id, now)
            self._deferred.add(self.dataset, [(e.event_name, e.event_id) for e in events])
            result.batches_failed += 1
            result.errors.append(f"{error.describe()} (fbtrace_id {error.fbtrace_id})")
            log.warning("%d events not delivered, they stay pending: %s", len(events), error.describe())
        if outcome.halted is not None and result.halted is None:
            result.halted = _halt_reason(outcome.halted)


def deliver(ledger: Ledger, client: GraphClient, meta: MetaSettings, clock: Callable[[], float],
            sleep: Callable[[float], None] = time.sleep) -> DeliveryResult:
    """Expire what Meta would refuse as too old, then send every pending event of the ledger,
    oldest first. Raises CredentialsError at once (after recording what was already accepted)
    when Meta refuses the token or dataset."""
    sender = Sender(ledger, client, meta, clock, sleep)
    try:
        sender.send_backlog()
    finally:
        result = sender.close()
    return result


def _halt_reason(error: GraphError) -> str:
    cause = "Meta is throttling this account" if is_throttling(error.code) else "Meta is not answering"
    return f"{cause} ({error.describe()}): stopped sending; the rest stays pending for the next run"
