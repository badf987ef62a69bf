"""The ledger: what was read, recorded and sent. It alone decides what is sent."""

from uploader.ledger.store import (CANCELLED, EXPIRED, FAILED, PENDING, SENT, FailedEvent, Ledger, StoredEvent,
                                   ledger_failure, stop_on_ledger_errors, stored_events)

__all__ = ["Ledger", "StoredEvent", "FailedEvent", "stored_events", "ledger_failure", "stop_on_ledger_errors",
           "PENDING", "SENT", "FAILED", "EXPIRED", "CANCELLED"]
