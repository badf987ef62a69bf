"""Delivery: fresh events from the mapped chunks, and pending ones from the ledger, to the Conversions API.

graph (HTTP only) -> classify (what an error means) -> retry (backoff) ->
isolate (find a bad event by halving) -> sender (batches in flight, ledger writes).
"""

from uploader.delivery.graph import Accepted, GraphClient, GraphError
from uploader.delivery.sender import DeliveryResult, Rejection, Sender, deliver, preflight

__all__ = ["Accepted", "GraphClient", "GraphError", "DeliveryResult", "Rejection", "Sender", "deliver",
           "preflight"]
