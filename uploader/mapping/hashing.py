"""SHA-256 hashing of normalised user_data values (Conversions API `em`, `ph`, ...).

Meta wants the lowercase hex SHA-256 of the UTF-8 bytes of the normalised value, and a value that
already is a SHA-256 digest must be passed through, never hashed twice.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pandas as pd

_SHA256_PATTERN = r"[0-9a-fA-F]{64}"
_SHA256 = re.compile(_SHA256_PATTERN)


def _as_text(values: pd.Series) -> pd.Series:
    """Missing -> "", everything else as Python str, dtype object (same index)."""
    return values.astype(object).fillna("").astype(str).astype(object)


def is_sha256(values: pd.Series) -> pd.Series:
    """True where the value is exactly 64 hex digits (any case); missing -> False."""
    return _as_text(values).str.fullmatch(_SHA256_PATTERN).astype(bool)


def sha256_hex(values: pd.Series) -> pd.Series:
    """Lowercase hex SHA-256 of each value's UTF-8 bytes.

    "" (and missing) stays "", a value that already is a 64-hex digest passes through lowercased.
    Each distinct value is hashed once (pd.factorize), which matters for low-cardinality keys
    (country, gender, state) and repeat customers.
    """
    texts = values.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(texts, skipna=False) != "string":
        texts = _as_text(values).to_numpy(dtype=object)  # first: 0 and 0.0 are equal, "0" and "0.0" are not
    codes, uniques = pd.factorize(texts, use_na_sentinel=False)
    digests = np.array([_digest(value) for value in uniques] or [""], dtype=object)
    return pd.Series(digests[codes], index=values.index, name=values.name, dtype=object)


def _digest(value: object) -> str:
    """One value as ``sha256_hex`` treats it (the per-value form of ``_as_text`` + hash)."""
    return digest(value if isinstance(value, str) else "" if pd.isna(value) else str(value))


def digest(text: str) -> str:
    """Lowercase hex SHA-256 of one str ("" stays "", a 64-hex digest passes through lowercased)."""
    if not text:
        return ""
    if len(text) == 64 and _SHA256.fullmatch(text):
        return text.lower()
    # surrogatepass: a stray lone surrogate must not crash a whole batch; it never occurs in
    # normaliser output, so this only affects callers hashing raw strings.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
