"""The ledger: what was read, recorded and sent. It alone decides what is sent."""

from uploader.ledger.store import CANCELLED, EXPIRED, FAILED, PENDING, SENT, FailedEvent, Ledger, StoredEvent

__all__ = ["Ledger", "StoredEvent", "FailedEvent", "PENDING", "SENT", "FAILED", "EXPIRED", "CANCELLED"]
