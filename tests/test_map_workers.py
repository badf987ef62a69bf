"""Mapping in worker processes gives exactly what mapping here gives, in order, and starts no
process for a unit of one chunk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from connectors.base import BadLine, RawChunk
from tests.conftest import Project
from tests.test_scheduler import leads
from uploader.errors import ConfigError, StopRun
from uploader.mapping.engine import map_chunk
from uploader.mapping.workers import AHEAD, ChunkMapper
from uploader.pipeline import run_once
from uploader.sandbox import SandboxServer
from uploader.settings import SourceSettings, load_settings

NOW = 1_795_168_800.0  # 2026-11-20T10:00:00Z
SOURCE = SourceSettings(name="s", type="csv", path=Path("."), default_country="us")


def raw_chunks(count: int, size: int = 40) -> list[RawChunk]:
    chunks = []
    for n in range(count):
        first = 2 + n * size
        frame = pd.DataFrame([{"event_name": "Lead", "event_time": f"2026-11-20T0{n % 9}:00:00Z",
                               "email": f"Person{first + i}@Example.com ", "phone": f"(650) 555-{1000 + first + i}"}
                              for i in range(size)], dtype=object)
        frame.index = pd.RangeIndex(first, first + size, name="line")
        bad = [BadLine(first + size, "malformed", "line has 3 fields, the header has 4")] if n == 1 else []
        chunks.append(RawChunk(frame, bad))
    return chunks


def test_workers_give_the_same_chunks_in_the_same_order() -> None:
    chunks = raw_chunks(5)
    with ChunkMapper(workers=2) as mapper:
        got = list(mapper.map(chunks, SOURCE, NOW))
        assert mapper._pool is not None  # the worker path was taken
    assert [rows for rows, _ in got] == [40, 41, 40, 40, 40]
    for raw, (_, mapped) in zip(chunks, got):
        here = map_chunk(raw, SOURCE, NOW)
        pd.testing.assert_frame_equal(mapped.events, here.events)
        pd.testing.assert_frame_equal(mapped.refused, here.refused)
        assert mapped.dropped == here.dropped


@pytest.mark.parametrize("workers", [1, 2])
def test_at_most_workers_plus_ahead_chunks_are_read_before_their_results_are_taken(workers: int) -> None:
    read: list[int] = []  # memory stays flat: a slow consumer never makes the mapper read the whole unit

    def reading(chunks: list[RawChunk]) -> Iterator[RawChunk]:
        for n, chunk in enumerate(chunks):
            read.append(n)
            yield chunk

    with ChunkMapper(workers=workers) as mapper:
        results = mapper.map(reading(raw_chunks(12, size=5)), SOURCE, NOW)
        for taken in range(1, 13):
            next(results)
            assert len(read) - taken <= workers + AHEAD - 1, (taken, len(read))
        assert len(read) == 12


def test_a_unit_of_one_chunk_is_mapped_here() -> None:
    (raw,) = raw_chunks(1)
    with ChunkMapper(workers=2) as mapper:
        ((rows, mapped),) = list(mapper.map([raw], SOURCE, NOW))
        assert mapper._pool is None
    assert rows == 40
    assert mapped.events["payload"].tolist() == map_chunk(raw, SOURCE, NOW).events["payload"].tolist()


def test_a_run_with_map_workers_sends_what_a_run_without_them_sends(tmp_path: Path, env: dict[str, str],
                                                                    sandbox: SandboxServer) -> None:
    sent: dict[int, list[dict[str, object]]] = {}
    rows = leads(350, "p")  # once: both runs read the very same file
    for workers in (0, 1):
        project = Project(tmp_path / f"workers-{workers}")
        project.write_config(f"[run]\nchunk_size = 100\nmap_workers = {workers}\n[meta]\nbatch_size = 500\n")
        project.drop_file("leads.csv", rows)
        before = len(sandbox.accepted())
        report = run_once(load_settings(project.config, environ=env))
        assert (report.rows_read, report.sent) == (350, 350)
        sent[workers] = sandbox.accepted()[before:]
    assert sent[1] == sent[0]


def test_a_worker_loads_what_mapping_needs_and_not_the_cli(tmp_path: Path) -> None:
    """Each worker process holds its imports for the whole run: no SQLAlchemy, httpx, rich or
    click (the console script imports uploader.__main__ alone; connectors load on demand)."""
    from connectors.csv_folder import CsvFile

    path = tmp_path / "leads.csv"
    path.write_text("event_name,event_time,email\n" + "".join(f"Lead,2026-11-20T01:00:00Z,p{n}@x.com\n"
                                                            for n in range(6)), encoding="utf-8")
    with ChunkMapper(1) as mapper:
        assert len(list(mapper.map_unit(CsvFile("s", path, "utf-8", 2), SOURCE, NOW))) == 3
        assert mapper._pool is not None
        loaded = set(mapper._pool.submit(eval, "sorted(__import__('sys').modules)").result(timeout=120))
    assert {"pandas", "phonenumbers", "uploader.mapping.engine", "connectors.csv_folder"} <= loaded
    assert not {"sqlalchemy", "httpx", "rich", "click", "uploader.cli"} & loaded


def test_the_console_script_imports_only_the_entry_module() -> None:
    script = Path(sys.executable).parent / "capi-uploader"
    if not script.exists():
        pytest.skip(f"{script} is not installed")
    imports = [line for line in script.read_text().splitlines() if line.startswith(("import", "from"))]
    assert "from uploader.__main__ import main" in imports


def test_map_workers_must_be_a_whole_number(project: Project) -> None:
    project.write_config("[run]\nmap_workers = -1\n")
    with pytest.raises(ConfigError, match=r"run\.map_workers: must be a whole number between 0 and 32"):
        load_settings(project.config, environ={})


def test_a_worker_killed_by_the_system_stops_the_run_with_a_message() -> None:
    chunks = raw_chunks(6)
    with ChunkMapper(workers=1) as mapper:
        results = mapper.map(iter(chunks), SOURCE, NOW)
        next(results)  # the pool is up and mapping
        assert mapper._pool is not None
        for process in list(mapper._pool._processes.values()):  # as the OOM killer would
            os.kill(process.pid, signal.SIGKILL)
        with pytest.raises(StopRun, match=r"a mapping worker process stopped unexpectedly .* run\.map_workers = 0"):
            list(results)


def test_workers_exit_when_the_main_process_is_killed_outright(tmp_path: Path) -> None:
    """SIGKILL (or the OOM killer) gives the main process no chance to shut its workers down."""
    script = tmp_path / "main.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})\n"
        "from tests.test_map_workers import NOW, SOURCE, raw_chunks\n"
        "from uploader.mapping.workers import ChunkMapper\n"
        "if __name__ == '__main__':\n"
        "    mapper = ChunkMapper(workers=2)\n"
        "    results = mapper.map(iter(raw_chunks(4)), SOURCE, NOW)\n"
        "    next(results)\n"
        "    print(*[p.pid for p in mapper._pool._processes.values()], flush=True)\n"
        "    sys.stdin.read()\n", encoding="utf-8")
    main = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parent.parent)
    workers = [int(pid) for pid in main.stdout.readline().split()]  # type: ignore[union-attr]
    assert len(workers) == 2 and all(_alive(pid) for pid in workers)
    main.kill()
    main.wait(timeout=30)
    deadline = time.monotonic() + 30  # a liveness bound, not a speed claim: they check once a second
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False
