"""Exponential backoff with full jitter, bounded per batch and per run."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from uploader.delivery.classify import Action
from uploader.delivery.graph import Answer, GraphError


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before leaving a batch pending for the next run."""

    max_attempts: int = 5
    base_seconds: float = 1.0
    max_seconds: float = 60.0
    budget_seconds: float = 600.0  # total backoff a run may spend, across all its batches


class Retrier:
    """Calls a send function until it gets an answer that is not worth retrying.

    Shared by the delivery threads: the run's time budget is one deadline for all.
    """

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float],
                 sleep: Callable[[float], None], rng: random.Random | None = None) -> None:
        self.policy = policy
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.deadline = clock() + policy.budget_seconds
        self.retries = 0
        self._lock = threading.Lock()

    def call(self, send: Callable[[], Answer]) -> Answer:
        """The first answer that is a receipt or not retryable; else the last transient error."""
        for attempt in range(1, self.policy.max_attempts + 1):
            answer = send()
            if not (isinstance(answer, GraphError) and answer.action is Action.RETRY):
                return answer
            delay = self._delay(attempt)
            if attempt == self.policy.max_attempts or self.clock() + delay > self.deadline:
                return answer
            with self._lock:
                self.retries += 1
            self.sleep(delay)
        raise AssertionError("unreachable: the loop returns on its last attempt")

    def _delay(self, attempt: int) -> float:
        # Full jitter (AWS architecture blog): spreads retries of concurrent batches apart.
        ceiling = min(self.policy.max_seconds, self.policy.base_seconds * 2 ** (attempt - 1))
        with self._lock:
            return self.rng.uniform(0, ceiling)
