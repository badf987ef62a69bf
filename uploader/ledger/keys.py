"""A compact set of event keys (dataset, event_name, event_id): 16 bytes a key.

The ledger keeps the keys of the events it journaled since its last fold (``Ledger.existing`` must
answer for them before they reach ``events``), and the sender those of the events a run left
pending. A Python set of key tuples costs about 200 bytes a key; here each key is its 128-bit
BLAKE2b digest, held as two uint64 columns in a few sorted runs, merged as they grow (like the
levels of an LSM tree), and looked up with numpy's binary search. Two keys share a digest as
rarely as two conversions share their 128-bit event id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np


class KeySet:
    """Keys added, and which of some keys are among them. ``len`` counts distinct keys."""

    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []  # (hi, lo) sorted by hi, each run

    def add(self, dataset_id: str, keys: Iterable[tuple[str, str]]) -> None:
        hi, lo = _digests(dataset_id, keys)
        if not len(hi):
            return
        self._runs.append(_sorted(hi, lo))
        # Merge while the newest run is as large as the one before: log2(n) runs, each key moved
        # about log2(n) times in all.
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= len(self._runs[-1][0]):
            newer, older = self._runs.pop(), self._runs.pop()
            self._runs.append(_sorted(np.concatenate([older[0], newer[0]]), np.concatenate([older[1], newer[1]])))

    def among(self, dataset_id: str, keys: Sequence[tuple[str, str]]) -> list[bool]:
        """For each key, whether it was added."""
        if not self._runs:  # nothing to find: spare the digests (a backlog pass with nothing deferred)
            return [False] * len(keys)
        hi, lo = _digests(dataset_id, keys)
        found = np.zeros(len(hi), dtype=bool)
        for run_hi, run_lo in self._runs:
            found |= _in_run(run_hi, run_lo, hi, lo)
        return found.tolist()

    def __len__(self) -> int:
        if not self._runs:
            return 0
        pairs = np.stack([np.concatenate([run[0] for run in self._runs]),
                          np.concatenate([run[1] for run in self._runs])], axis=1)
        return len(np.unique(pairs, axis=0))

    def __bool__(self) -> bool:
        return bool(self._runs)

    def clear(self) -> None:
        self._runs.clear()


def _digests(dataset_id: str, keys: Iterable[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    """Each key's 16-byte BLAKE2b digest as (high, low) uint64 columns. Lengths prefix the parts,
    so no two different keys are the same text whatever characters their ids hold."""
    head = f"{len(dataset_id)}:{dataset_id}"
    raw = b"".join(hashlib.blake2b(f"{head}{len(name)}:{name}{event_id}".encode("utf-8", "surrogatepass"),
                                   digest_size=16).digest() for name, event_id in keys)
    pairs = np.frombuffer(raw, dtype="<u8").reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def _sorted(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(hi, kind="stable")
    return hi[order], lo[order]


def _in_run(run_hi: np.ndarray, run_lo: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Whether each (hi, lo) is in the run: a binary search on hi, then lo compared. Keys whose
    hi occurs more than once in the run (about one in 10**13 runs of 250,000) are checked one by one."""
    left = np.searchsorted(run_hi, hi, side="left")
    right = np.searchsorted(run_hi, hi, side="right")
    at = np.minimum(left, len(run_hi) - 1)
    found = (right - left == 1) & (run_lo[at] == lo)
    for i in np.flatnonzero(right - left > 1):
        found[i] = bool((run_lo[left[i]:right[i]] == lo[i]).any())
    return found
