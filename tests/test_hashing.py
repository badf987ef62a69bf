"""SHA-256 of normalised user_data: Meta's published vectors, pass-through, shape of the output."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from uploader.mapping.hashing import is_sha256, sha256_hex

# Digests Meta publishes on conversions-api/parameters/customer-information-parameters for its
# example values, checked against `printf %s VALUE | sha256sum` when this file was written.
META_VECTORS = {
    "john_smith@gmail.com": "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f",
    "16505551212": "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176",
    "mary": "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec",
    "19970216": "01acdbf6ec7b4f478a225f1a246e5d6767eeab1a7ffa17f025265b5b94f40f0c",
    "us": "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621",
    # Meta's non-Latin example, NFC UTF-8 bytes (computed with sha256sum, not published).
    "valéry": "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c",
}


@pytest.mark.parametrize("plain, digest", META_VECTORS.items())
def test_meta_vectors(plain: str, digest: str) -> None:
    assert hashlib.sha256(plain.encode("utf-8")).hexdigest() == digest  # guards the table itself
    assert sha256_hex(pd.Series([plain])).tolist() == [digest]


def test_empty_missing_and_prehashed() -> None:
    upper = META_VECTORS["mary"].upper()
    out = sha256_hex(pd.Series(["", None, np.nan, upper, "mary"], dtype=object))
    assert out.tolist() == ["", "", "", META_VECTORS["mary"], META_VECTORS["mary"]]
    assert out.dtype == object


def test_never_hashes_twice() -> None:
    once = sha256_hex(pd.Series(["mary"]))
    assert sha256_hex(once).tolist() == once.tolist()


def test_keeps_index_with_duplicate_labels_and_str_dtype() -> None:
    s = pd.Series(["us", "mary", "us", None], index=[7, 7, 3, 3], dtype="str", name="x")
    out = sha256_hex(s)
    assert list(out.index) == [7, 7, 3, 3] and out.name == "x" and out.dtype == object
    assert out.tolist() == [META_VECTORS["us"], META_VECTORS["mary"], META_VECTORS["us"], ""]


@pytest.mark.parametrize("value, expected", [
    ("a" * 64, True), ("A" * 64, True), ("0" * 64, True), ("a" * 63, False), ("a" * 65, False),
    ("g" * 64, False), (" " + "a" * 64, False), ("", False), (None, False),
])
def test_is_sha256(value: str | None, expected: bool) -> None:
    out = is_sha256(pd.Series([value], dtype=object))
    assert out.dtype == bool and out.tolist() == [expected]
