from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pandas as pd
import pytest

from connectors.base import MisalignedBlock
from connectors.csv_folder import CsvFile, CsvFolder
from tests.test_csv_blocks import misaligned_csv
from uploader.settings import SourceSettings


def read_all(path: Path, encoding: str = "utf-8-sig", chunk_size: int = 1000) -> tuple[list, list]:
    frames, bad = [], []
    for chunk in CsvFile("s", path, encoding, chunk_size).chunks():
        frames.append(chunk.frame)
        bad.extend(chunk.bad_lines)
    return frames, bad


def test_rows_carry_the_line_they_start_on_even_across_quoted_newlines(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text('email,notes\na@x.com,"two\nlines"\n\nb@x.com,plain\n', encoding="utf-8")
    frames, bad = read_all(path)
    frame = frames[0]
    assert list(frame.index) == [2, 5]
    assert frame.loc[2, "notes"] == "two\nlines"
    assert frame.loc[5, "email"] == "b@x.com"
    assert bad == []


def test_a_bom_is_stripped_and_short_rows_are_padded(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes("\ufeffEmail ,Phone\nx@y.com\n".encode("utf-8"))
    frames, _ = read_all(path)
    assert list(frames[0].columns) == ["Email ", "Phone"]
    assert frames[0].loc[2].tolist() == ["x@y.com", ""]


def test_a_row_with_too_many_fields_is_reported_and_the_rest_go_on(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("email,value\na@x.com,10\nb@x.com,1,200\nc@x.com,5\n", encoding="utf-8")
    frames, bad = read_all(path)
    assert list(frames[0].index) == [2, 4]
    assert [(b.line, b.reason) for b in bad] == [(3, "malformed_row")]
    assert "has 3 fields but the header has 2" in bad[0].message


def test_undecodable_bytes_refuse_only_that_row_and_name_the_column(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"email,city\na@x.com,Berlin\nb@x.com,M\xfcnchen\n")
    frames, bad = read_all(path)
    assert list(frames[0].index) == [2]
    assert [(b.line, b.reason, b.column) for b in bad] == [(3, "bad_encoding", "city")]
    frames, bad = read_all(path, encoding="cp1252")
    assert frames[0].loc[3, "city"] == "München" and bad == []


def test_chunks_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("email\n" + "".join(f"u{i}@x.com\n" for i in range(25)), encoding="utf-8")
    frames, _ = read_all(path, chunk_size=10)
    assert [len(f) for f in frames] == [10, 10, 5]
    assert frames[2].index[0] == 22


def test_the_folder_lists_csv_files_oldest_first_with_content_hashes(tmp_path: Path) -> None:
    import os

    (tmp_path / "b.csv").write_text("email\n", encoding="utf-8")
    (tmp_path / "a.CSV").write_text("email\nx@y.com\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("ignore me", encoding="utf-8")
    os.utime(tmp_path / "b.csv", (1_000_000, 1_000_000))
    folder = CsvFolder(SourceSettings(name="s", type="csv", path=tmp_path), chunk_size=100)
    units = list(folder.units())
    assert [u.label for u in units] == ["b.csv", "a.CSV"]
    assert units[1].key == hashlib.sha256(b"email\nx@y.com\n").hexdigest()
    assert list(units[0].chunks()) == []


def test_a_file_removed_while_earlier_ones_are_read_is_passed_over(tmp_path: Path) -> None:
    import os

    for name, stamp in (("a.csv", 1_000_000), ("b.csv", 1_000_100), ("c.csv", 1_000_200)):
        (tmp_path / name).write_text("email\nx@y.com\n", encoding="utf-8")
        os.utime(tmp_path / name, (stamp, stamp))
    units = CsvFolder(SourceSettings(name="s", type="csv", path=tmp_path), chunk_size=100).units()
    assert next(units).label == "a.csv"  # the folder is listed; a.csv is being read ...
    (tmp_path / "b.csv").unlink()  # ... when another process takes b.csv away
    assert [unit.label for unit in units] == ["c.csv"]


def test_a_window_rereads_processed_files_modified_inside_it(tmp_path: Path) -> None:
    import os

    from connectors.base import Window

    for name, mtime in (("old.csv", 1_000_000), ("in.csv", 2_000_000), ("new.csv", 3_000_000)):
        (tmp_path / name).write_text(f"email\n{name}@x.com\n", encoding="utf-8")
        os.utime(tmp_path / name, (mtime, mtime))

    class State:
        def is_processed(self, source: str, sha256: str) -> bool:
            return True

    folder = CsvFolder(SourceSettings(name="s", type="csv", path=tmp_path), chunk_size=100)
    assert all(unit.is_done(State()) for unit in folder.units())
    backfill = list(folder.units(Window(since=1_500_000, until=3_000_000)))
    assert [u.label for u in backfill] == ["in.csv"]
    assert not backfill[0].is_done(State())


def read_with(path: Path, encoding: str = "utf-8-sig", chunk_size: int = 1000,
              delimiter: str | None = None) -> tuple[list, list]:
    frames, bad = [], []
    for chunk in CsvFile("s", path, encoding, chunk_size, delimiter=delimiter).chunks():
        frames.append(chunk.frame)
        bad.extend(chunk.bad_lines)
    return frames, bad


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])  # cut into blocks, and read as one stream
@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_the_delimiter_is_the_one_the_header_shows(tmp_path: Path, delimiter: str, encoding: str) -> None:
    path = tmp_path / "a.csv"
    lines = ["email;value;notes", 'a@x.com;1.234,50;"x;y"', "b@x.com;7;", "c@x.com;1;2;3"]
    path.write_text("\n".join(line.replace(";", delimiter) for line in lines) + "\n", encoding=encoding)
    frames, bad = read_with(path, encoding, chunk_size=2)
    frame = pd.concat(frames)
    assert list(frame.columns) == ["email", "value", "notes"]
    assert frame.loc[2].tolist() == ["a@x.com", "1.234,50", "x" + delimiter + "y"]
    assert frame.loc[3].tolist() == ["b@x.com", "7", ""]
    name = {";": "semicolon", "\t": "tab", "|": "pipe"}[delimiter]
    assert [(b.line, b.reason) for b in bad] == [(4, "malformed_row")]
    assert bad[0].message == f"the line has 4 fields but the header has 3 (a {name} inside a value needs quotes)"


def test_a_header_that_splits_no_better_another_way_is_read_with_commas_unless_the_source_says(
        tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("email\na@x.com;b\n", encoding="utf-8")  # one column, whatever the delimiter
    frames, _ = read_with(path)
    assert frames[0].loc[2].tolist() == ["a@x.com;b"]
    path.write_text("email;name,city\na@x.com;Doe,Berlin\n", encoding="utf-8")  # 2 fields either way: ","
    assert list(read_with(path)[0][0].columns) == ["email;name", "city"]
    frames, _ = read_with(path, delimiter=";")  # the setting decides
    assert list(frames[0].columns) == ["email", "name,city"] and frames[0].loc[2].tolist() == ["a@x.com", "Doe,Berlin"]


def test_a_misaligned_block_is_read_on_with_the_files_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"  # test_csv_blocks' misaligned file, with semicolons: the rest is one stream
    path.write_bytes(misaligned_csv().replace(b",", b";"))
    blocks = list(CsvFile("s", path, "utf-8", 3).blocks())
    with pytest.raises(MisalignedBlock):
        blocks[0].load()
    frames, bad = read_with(path, "utf-8", chunk_size=3)
    with path.open(encoding="utf-8", newline="") as handle:  # what one csv.reader makes of the file
        expected = list(csv.reader(handle, delimiter=";"))[1:]
    assert [row for frame in frames for row in frame.values.tolist()] == expected and bad == []
    assert pd.concat(frames).loc[4].tolist() == ["Lead", "2026-11-20T04:00:00Z", "a3@x.com", "two\nlines"]
