"""What happens to a conversion after it is first seen: cancellation (and its refund),
and the Conversion Leads stage ladder. Both need the ledger, so they live here and
not in the pure mapping layer.
"""

from __future__ import annotations

from collections import defaultdict

import pandas as pd

from uploader.ledger import Ledger
from uploader.mapping.identity import lead_stage_id


def record_cancellations(ledger: Ledger, dataset: str, source: str, cancelled: pd.DataFrame,
                         refunds: pd.DataFrame, now: float) -> tuple[int, int]:
    """Cancelled conversions are never sent; a refund is recorded only for those already sent.

    Never a negative Purchase: the refund is its own event with a positive value.
    Returns (cancellations seen, refunds recorded as new).
    """
    originals = cancelled.drop_duplicates(subset=["event_name", "event_id"])
    sent = ledger.cancel(dataset, source, originals, now)
    if refunds.empty or not sent:
        return len(originals), 0
    keys = pd.Series(list(zip(refunds["original_event_name"], refunds["original_event_id"])), index=refunds.index)
    due = refunds[keys.isin(sent)].drop_duplicates(subset=["event_name", "event_id"])
    return len(originals), ledger.record(dataset, source, due, now)


def stage_gaps(ledger: Ledger, dataset: str, events: pd.DataFrame, ladder: tuple[str, ...]) -> list[str]:
    """Leads whose newest stage here skipped earlier stages that are neither here nor in the
    ledger, one line each, e.g. ``lead 1234...: 'Won' without 'Qualified'``."""
    staged = events[(events["stage_rank"] > 0) & events["lead_id"].ne("")]
    if staged.empty:
        return []
    seen = set(zip(staged["lead_id"], staged["event_name"]))
    top_stage = staged.groupby("lead_id")["stage_rank"].max()
    wanted = [(lead, ladder[rank - 1]) for lead, top in top_stage.items()
              for rank in range(1, int(top)) if (lead, ladder[rank - 1]) not in seen]
    held = ledger.existing(dataset, [(stage, lead_stage_id(stage, lead)) for lead, stage in wanted])
    missing: dict[str, list[str]] = defaultdict(list)
    for lead, stage in wanted:
        if (stage, lead_stage_id(stage, lead)) not in held:
            missing[lead].append(stage)
    return [f"lead {lead}: {ladder[int(top_stage[lead]) - 1]!r} without {', '.join(map(repr, stages))}"
            for lead, stages in missing.items()]
