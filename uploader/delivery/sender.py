"""Deliver the ledger's pending events in batches; mark them sent only on Meta's full receipt."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from uploader.delivery.graph import Accepted, GraphClient
from uploader.errors import EndpointUnreachable, TransientDeliveryError
from uploader.ledger import PENDING, Ledger

log = logging.getLogger("capi_uploader.delivery")


@dataclass
class DeliveryResult:
    """What one delivery pass did."""

    sent: int = 0
    expired: int = 0
    batches_sent: int = 0
    batches_failed: int = 0
    errors: list[str] = field(default_factory=list)
    pending_left: int = 0


def deliver(ledger: Ledger, client: GraphClient, dataset_id: str, batch_size: int,
            clock: Callable[[], float]) -> DeliveryResult:
    """Expire what Meta would refuse as too old, then send every pending event, oldest first.

    A batch Meta does not fully confirm stays pending for the next run. A credentials
    error stops the pass at once (raised to the caller); so does an unreachable endpoint
    before anything was sent.
    """
    result = DeliveryResult(expired=ledger.expire(dataset_id, clock()))
    for batch in ledger.pending(dataset_id, batch_size):
        try:
            answer = client.send([event.payload for event in batch])
        except EndpointUnreachable as exc:
            if result.batches_sent == 0:
                raise
            _failed(result, str(exc))
            break  # the rest stays pending; no point knocking on a closed door
        except TransientDeliveryError as exc:
            ledger.mark_attempt(dataset_id, batch, str(exc), None, clock())
            _failed(result, str(exc))
            continue
        if isinstance(answer, Accepted):
            ledger.mark_sent(dataset_id, batch, answer.fbtrace_id, clock())
            result.sent += len(batch)
            result.batches_sent += 1
            log.info("batch of %d events accepted (fbtrace_id %s)", len(batch), answer.fbtrace_id)
        else:
            ledger.mark_attempt(dataset_id, batch, answer.describe(), answer.fbtrace_id, clock())
            _failed(result, f"{answer.describe()} (fbtrace_id {answer.fbtrace_id})")
    result.pending_left = ledger.count(dataset_id, PENDING)
    return result


def _failed(result: DeliveryResult, message: str) -> None:
    result.batches_failed += 1
    result.errors.append(message)
    log.warning("batch not delivered, its events stay pending: %s", message)
