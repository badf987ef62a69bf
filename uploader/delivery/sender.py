"""Deliver the ledger's pending events: oldest first, several batches in flight, each
event marked sent only on Meta's full receipt.

Threads only speak HTTP; every ledger write happens here, in the calling thread,
as soon as a batch's outcome is known, so a crash loses at most the outcomes of
the batches in flight at that moment (their events stay pending and go again).
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
from uploader.settings import MetaSettings

log = logging.getLogger("capi_uploader.delivery")

# Past this many events refused one by one in a batch, the error is not about single events.
MAX_REJECTED_PER_BATCH = 10


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


def deliver(ledger: Ledger, client: GraphClient, meta: MetaSettings, clock: Callable[[], float],
            sleep: Callable[[float], None] = time.sleep) -> DeliveryResult:
    """Expire what Meta would refuse as too old, then send every pending event, oldest first.

    Raises CredentialsError at once (after recording what was already accepted) when
    Meta refuses the token or dataset.
    """
    dataset = meta.dataset_id or ""
    result = DeliveryResult(expired=ledger.expire(dataset, clock()))
    policy = RetryPolicy(meta.max_attempts, meta.retry_base_seconds, budget_seconds=meta.retry_budget_seconds)
    retrier = Retrier(policy, clock, sleep)

    def send(batch: Sequence[StoredEvent]) -> Answer:
        return retrier.call(lambda: client.send([event.payload for event in batch]))

    with ThreadPoolExecutor(max_workers=meta.concurrency, thread_name_prefix="capi-send") as pool:
        _pump(ledger, pool, send, meta, result, clock)
    result.retries = retrier.retries
    result.pending_left = ledger.count(dataset, PENDING)
    result.expiring_soon = ledger.expiring_soon(dataset, clock())
    return result


def _pump(ledger: Ledger, pool: ThreadPoolExecutor, send: Callable[[Sequence[StoredEvent]], Answer],
          meta: MetaSettings, result: DeliveryResult, clock: Callable[[], float]) -> None:
    """Keep up to ``meta.concurrency`` batches in flight; settle each as it completes."""
    in_flight: set[Future[BatchOutcome]] = set()
    try:
        for page in ledger.pending(meta.dataset_id or "", meta.batch_size):
            in_flight.add(pool.submit(deliver_batch, page, send, MAX_REJECTED_PER_BATCH))
            if len(in_flight) >= meta.concurrency:
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                _settle(done, ledger, meta, result, clock)
            if result.halted:
                break
    finally:
        # Whatever Meta accepted must reach the ledger, even when the run is stopping.
        _settle(wait(in_flight).done, ledger, meta, result, clock)


def _settle(done: Iterable[Future[BatchOutcome]], ledger: Ledger, meta: MetaSettings,
            result: DeliveryResult, clock: Callable[[], float]) -> None:
    """Record finished batches; re-raise a batch's CredentialsError after recording the others."""
    stop: CredentialsError | None = None
    for future in done:
        try:
            _record(future.result(), ledger, meta.dataset_id or "", result, clock())
        except CredentialsError as exc:
            stop = exc
    if stop is not None:
        raise stop


def _record(outcome: BatchOutcome, ledger: Ledger, dataset: str, result: DeliveryResult, now: float) -> None:
    result.requests += outcome.requests
    for events, trace in outcome.accepted:
        ledger.mark_sent(dataset, events, trace, now)
        result.sent += len(events)
        log.info("%d events accepted (fbtrace_id %s)", len(events), trace)
    for event, error in outcome.rejected:
        ledger.mark_failed(dataset, event, error.describe(), error.fbtrace_id, now)
        result.failed += 1
        result.rejections.append(Rejection(event.event_name, event.event_id, error.describe(), error.fbtrace_id))
        log.warning("Meta refused event %s/%s: %s", event.event_name, event.event_id, error.describe())
    for events, error in outcome.pending:
        ledger.mark_attempt(dataset, events, error.describe(), error.fbtrace_id, now)
        result.batches_failed += 1
        result.errors.append(f"{error.describe()} (fbtrace_id {error.fbtrace_id})")
        log.warning("%d events not delivered, they stay pending: %s", len(events), error.describe())
    if outcome.halted is not None and result.halted is None:
        result.halted = _halt_reason(outcome.halted)


def _halt_reason(error: GraphError) -> str:
    cause = "Meta is throttling this account" if is_throttling(error.code) else "Meta is not answering"
    return f"{cause} ({error.describe()}): stopped sending; the rest stays pending for the next run"
