"""What to do about a Graph API error, decided by its ``code`` / ``error_subcode`` alone.

Meta's messages change; its codes are documented (graph-api/guides/error-handling,
marketing-api/error-reference), so the decision never reads message text.
"""

from __future__ import annotations

from enum import Enum


class Action(Enum):
    """What the caller does about an answer that is not a full receipt."""

    RETRY = "retry later"            # back off and try again; after that, leave pending
    STOP = "stop the run"            # token or dataset access is wrong: sending more cannot help
    ISOLATE = "isolate the event"    # one (or a few) events in the batch are bad


THROTTLING = frozenset({4, 17, 341, 613} | set(range(80000, 80015)))
TEMPORARY = frozenset({1, 2})
CREDENTIALS = frozenset({190, 102, 10} | set(range(200, 300)))
DATASET_SUBCODE = 33  # code 100 with subcode 33: the dataset does not exist or cannot be used
NO_ANSWER = 0         # the status we give a request that got no HTTP answer at all


def classify(status: int, code: int | None, subcode: int | None) -> Action:
    """The action for an HTTP status and Graph error code/subcode."""
    if code in CREDENTIALS or (code == 100 and subcode == DATASET_SUBCODE):
        return Action.STOP
    if code in THROTTLING or code in TEMPORARY:
        return Action.RETRY
    if status == NO_ANSWER or status >= 500 or status == 429:
        return Action.RETRY
    if status == 200:
        # A 200 that received fewer events than sent names no bad event: keep them pending.
        return Action.RETRY
    # Code 100 with another subcode is an invalid event; an unknown 4xx is treated the same way,
    # and the isolation cap stops a systematic error from failing a whole batch one by one.
    return Action.ISOLATE


def is_throttling(code: int | None) -> bool:
    return code in THROTTLING
