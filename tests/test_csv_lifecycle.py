"""The CSV drop folder's lifecycle: processed files move, refusals sit beside them, files being written wait."""

from __future__ import annotations

import csv
import dataclasses
import os
import time
from pathlib import Path

import pytest

from connectors.csv_folder import CsvFolder
from tests.conftest import Project
from tests.test_cli import good_export
from uploader.errors import FileNotSettled
from uploader.pipeline import run_once
from uploader.sandbox import SandboxServer
from uploader.settings import SourceSettings, load_settings

WITH_A_BAD_ROW = good_export() + "Lead,next tuesday,b@example.com,,,\n"


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_processed_file_moves_to_processed_with_its_refusals_beside_it(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    project.drop_file("deals.csv", WITH_A_BAD_ROW)
    report = run_once(load_settings(project.config, environ=env))
    assert report.sent == 1 and report.refused_total == 1
    assert sorted(p.name for p in project.drop.iterdir()) == ["processed"]
    processed = project.drop / "processed"
    assert sorted(p.name for p in processed.iterdir()) == ["deals.csv", "deals.quarantine.csv"]
    beside = rows(processed / "deals.quarantine.csv")
    assert [(r["source"], r["file"], r["line"], r["column"], r["reason"]) for r in beside] == [
        ("sales_ops", "deals.csv", "3", "event_time", "bad_event_time")]
    assert rows(report.quarantine_path) == beside  # the run's own report lists the same row


def test_a_files_refusals_from_every_chunk_are_spooled_and_written_beside_it(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    bad = "Lead,next tuesday,b@example.com,,,\n"
    project.drop_file("deals.csv", WITH_A_BAD_ROW + good_export().split("\n", 1)[1].replace("A-1", "A-2") + bad)
    settings = dataclasses.replace(load_settings(project.config, environ=env), chunk_size=2, map_workers=0)
    report = run_once(settings)  # chunks of 2 lines: the bad rows (lines 3 and 5) are in two chunks
    beside = rows(project.drop / "processed" / "deals.quarantine.csv")
    assert [(r["line"], r["reason"]) for r in beside] == [("3", "bad_event_time"), ("5", "bad_event_time")]
    assert rows(report.quarantine_path) == beside


def test_a_clean_file_gets_no_quarantine_and_a_name_taken_in_processed_is_kept_apart(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    settings = load_settings(project.config, environ=env)
    project.drop_file("daily.csv", good_export())
    run_once(settings)
    project.drop_file("daily.csv", good_export().replace("A-1", "A-2"))  # tomorrow's export, same name
    assert run_once(settings).sent == 1
    assert sorted(p.name for p in (project.drop / "processed").iterdir()) == ["daily-2.csv", "daily.csv"]


def test_after_keep_leaves_the_file_and_its_report_where_they_are(project: Project, env: dict[str, str],
                                                                 sandbox: SandboxServer) -> None:
    project.write_config('after = "keep"')
    project.drop_file("deals.csv", WITH_A_BAD_ROW)
    settings = load_settings(project.config, environ=env)
    run_once(settings)
    assert sorted(p.name for p in project.drop.iterdir()) == ["deals.csv", "deals.quarantine.csv"]
    again = run_once(settings)  # the report beside the file is not taken for an export
    assert again.files_skipped == ["deals.csv"] and again.files_read == [] and again.exit_code() == 0


def test_a_file_still_being_written_is_left_for_the_next_run(project: Project, env: dict[str, str],
                                                             sandbox: SandboxServer) -> None:
    project.write_config("settle_seconds = 60")
    path = project.drop_file("arriving.csv", good_export())
    settings = load_settings(project.config, environ=env)
    first = run_once(settings)
    assert (first.files_waiting, first.files_read, first.sent, first.exit_code()) == (["arriving.csv"], [], 0, 0)
    assert "files still being written, left for the next run: arriving.csv" in first.render()
    assert path.is_file() and sandbox.accepted() == []
    os.utime(path, (time.time() - 61, time.time() - 61))  # quiet for a minute now
    second = run_once(settings)
    assert (second.files_waiting, second.files_read, second.sent) == ([], ["arriving.csv"], 1)


def test_a_file_that_changes_while_it_is_looked_at_is_not_read_or_put_away(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    path = drop / "growing.csv"
    path.write_text(good_export(), encoding="utf-8")
    folder = CsvFolder(SourceSettings(name="s", type="csv", path=drop), chunk_size=100)
    unit = next(folder.units())
    with path.open("a", encoding="utf-8") as handle:
        handle.write("Purchase,2026-11-20T10:00:00Z,c@example.com,10,USD,A-3\n")
    with pytest.raises(FileNotSettled, match="growing.csv is still being written"):
        list(unit.chunks())

    class State:
        def mark_processed(self, *args: object) -> None:
            raise AssertionError("a changing file must not be marked processed")

    reread = next(folder.units())
    assert len(next(reread.chunks()).frame) == 2
    with path.open("a", encoding="utf-8") as handle:  # it grew while it was read
        handle.write("Purchase,2026-11-20T11:00:00Z,d@example.com,10,USD,A-4\n")
    with pytest.raises(FileNotSettled):
        reread.commit(State(), 2, time.time())  # type: ignore[arg-type]
    assert path.is_file()


def test_a_quote_never_closed_stops_only_its_file_which_waits_for_a_fix(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    lines = good_export().splitlines()
    broken = project.drop_file("a_broken.csv", "\n".join([lines[0], lines[1].replace(",a@", ',"a@')]) + "\n"
                               + "Lead,2026-11-20T10:00:00Z,x@example.com,,,\n" * 5000)  # > csv's 128 KB field limit
    project.drop_file("b_good.csv", good_export().replace("A-1", "B-1"))
    report = run_once(load_settings(project.config, environ=env))
    assert report.file_errors == ["sales_ops/a_broken.csv: line 2 cannot be read (field larger than field limit "
                                  "(131072)): most likely a quote opened there is never closed; fix the file and "
                                  "drop it again"]
    assert report.exit_code() == 1 and report.files_read == ["b_good.csv"]
    assert [event["custom_data"]["order_id"] for event in sandbox.accepted()] == ["B-1"]
    assert broken.exists()  # not marked done: read again once fixed


def test_a_file_processed_but_not_movable_is_named_in_each_run_and_never_sent_twice(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    (project.drop / "processed").write_text("not a folder", encoding="utf-8")  # processed/ cannot be made
    project.drop_file("deals.csv", good_export())
    settings = load_settings(project.config, environ=env)
    expected = ["sales_ops/deals.csv: done, but it cannot be moved to processed/ (File exists): give the uploader "
                'write access to the folder, or set after = "keep"']
    first = run_once(settings)
    assert (first.sent, first.files_read, first.files_not_moved, first.exit_code()) == (1, ["deals.csv"], expected, 1)
    assert "  file not moved: " + expected[0] in first.render().splitlines()
    again = run_once(settings)  # the ledger knows the file: it is not read again, and still named
    assert (again.sent, again.files_read, again.files_not_moved, again.exit_code()) == (0, [], expected, 1)
    (project.drop / "processed").unlink()
    fixed = run_once(settings)
    assert (fixed.files_skipped, fixed.files_not_moved, fixed.exit_code()) == (["deals.csv"], [], 0)
    assert (project.drop / "processed" / "deals.csv").exists() and len(sandbox.accepted()) == 1


def test_validate_leaves_a_file_dropped_again_where_it_is_and_a_run_puts_it_away(
        project: Project, env: dict[str, str], sandbox: SandboxServer) -> None:
    settings = load_settings(project.config, environ=env)
    export = good_export()  # once: its time is to the second, and a copy must be the same bytes
    project.drop_file("deals.csv", export)
    run_once(settings)
    project.drop_file("deals-copy.csv", export)  # the same content again, under another name
    checked = run_once(settings, send=False)
    assert checked.files_skipped == ["deals-copy.csv"] and checked.exit_code() == 0
    assert sorted(p.name for p in project.drop.iterdir()) == ["deals-copy.csv", "processed"]  # validate moves nothing
    again = run_once(settings)
    assert (again.files_skipped, again.sent) == (["deals-copy.csv"], 0)
    assert sorted(p.name for p in (project.drop / "processed").iterdir()) == ["deals-copy.csv", "deals.csv"]
