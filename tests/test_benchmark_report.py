"""The benchmark's verdict lines: the arithmetic the README's Performance section quotes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import run_benchmark  # noqa: E402  (a script folder, not a package)


def test_the_ceiling_is_the_runs_own_cpu_spread_over_every_core_with_the_sandbox_free(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_benchmark.os, "cpu_count", lambda: 2)
    sdk = run_benchmark.Measure("sdk", 1_000_000, 1_000_000, 50.0, 120.0)
    cpu = {"main_process": 20.0, "mapping_workers": 31.0, "sandbox": 9.0}
    assert run_benchmark.ceiling_line(cpu, 1_000_000, sdk) == (
        "whole run at best on 2 cores: 51.0 s of its own CPU / 2 = 25.5 s, 1.96x the SDK "
        "(every core busy all the time, the sandbox free)")
