"""The run lock: one run at a time per ledger, across processes and hosts.

A cron ``run``, the ``schedule`` process and a ``backfill`` may all start at once;
only the first to insert the ``run_lock`` row goes on. The others raise
:class:`RunLocked` (exit 3) naming the holder. A lock whose holder was killed
does not block forever: it is taken over when its heartbeat is older than
``stale_after`` seconds, or at once when the holder ran on this host and its
process is gone. The holder refreshes the heartbeat while it runs.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from uploader.errors import RunLocked
from uploader.ledger.schema import run_lock

log = logging.getLogger("capi_uploader.lock")
LOCK_NAME = "run"
DEFAULT_STALE_AFTER = 300.0


@dataclass(frozen=True)
class LockHolder:
    """Who holds the lock, as the refusal message and ``status`` show it."""

    holder: str
    host: str
    pid: int
    acquired_at: datetime
    heartbeat_at: datetime

    def describe(self, now: float) -> str:
        age = max(0, round(now - self.heartbeat_at.replace(tzinfo=UTC).timestamp()))
        return (f"host {self.host}, pid {self.pid}, since {self.acquired_at:%Y-%m-%dT%H:%M:%SZ} "
                f"(last heartbeat {age} s ago)")


class RunLock:
    """Acquire, refresh and release the ledger's run lock."""

    def __init__(self, engine: Engine, stale_after: float = DEFAULT_STALE_AFTER,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine, self.stale_after, self.clock = engine, stale_after, clock
        self.holder_id = uuid.uuid4().hex
        self.host, self.pid = socket.gethostname()[:255], os.getpid()

    def acquire(self) -> None:
        """Take the lock or raise :class:`RunLocked` naming its holder."""
        for _ in range(3):  # the row may vanish between our insert and our read: try again
            if self._insert():
                return
            current = self.holder()
            if current is None:
                continue
            if not self._is_stale(current):
                raise RunLocked(f"another run holds the lock ({current.describe(self.clock())}); "
                                "this run did nothing")
            if self._take_over(current):
                log.warning("took over a stale run lock (%s)", current.describe(self.clock()))
                return
        raise RunLocked("another run took the lock at the same moment; this run did nothing")

    def refresh(self) -> bool:
        """Move the heartbeat forward; False when the lock is no longer ours."""
        with self.engine.begin() as conn:
            found = conn.execute(update(run_lock).where(run_lock.c.name == LOCK_NAME,
                                                        run_lock.c.holder == self.holder_id)
                                 .values(heartbeat_at=_utc(self.clock()))).rowcount
        return found == 1

    def release(self) -> None:
        """Give the lock up (only if it is still ours)."""
        with self.engine.begin() as conn:
            conn.execute(delete(run_lock).where(run_lock.c.name == LOCK_NAME, run_lock.c.holder == self.holder_id))

    def holder(self) -> LockHolder | None:
        """The current holder, if any."""
        return current_holder(self.engine)

    def _insert(self) -> bool:
        now = _utc(self.clock())
        try:
            with self.engine.begin() as conn:
                conn.execute(run_lock.insert().values(name=LOCK_NAME, holder=self.holder_id, host=self.host,
                                                      pid=self.pid, acquired_at=now, heartbeat_at=now))
        except IntegrityError:
            return False
        return True

    def _take_over(self, stale: LockHolder) -> bool:
        # Compare-and-swap on the old holder id: of two runs taking over at once, one wins.
        now = _utc(self.clock())
        with self.engine.begin() as conn:
            taken = conn.execute(update(run_lock).where(run_lock.c.name == LOCK_NAME,
                                                        run_lock.c.holder == stale.holder)
                                 .values(holder=self.holder_id, host=self.host, pid=self.pid,
                                         acquired_at=now, heartbeat_at=now)).rowcount
        return taken == 1

    def _is_stale(self, current: LockHolder) -> bool:
        beat = current.heartbeat_at.replace(tzinfo=UTC).timestamp()
        if self.clock() - beat > self.stale_after:
            return True
        return current.host == self.host and not process_alive(current.pid)


def current_holder(engine: Engine) -> LockHolder | None:
    """Who holds the run lock now (None when nobody does)."""
    with engine.connect() as conn:
        row = conn.execute(select(run_lock.c.holder, run_lock.c.host, run_lock.c.pid, run_lock.c.acquired_at,
                                  run_lock.c.heartbeat_at).where(run_lock.c.name == LOCK_NAME)).first()
    return LockHolder(*row) if row is not None else None


def process_alive(pid: int) -> bool:
    """True when a process with this id runs on this host (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    stat = Path(f"/proc/{pid}/stat")
    try:
        # The state letter follows the command name in parentheses, which may itself hold spaces.
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class Heartbeat:
    """Refreshes the lock from a background thread while a long run goes on."""

    def __init__(self, lock: RunLock, every: float) -> None:
        self.lock, self.every = lock, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="capi-lock-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            try:
                if not self.lock.refresh():
                    log.error("the run lock was taken over by another run (this run was seen as stale); "
                              "raise run.lock_stale_seconds if runs take longer than that")
            except Exception as exc:  # a database hiccup must not kill the run; the next beat retries
                log.warning("could not refresh the run lock: %s", exc)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
