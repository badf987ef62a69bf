"""The ledger: what was read, recorded and sent. It alone decides what is sent."""

from uploader.ledger.store import (CANCELLED, EXPIRED, FAILED, PENDING, SENT, FailedEvent, Ledger, StoredEvent,
                                   stored_events)

__all__ = ["Ledger", "StoredEvent", "FailedEvent", "stored_events", "PENDING", "SENT", "FAILED", "EXPIRED",
           "CANCELLED"]
