"""Mapping on other cores: ``map_chunk`` is pure, so a worker process can map one chunk while
this process reads the next one and writes the ledger.

Results come back in the order the chunks were read, and at most ``workers + 1`` chunks are in
flight, so memory stays flat whatever the file size. A unit of a single chunk (a small file, a
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

from connectors.base import RawChunk
from uploader.errors import StopRun
from uploader.mapping.engine import MappedChunk, map_chunk
from uploader.settings import SourceSettings

PARENT_CHECK_SECONDS = 1.0


class ChunkMapper:
    """Maps a unit's chunks, in worker processes when ``workers`` > 0 (see the module docstring).

    Use as a context manager, or call ``close``; the workers live until then, across units.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def map(self, chunks: Iterable[RawChunk], source: SourceSettings, now: float) -> Iterator[tuple[int, MappedChunk]]:
        """(rows read, mapped chunk) for each chunk, in order; rows read counts the chunk's bad lines."""
        it = iter(chunks)
        head = list(itertools.islice(it, 2))  # a second chunk is what makes the workers worth starting
        every = itertools.chain(head, it)
        if len(head) < 2 or self.workers <= 0:
            yield from ((_rows(raw), map_chunk(raw, source, now)) for raw in every)
            return
        yield from self._in_workers(every, source, now)

    def _in_workers(self, chunks: Iterator[RawChunk], source: SourceSettings,
                    now: float) -> Iterator[tuple[int, MappedChunk]]:
        pool = self._start()
        in_flight: deque[tuple[int, Future[MappedChunk]]] = deque()
        try:
            for raw in chunks:
                # Sent as bytes: the pool would otherwise hold the raw frame here until it is mapped.
                in_flight.append((_rows(raw), pool.submit(_map_pickled, pickle.dumps(raw), source, now)))
                if len(in_flight) > self.workers:
                    rows, future = in_flight.popleft()
                    yield rows, future.result()
            while in_flight:
                rows, future = in_flight.popleft()
                yield rows, future.result()
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


def _map_pickled(raw: bytes, source: SourceSettings, now: float) -> MappedChunk:
    return map_chunk(pickle.loads(raw), source, now)


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


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)
