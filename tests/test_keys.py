"""The compact key set the ledger (journaled events) and the sender (events left pending) keep."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from uploader.ledger.keys import KeySet, _in_run

key_text = st.text(alphabet=st.sampled_from(["a", "b", "1", ":", "\x1f", "é", "\ud800"]), max_size=4)
keys = st.lists(st.tuples(st.sampled_from(["Lead", "Purchase", "Lead:1"]), key_text), max_size=40)


@settings(max_examples=60, deadline=None)
@given(st.lists(keys, max_size=12), keys)
def test_membership_equals_a_set_of_the_keys_added(batches: list[list[tuple[str, str]]],
                                                   asked: list[tuple[str, str]]) -> None:
    added = KeySet()
    for batch in batches:
        added.add("ds", batch)
    every = {key for batch in batches for key in batch}
    assert added.among("ds", asked) == [key in every for key in asked]
    assert added.among("ds", list(every)) == [True] * len(every)
    assert not any(added.among("other", list(every)))  # per dataset
    assert len(added) == len(every) and bool(added) == bool(every)


def test_a_name_and_id_that_run_together_are_still_two_keys() -> None:
    added = KeySet()
    added.add("1", [("Lead", "1:x")])
    assert added.among("1", [("Lead:1", "x"), ("Lead", "1:x")]) == [False, True]
    assert added.among("11", [("Lead", "1:x")]) == [False]


def test_runs_stay_few_and_clear_empties_the_set() -> None:
    added = KeySet()
    rng = random.Random(7)
    for _ in range(100):
        added.add("ds", [("Lead", f"{rng.getrandbits(64):x}") for _ in range(1000)])
    assert len(added._runs) <= 7 and len(added) == 100_000
    added.clear()
    assert not added and added.among("ds", [("Lead", "x")]) == [False]


def test_a_high_half_shared_by_several_keys_is_told_apart_by_the_low_half() -> None:
    import numpy as np

    run_hi = np.array([1, 5, 5, 5, 9], dtype=np.uint64)
    run_lo = np.array([0, 2, 4, 6, 0], dtype=np.uint64)
    hi = np.array([5, 5, 5, 9, 9, 2], dtype=np.uint64)
    lo = np.array([4, 3, 6, 0, 1, 0], dtype=np.uint64)
    assert _in_run(run_hi, run_lo, hi, lo).tolist() == [True, False, True, True, False, False]
