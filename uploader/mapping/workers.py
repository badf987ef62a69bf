"""Mapping on other cores: ``map_chunk`` is pure, so a worker process can map one chunk while
this process reads the next one and writes the ledger.

A CSV file comes as blocks of bytes (``connectors.base.Unparsed``, a CSV file's blocks): the worker
parses its block too, and says how many rows it read. A block that turns out misaligned stops the blocks: the
later ones in flight are dropped and the rest of the file comes as chunks read here.

Results come back in the order the chunks were read, and at most ``workers + AHEAD`` chunks are
in flight, so memory stays flat whatever the file size. A unit of a single chunk (a small file, a
short SQL window) is mapped here, and the worker processes start only when a unit has a second
chunk: a small run never pays for them.
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol, runtime_checkable

from connectors.base import MisalignedBlock, RawChunk, Unit, Unparsed, close, loaded
from uploader.errors import StopRun
from uploader.heap import keep_heap_small
from uploader.mapping.engine import MappedChunk, map_chunk
from uploader.settings import SourceSettings

PARENT_CHECK_SECONDS = 1.0
# Chunks handed to the workers, beyond one per worker, before this process waits for the oldest
# result: while it works on that result, the workers have AHEAD - 1 more to map, and go on while
# this process folds the ledger's journal or waits for a free sending slot. Each costs a mapped
# chunk in memory (about 5 MB at 5,000 rows).
AHEAD = 3

Item = RawChunk | Unparsed
InFlight = deque[tuple[Item, Future[tuple[int, MappedChunk]]]]


@runtime_checkable
class BlockUnit(Protocol):
    """A unit that can hand over its rows unparsed (a CSV file), for the workers to parse."""

    def blocks(self) -> Iterator[Item]: ...


class ChunkMapper:
    """Maps a unit's chunks, in worker processes when ``workers`` > 0 (see the module docstring).

    Use as a context manager, or call ``close``; the workers live until then, across units.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def map_unit(self, unit: Unit, source: SourceSettings, now: float) -> Iterator[tuple[int, MappedChunk]]:
        """``map`` over a unit's blocks when it has them (parsed in the workers), else its chunks."""
        return self.map(unit.blocks() if isinstance(unit, BlockUnit) else unit.chunks(), source, now)

    def map(self, chunks: Iterable[Item], source: SourceSettings, now: float) -> Iterator[tuple[int, MappedChunk]]:
        """(rows read, mapped chunk) for each chunk or block, in order; rows read counts the bad lines."""
        it = iter(chunks)
        head = list(itertools.islice(it, 2))  # a second chunk is what makes the workers worth starting
        every = _chained(head, it)
        if len(head) < 2 or self.workers <= 0:
            yield from ((_rows(raw), map_chunk(raw, source, now)) for raw in loaded(every))
            return
        yield from self._in_workers(every, source, now)

    def _in_workers(self, items: Iterator[Item], source: SourceSettings,
                    now: float) -> Iterator[tuple[int, MappedChunk]]:
        """Keeps ``workers + AHEAD`` items in flight and yields their results in order; a misaligned
        block swaps the items for the rest of its file (``_read_on``)."""
        pool = self._start()
        in_flight: InFlight = deque()
        try:
            while True:
                for item in items:
                    in_flight.append((item, pool.submit(_map_sent, _sendable(item), source, now)))
                    if len(in_flight) >= self.workers + AHEAD:
                        break
                if not in_flight:
                    return
                item, future = in_flight.popleft()
                try:
                    result = future.result()
                except MisalignedBlock:
                    items = _read_on(items, item, in_flight)
                    continue
                yield result
        except BrokenProcessPool:
            raise StopRun("a mapping worker process stopped unexpectedly (out of memory?); the file or window "
                          "being read was not marked done: set run.map_workers = 0 or a smaller "
                          "run.chunk_size") from None
        finally:
            for _, future in in_flight:  # a reader that stops early leaves nothing running
                future.cancel()

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the scheduler and delivery run threads, and a forked child would
            # inherit their locks in whatever state they were in.
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker, initargs=(os.getpid(),))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> ChunkMapper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rows(raw: RawChunk) -> int:
    return len(raw.frame) + len(raw.bad_lines)


def _chained(head: list[Item], rest: Iterator[Item]) -> Iterator[Item]:
    """``head`` then ``rest``; closing it closes ``rest`` (a file's blocks)."""
    yield from head
    yield from rest


def _sendable(item: Item) -> Unparsed | bytes:
    """A chunk is sent as bytes: the pool would otherwise hold the raw frame here until it is mapped.
    A block already is little more than bytes."""
    return pickle.dumps(item) if isinstance(item, RawChunk) else item


def _map_sent(item: Unparsed | bytes, source: SourceSettings, now: float) -> tuple[int, MappedChunk]:
    """In a worker: (rows read, mapped chunk); only the worker knows how many rows a block held."""
    raw = pickle.loads(item) if isinstance(item, bytes) else item.load()
    return _rows(raw), map_chunk(raw, source, now)


def _read_on(items: Iterator[Item], misaligned: Item, in_flight: InFlight) -> Iterator[Item]:
    """After a misaligned block: the blocks behind it are dropped and the file goes on as chunks."""
    for _, future in in_flight:
        future.cancel()
    in_flight.clear()
    close(items)
    assert not isinstance(misaligned, RawChunk), "only a block can be misaligned"
    return misaligned.rest()


def _start_worker(parent: int) -> None:
    """Ctrl-C and SIGTERM are for the main process, which stops the run in order and then
    shuts the workers down; a worker dying first would only turn that into a crash. A main
    process killed outright (SIGKILL, the OOM killer) cannot shut them down: each worker then
    notices it has a new parent and exits. What the worker imported lives as long as it does:
    frozen, garbage collections skip it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), name="capi-map-parent-watch", daemon=True).start()
    gc.freeze()
    keep_heap_small()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)
