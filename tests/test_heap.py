"""The glibc mmap threshold is fixed, so freed large blocks go back to the system."""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import sys

import pytest

from uploader import heap


def test_keep_heap_small_sets_glibc_threshold_and_tolerates_other_libcs(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []

    class FakeLibc:
        def mallopt(self, parameter: int, value: int) -> int:
            calls.append((parameter, value))
            return 1

    monkeypatch.setattr(ctypes, "CDLL", lambda name: FakeLibc())
    heap.keep_heap_small()
    assert calls == [(-3, 128 * 1024)]

    class NoMallopt:  # macOS's or musl's C library without it
        pass

    monkeypatch.setattr(ctypes, "CDLL", lambda name: NoMallopt())
    heap.keep_heap_small()  # nothing to do, nothing raised
    monkeypatch.setattr(ctypes, "CDLL", lambda name: (_ for _ in ()).throw(OSError("no libc")))
    heap.keep_heap_small()


@pytest.mark.skipif(not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None,
                    reason="glibc's malloc is Linux's")
def test_a_freed_large_block_leaves_the_process() -> None:
    """After a 16 MB block is freed, glibc raises its threshold and serves the next large blocks
    from the heap, where freed ones stay resident behind smaller blocks still in use; with the
    threshold fixed, they are mapped apart and leave the process when freed."""
    script = """
import ctypes, sys
from uploader import heap
if sys.argv[1] == "fixed":
    heap.keep_heap_small()
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
block = bytearray(16 << 20); del block     # raises glibc's dynamic threshold (unless fixed)
before = rss()
blocks, kept = [], []
for _ in range(8):  # each big block with a small one after it, still in use: the heap cannot shrink
    blocks.append(bytearray(2 << 20))
    kept.append(bytes(4000))
del blocks
print(rss() - before)
"""
    grown = {mode: int(subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True,
                                      check=True).stdout) for mode in ("fixed", "dynamic")}
    assert grown["fixed"] < 4 << 20 <= grown["dynamic"], grown
