"""A run sends each chunk's new events while it reads the next chunk: what that must never
change (once per event, nothing lost when Meta stops answering, the file committed last)."""

from __future__ import annotations

import collections
import sqlite3
from datetime import UTC, datetime, timedelta

from tests.conftest import Project
from uploader.pipeline import run_once
from uploader.sandbox import SandboxServer
from uploader.settings import load_settings


def orders(n: int, repeat: dict[int, int] | None = None) -> str:
    """n Purchase rows; ``repeat`` maps a row number to the earlier row whose order it repeats."""
    when = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = [f"Purchase,{when},O-{(repeat or {}).get(i, i)},buyer{i}@example.com,10,USD" for i in range(n)]
    return "event_name,event_time,order_id,email,value,currency\n" + "\n".join(rows) + "\n"


def statuses(project: Project) -> dict[tuple[str, int], int]:
    with sqlite3.connect(project.ledger_file) as db:
        return dict(collections.Counter(db.execute("SELECT status, attempts FROM events").fetchall()))


def test_an_order_repeated_in_a_later_chunk_while_the_first_is_on_its_way_is_sent_once(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    project.write_config("[run]\nchunk_size = 100\nmap_workers = 0\n[meta]\nbatch_size = 80\nconcurrency = 2\n")
    sandbox.set_faults(delay_seconds=0.05)  # the first chunk's batches are still in flight
    project.drop_file("orders.csv", orders(300, repeat={150: 50, 151: 51, 299: 0}))
    report = run_once(load_settings(project.config, environ=env))
    order_ids = [e["custom_data"]["order_id"] for e in sandbox.accepted()]
    assert len(order_ids) == len(set(order_ids)) == 297
    assert (report.events_new, report.duplicates, report.sent) == (297, 3, 297)
    assert statuses(project) == {("sent", 1): 297}


def test_when_meta_stops_answering_the_unsent_new_events_wait_in_the_ledger_for_the_next_run(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    project.write_config("[run]\nchunk_size = 100\nmap_workers = 0\n"
                         "[meta]\nbatch_size = 100\nconcurrency = 1\nmax_attempts = 2\n")
    project.drop_file("orders.csv", orders(350))
    sandbox.set_faults(throttle_next_n=1000)
    first = run_once(load_settings(project.config, environ=env), sleep=lambda seconds: None)
    assert first.sent == 0 and first.halted and first.pending_left == 350
    assert sandbox.accepted() == []
    # The batch that was tried counts its attempt; the others were never sent.
    assert statuses(project) == {("pending", 1): 100, ("pending", 0): 250}
    assert (project.drop / "processed" / "orders.csv").exists()  # every event is held: the file is done

    sandbox.set_faults(throttle_next_n=0)
    second = run_once(load_settings(project.config, environ=env))
    assert (second.rows_read, second.sent, second.pending_left) == (0, 350, 0)
    assert sorted(e["custom_data"]["order_id"] for e in sandbox.accepted()) == sorted(f"O-{i}" for i in range(350))
