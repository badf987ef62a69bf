"""One benchmark stage, run in a process of its own so its peak memory is its own.

    python benchmarks/stages.py STAGE --config WORK/capi-uploader.toml --csv FILE

Stages: ``read`` (CSV chunks), ``map`` (map/normalise/hash: ``map_chunk`` without the validation
rules), ``validate`` (the rules alone), ``map_workers`` (``map_chunk`` in ``run.map_workers``
processes, as a run maps), ``ledger`` (a run's ledger work: look-ups and outcome records),
``deliver`` (a backlog of pending events sent to the sandbox named by META_GRAPH_URL) and ``sdk``
(Meta's SDK building the same events; see sdk_reference.py). Each times only its own
work (the rows it needs are read and mapped untimed) and prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, when run as a script

from connectors.base import RawChunk
from connectors.csv_folder import CsvFile
from uploader.mapping import engine
from uploader.settings import Settings, load_settings

DATASET = "1234567890123"


class Stopwatch:
    """Adds up the time spent inside the functions it wraps."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
        return timed


def csv_unit(settings: Settings, csv: Path) -> CsvFile:
    source = settings.sources[0]
    return CsvFile(source.name, csv, source.encoding, settings.chunk_size)


def chunks(settings: Settings, csv: Path) -> Iterator[RawChunk]:
    """The CSV's raw chunks, read and parsed in this process (a run without mapping workers)."""
    return csv_unit(settings, csv).chunks()


def read_stage(settings: Settings, csv: Path) -> dict[str, Any]:
    rows, started = 0, time.perf_counter()
    for raw in chunks(settings, csv):
        rows += len(raw.frame) + len(raw.bad_lines)
    return {"rows": rows, "units": rows, "seconds": time.perf_counter() - started}


def map_stage(settings: Settings, csv: Path, validate: bool) -> dict[str, Any]:
    """``map_chunk`` timed; the validation rules (``refusals``) timed apart and reported as
    the ``validate`` stage, the rest as ``map``."""
    rules, whole = Stopwatch(), Stopwatch()
    engine.refusals = rules.wrap(engine.refusals)
    mapper = whole.wrap(engine.map_chunk)
    rows = events = refused = 0
    now = time.time()
    for raw in chunks(settings, csv):
        mapped = mapper(raw, settings.sources[0], now)
        rows += len(raw.frame) + len(raw.bad_lines)
        events, refused = events + len(mapped.events), refused + len(mapped.refused)
    seconds = rules.seconds if validate else whole.seconds - rules.seconds
    return {"rows": rows, "units": events, "refused": refused, "seconds": seconds}


def map_workers_stage(settings: Settings, csv: Path) -> dict[str, Any]:
    """The whole of ``map_chunk`` (validation included) as a run does it: the file cut into blocks
    here, parsed and mapped in ``run.map_workers`` worker processes, results in order; timed from
    the first block cut to the last result, with the worker start-up and the pickling both ways."""
    from uploader.mapping.workers import ChunkMapper

    rows = events = 0
    now = time.time()
    started = time.perf_counter()
    with ChunkMapper(settings.map_workers) as mapper:
        for chunk_rows, mapped in mapper.map_unit(csv_unit(settings, csv), settings.sources[0], now):
            rows, events = rows + chunk_rows, events + len(mapped.events)
    return {"rows": rows, "units": events, "workers": settings.map_workers, "seconds": time.perf_counter() - started}


def ledger_stage(settings: Settings, csv: Path) -> dict[str, Any]:
    """The ledger work of a run, into a new ledger: each chunk's events looked up (which does the
    ledger hold?), then recorded with their outcome, sent, in batches of ``meta.batch_size`` (the
    journal appends and its folds), and the last fold at close. Only the ledger calls are timed."""
    from uploader.ledger import Ledger, stored_events

    ledger = Ledger.open(settings.ledger_url)
    writes, rows, new = Stopwatch(), 0, 0
    existing, mark_sent = writes.wrap(ledger.existing), writes.wrap(ledger.mark_sent)
    now, size = time.time(), settings.meta.batch_size
    for raw in chunks(settings, csv):
        unique = engine.map_chunk(raw, settings.sources[0], now).events.drop_duplicates(["event_name", "event_id"])
        rows += len(raw.frame) + len(raw.bad_lines)
        held = existing(DATASET, list(zip(unique["event_name"], unique["event_id"])))
        fresh = stored_events(unique, settings.sources[0].name)
        fresh = [e for e in fresh if (e.event_name, e.event_id) not in held]
        for start in range(0, len(fresh), size):
            mark_sent(DATASET, fresh[start:start + size], "bench", now)
        new += len(fresh)
    writes.wrap(ledger.close)()  # the last fold of the journal is ledger work too
    return {"rows": rows, "units": new, "seconds": writes.seconds}


def deliver_stage(settings: Settings, csv: Path) -> dict[str, Any]:
    """A backlog sent: every event recorded pending first (untimed), then ``deliver`` to the sandbox."""
    from uploader.delivery import GraphClient, deliver
    from uploader.ledger import Ledger

    ledger = Ledger.open(settings.ledger_url.replace("ledger.db", "backlog.db"))
    now = time.time()
    for raw in chunks(settings, csv):
        ledger.record(DATASET, settings.sources[0].name, engine.map_chunk(raw, settings.sources[0], now).events, now)
    with GraphClient(settings.meta) as client:
        started = time.perf_counter()
        result = deliver(ledger, client, settings.meta, time.time)
        seconds = time.perf_counter() - started
    ledger.close()
    rows = json.loads(csv.with_suffix(".json").read_text())["rows"]
    return {"rows": rows, "units": result.sent, "failed": result.failed, "pending_left": result.pending_left,
            "seconds": seconds}


def sdk_stage(settings: Settings, csv: Path) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import sdk_reference

    source = settings.sources[0]
    result = sdk_reference.run(csv, settings.chunk_size, (source.default_country or "").lower(),
                               {k.lower(): v for k, v in source.stage_map.items()})
    return {"rows": result.rows, "units": result.events, "seconds": result.build_seconds,
            "prepare_seconds": result.prepare_seconds, "json_bytes": result.json_bytes,
            "phones": dict(result.phones)}


STAGES: dict[str, Callable[[Settings, Path], dict[str, Any]]] = {
    "read": read_stage,
    "map": lambda settings, csv: map_stage(settings, csv, validate=False),
    "validate": lambda settings, csv: map_stage(settings, csv, validate=True),
    "map_workers": map_workers_stage,
    "ledger": ledger_stage,
    "deliver": deliver_stage,
    "sdk": sdk_stage,
}


def main(argv: list[str] | None = None) -> None:  # the __main__ guard below matters: workers are spawned
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=sorted(STAGES))
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--csv", type=Path, required=True)
    args = parser.parse_args(argv)
    result = STAGES[args.stage](load_settings(args.config), args.csv)
    print(json.dumps({"stage": args.stage, **result}))


if __name__ == "__main__":
    main()
