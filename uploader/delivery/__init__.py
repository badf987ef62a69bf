"""Delivery: pending events from the ledger to the Conversions API, in batches."""

from uploader.delivery.graph import Accepted, GraphClient, GraphError
from uploader.delivery.sender import DeliveryResult, deliver

__all__ = ["Accepted", "GraphClient", "GraphError", "DeliveryResult", "deliver"]
