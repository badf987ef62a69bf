"""Deliver one batch; when Meta rejects it for a bad event, find that event by halving.

Meta rejects a whole request when one event in it is invalid and does not say
which one in a machine-readable way, so the batch is split: the half Meta takes
is delivered, the half it refuses is split again. One bad event in n costs about
log2(n) to 2*log2(n) extra requests, not n: when the left half goes through, the
right half must hold the bad event and is split without being sent whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from uploader.delivery.classify import Action
from uploader.delivery.graph import Accepted, Answer, GraphError, credentials_advice
from uploader.errors import CredentialsError
from uploader.ledger import StoredEvent

Send = Callable[[Sequence[StoredEvent]], Answer]


@dataclass
class BatchOutcome:
    """What happened to each event of one batch."""

    accepted: list[tuple[Sequence[StoredEvent], str]] = field(default_factory=list)  # with fbtrace_id
    rejected: list[tuple[StoredEvent, GraphError]] = field(default_factory=list)
    pending: list[tuple[Sequence[StoredEvent], GraphError]] = field(default_factory=list)
    requests: int = 0

    @property
    def halted(self) -> GraphError | None:
        """A transient error that outlasted its retries: the run should stop sending."""
        return next((error for _, error in self.pending if error.action is Action.RETRY), None)


def deliver_batch(events: Sequence[StoredEvent], send: Send, max_rejected: int) -> BatchOutcome:
    """Deliver ``events``, isolating bad ones. Raises CredentialsError when Meta refuses the
    token or dataset. At most ``max_rejected`` events are marked rejected per batch; past
    that the error looks systematic and the rest is left pending."""
    outcome = BatchOutcome()
    _deliver(events, send, outcome, max_rejected, answered=None)
    return outcome


def _deliver(events: Sequence[StoredEvent], send: Send, outcome: BatchOutcome, cap: int,
             answered: Answer | None) -> None:
    answer = answered or _send(events, send, outcome)
    if isinstance(answer, Accepted):
        outcome.accepted.append((events, answer.fbtrace_id))
    elif answer.action is Action.STOP:
        raise CredentialsError(credentials_advice(answer))
    elif answer.action is Action.RETRY or len(outcome.rejected) >= cap:
        outcome.pending.append((events, answer))
    elif len(events) == 1:
        outcome.rejected.append((events[0], answer))
    else:
        _split(events, send, outcome, cap, answer)


def _split(events: Sequence[StoredEvent], send: Send, outcome: BatchOutcome, cap: int,
           error: GraphError) -> None:
    middle = len(events) // 2
    left, right = events[:middle], events[middle:]
    left_answer = _send(left, send, outcome)
    _deliver(left, send, outcome, cap, answered=left_answer)
    # The whole was refused for a bad event: if the left half went through, the right holds it.
    _deliver(right, send, outcome, cap, answered=error if isinstance(left_answer, Accepted) else None)


def _send(events: Sequence[StoredEvent], send: Send, outcome: BatchOutcome) -> Answer:
    outcome.requests += 1
    return send(events)
