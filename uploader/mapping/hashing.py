"""SHA-256 hashing of normalised user_data values (Conversions API `em`, `ph`, ...).

Meta wants the lowercase hex SHA-256 of the UTF-8 bytes of the normalised value, and a value that
already is a SHA-256 digest must be passed through, never hashed twice.
"""

from __future__ import annotations

import hashlib

import pandas as pd

_SHA256_PATTERN = r"[0-9a-fA-F]{64}"


def _as_text(values: pd.Series) -> pd.Series:
    """Missing -> "", everything else as Python str, dtype object (same index)."""
    return values.astype(object).fillna("").astype(str).astype(object)


def is_sha256(values: pd.Series) -> pd.Series:
    """True where the value is exactly 64 hex digits (any case); missing -> False."""
    return _as_text(values).str.fullmatch(_SHA256_PATTERN).astype(bool)


def sha256_hex(values: pd.Series) -> pd.Series:
    """Lowercase hex SHA-256 of each value's UTF-8 bytes.

    "" (and missing) stays "", a value that already is a 64-hex digest passes through lowercased.
    Only the unique values are hashed, which matters for low-cardinality keys (country, gender).
    """
    text = _as_text(values)
    hashed = is_sha256(text)
    todo = text[text.ne("") & ~hashed].unique()
    # surrogatepass: a stray lone surrogate must not crash a whole batch; it never occurs in
    # normaliser output, so this only affects callers hashing raw strings.
    digests = {v: hashlib.sha256(v.encode("utf-8", "surrogatepass")).hexdigest() for v in todo}
    out = text.map(digests).astype(object).fillna("")
    return out.where(~hashed, text.str.lower()).astype(object)
