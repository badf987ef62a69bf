"""Validation before sending: which mapped rows Meta would refuse, and why.

Works on the mapping layer's output (hashed personal data, plain event fields),
so no raw personal data is ever needed to explain a refusal.
"""

from uploader.validation.rules import REASONS, WINDOW_DAYS, refusals, window_days

__all__ = ["REASONS", "WINDOW_DAYS", "refusals", "window_days"]
