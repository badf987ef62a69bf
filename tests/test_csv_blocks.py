"""A CSV file cut into blocks of bytes (parsed where they are mapped) reads exactly as one reader over
the whole file: the same rows, line numbers, columns and bad lines, whatever the file holds."""

from __future__ import annotations

import csv
import itertools
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import csv_folder
from connectors.base import BadLine, RawChunk
from connectors.csv_folder import CsvBlock, CsvFile, MisalignedBlock, _to_chunk
from uploader.errors import SourceError
from uploader.mapping.workers import ChunkMapper
from uploader.settings import SourceSettings

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = 1_795_168_800.0  # 2026-11-20T10:00:00Z
SOURCE = SourceSettings(name="s", type="csv", path=Path("."), default_country="us")
Rows = list[tuple[int, list[str]]]
Bad = list[tuple[int, str, str, str]]


def old_chunks(path: Path, encoding: str, chunk_size: int) -> Iterator[RawChunk]:
    """``CsvFile.chunks`` as it was before blocks, word for word: the reference."""
    with path.open(encoding=encoding, errors="replace", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        records = _old_numbered(reader)
        while batch := list(itertools.islice(records, chunk_size)):
            yield _to_chunk(header, batch, encoding)


def _old_numbered(reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    start = reader.line_num + 1  # type: ignore[attr-defined]
    for row in reader:
        yield start, row
        start = reader.line_num + 1  # type: ignore[attr-defined]


def flat(chunks: Iterator[RawChunk]) -> tuple[Rows, Bad, set[tuple[str, ...]], int]:
    """Every row with its line, every bad line, the column names and the rows read, across chunks."""
    rows: Rows = []
    bad: Bad = []
    columns: set[tuple[str, ...]] = set()
    read = 0
    for chunk in chunks:
        frame = chunk.frame
        assert frame.index.name == "line" and all(dtype == object for dtype in frame.dtypes)
        rows += [(int(line), list(values)) for line, values in zip(frame.index, frame.to_numpy().tolist())]
        bad += [_bad(b) for b in chunk.bad_lines]
        columns.add(tuple(frame.columns))
        read += len(frame) + len(chunk.bad_lines)
    return rows, sorted(bad), columns, read


def _bad(line: BadLine) -> tuple[int, str, str, str]:
    return line.line, line.reason, line.message, line.column


def assert_same_as_before(path: Path, encoding: str, chunk_size: int) -> None:
    got = flat(CsvFile("s", path, encoding, chunk_size).chunks())
    assert got == flat(old_chunks(path, encoding, chunk_size))


def write(tmp: Path, data: bytes) -> Path:
    path = tmp / "a.csv"
    path.write_bytes(data)
    return path


# --- files made of the pieces that break naive splitting ---------------------------------------------

FIELDS = [b"", b"a", b"b c", b"\xc3\xa9t\xc3\xa9", b'"x,y"', b'"say ""hi"""', b'"two\nlines"', b'"cr\r\nlf"',
          b'"lone\rcr"', b'"\n"', b'a"b', b"5'10\"", b'"', b'""', b'"open', b"close\"", b"\xff", b"M\xfcnchen",
          b"\xe2\x82", b"\x00", b"\x1fcapi-block-end\x1f", b'"\x1fcapi-block-end\x1f\n"', b"\xef\xbb\xbfmid"]
ENDINGS = [b"\n", b"\r\n", b"\r"]

field = st.sampled_from(FIELDS)
line = st.tuples(st.lists(field, max_size=5), st.sampled_from(ENDINGS))
header = st.sampled_from([b"h1,h2,h3", b"email", b'"multi\nline",h2', b"h1,h1,,h2", b""])


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    lines = draw(st.lists(line, max_size=30))
    body = b"".join(b",".join(fields) + ending for fields, ending in lines)
    text = bom + draw(header) + draw(st.sampled_from(ENDINGS)) + body
    if draw(st.booleans()):
        text += b",".join(draw(st.lists(field, min_size=1, max_size=3)))  # a last line without newline
    return text


@PROPS
@given(csv_files(), st.integers(1, 7), st.sampled_from(["utf-8-sig", "utf-8", "cp1252", "latin-1", "ascii"]),
       st.sampled_from([(1 << 20, 1 << 20, 256), (5, 1, 1), (1, 16, 4)]))
def test_blocks_read_exactly_as_one_reader(data: bytes, chunk_size: int, encoding: str,
                                           sizes: tuple[int, int, int]) -> None:
    """Small pieces, caps and first guesses put the cuts everywhere: inside lines, between \\r and \\n..."""
    piece, cap, guess = sizes
    path = write(Path(tempfile.mkdtemp()), data)
    with mock.patch.multiple(csv_folder, PIECE_BYTES=piece, MIN_CAP_BYTES=cap, FIRST_LINE_BYTES=guess):
        assert_same_as_before(path, encoding, chunk_size)


@PROPS
@given(st.lists(st.lists(st.text(alphabet='ab ,"\n\r\x1f', max_size=6), max_size=4), max_size=25),
       st.integers(1, 7))
def test_files_written_by_the_csv_module_never_need_the_fallback(rows: list[list[str]], chunk_size: int) -> None:
    """A quote byte outside a quoted field never comes out of a proper writer: every cut holds."""
    path = Path(tempfile.mkdtemp()) / "a.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["h1", "h2", "h3"])
        writer.writerows(rows)
    blocks = list(CsvFile("s", path, "utf-8", chunk_size).blocks())
    assert all(isinstance(block, CsvBlock) for block in blocks)
    for block in blocks:
        block.load()  # raises MisalignedBlock if a cut were wrong
    assert_same_as_before(path, "utf-8", chunk_size)


# --- the cases the blocks were built around ----------------------------------------------------------

def misaligned_csv(rows_before: int = 0, rows_after: int = 8) -> bytes:
    """With chunks of 3, the block of lines 2-4 (after ``rows_before`` clean rows) holds a stray quote
    and the opening quote of a field over two lines: its quote count is even, yet it ends inside
    that field."""
    lines = ["event_name,event_time,email,notes"]
    lines += [f"Lead,2026-11-20T01:00:00Z,before{n}@x.com,fine" for n in range(rows_before)]
    lines += ["Lead,2026-11-20T02:00:00Z,a1@x.com,5'10\" tall",
              "Lead,2026-11-20T03:00:00Z,a2@x.com,plain",
              'Lead,2026-11-20T04:00:00Z,a3@x.com,"two',
              'lines"']
    lines += [f"Lead,2026-11-20T05:00:00Z,after{n}@x.com,n{n}" for n in range(rows_after)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def test_a_stray_quote_that_fools_the_cut_makes_the_rest_read_as_a_stream(tmp_path: Path) -> None:
    path = write(tmp_path, misaligned_csv())
    blocks = list(CsvFile("s", path, "utf-8", 3).blocks())
    with pytest.raises(MisalignedBlock, match="ends inside a field"):
        blocks[0].load()
    with mock.patch.object(CsvBlock, "rest", autospec=True, side_effect=CsvBlock.rest) as rest:
        assert_same_as_before(path, "utf-8", 3)
    assert [call.args[0].first_line for call in rest.call_args_list] == [2]
    rows, _, _, _ = flat(CsvFile("s", path, "utf-8", 3).chunks())
    assert rows[2] == (4, ["Lead", "2026-11-20T04:00:00Z", "a3@x.com", "two\nlines"])
    assert rows[3][0] == 6


def test_a_stray_quote_alone_leaves_the_cuts_where_they_were(tmp_path: Path) -> None:
    lines = ["h,notes", "1,5'10\" tall"] + [f"{n},n" for n in range(2, 12)]
    path = write(tmp_path, ("\n".join(lines) + "\n").encode("utf-8"))
    blocks = list(CsvFile("s", path, "utf-8", 3).blocks())
    assert [block.first_line for block in blocks] == [2, 5, 8, 11]  # no line end evens the count: cut at 3 lines
    assert all(len(block.load().frame) == 3 - (block.first_line == 11) for block in blocks)
    assert_same_as_before(path, "utf-8", 3)


def test_a_quoted_field_over_a_cut_extends_its_block(tmp_path: Path) -> None:
    path = write(tmp_path, b'h,notes\n1,a\n2,"x\ny\nz"\n3,b\n4,c\n')
    blocks = list(CsvFile("s", path, "utf-8", 2).blocks())
    assert [(block.first_line, block.data) for block in blocks] == [(2, b'1,a\n2,"x\ny\nz"\n'), (6, b"3,b\n4,c\n")]
    assert_same_as_before(path, "utf-8", 2)


def test_a_file_with_only_carriage_returns(tmp_path: Path) -> None:
    data = b"email,notes\r" + b"".join(b'u%d@x.com,"a\rb"\r' % n for n in range(40))
    path = write(tmp_path, data)
    blocks = list(CsvFile("s", path, "utf-8", 7).blocks())
    assert all(len(block.load().frame) <= 7 for block in blocks)  # cut at lone \r, and verified
    assert_same_as_before(path, "utf-8", 7)
    with mock.patch.multiple(csv_folder, MIN_CAP_BYTES=32, FIRST_LINE_BYTES=1):  # the cap cuts first
        blocks = list(CsvFile("s", path, "utf-8", 7).blocks())
        assert len(blocks[0].data) <= 32 and csv_folder._line_count(blocks[0].data) < 7
        assert all(isinstance(block.load(), RawChunk) for block in blocks)
        assert_same_as_before(path, "utf-8", 7)


def test_a_line_longer_than_the_cap_is_cut_inside_and_read_as_a_stream(tmp_path: Path) -> None:
    path = write(tmp_path, b"h,notes\n1,a\n2," + b"x" * 300 + b"\n3,b\n4,c\n")
    with mock.patch.multiple(csv_folder, MIN_CAP_BYTES=64, FIRST_LINE_BYTES=1, PIECE_BYTES=16):
        blocks = list(CsvFile("s", path, "utf-8", 2).blocks())
        assert blocks[0].data == b"1,a\n"  # the lines that end before the cap
        with pytest.raises(MisalignedBlock):
            blocks[1].load()
        assert_same_as_before(path, "utf-8", 2)


def test_a_field_over_the_size_limit_stops_the_file_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, b'h,notes\n1,a\n2,"' + b"x" * 200 + b'"\n3,b\n')
    limit = csv.field_size_limit(100)
    try:
        with pytest.raises(csv.Error, match="field larger than field limit"):
            list(old_chunks(path, "utf-8", 1))
        chunks = CsvFile("s", path, "utf-8", 1).chunks()
        assert list(next(chunks).frame.index) == [2]
        with pytest.raises(SourceError) as caught:  # the run reports the file and goes on
            next(chunks)
        assert str(caught.value) == ("line 3 cannot be read (field larger than field limit (100)): most likely a "
                                     "quote opened there is never closed; fix the file and drop it again")
        with pytest.raises(SourceError, match="^line 1 cannot be read"):  # in the header too
            list(CsvFile("s", write(tmp_path, b'"h' + b"x" * 200 + b"\n1\n"), "utf-8", 1).chunks())
    finally:
        csv.field_size_limit(limit)


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"email", b"email\r", b"email\n", b"\n\n\n", b"e\r\nx"])
def test_files_with_nothing_or_next_to_nothing(tmp_path: Path, data: bytes) -> None:
    assert_same_as_before(write(tmp_path, data), "utf-8-sig", 2)


def test_cp1252(tmp_path: Path) -> None:
    path = write(tmp_path, b"email,city\na@x.com,M\xfcnchen\nb@x.com,\x80 \x81\nc@x.com,\"S\xe3o\nPaulo\"\n")
    assert all(isinstance(block, CsvBlock) for block in CsvFile("s", path, "cp1252", 1).blocks())
    assert_same_as_before(path, "cp1252", 1)
    rows, bad, _, _ = flat(CsvFile("s", path, "cp1252", 1).chunks())
    assert rows[0] == (2, ["a@x.com", "München"]) and [b[:2] for b in bad] == [(3, "bad_encoding")]


def test_utf16_is_read_as_one_stream(tmp_path: Path) -> None:
    path = write(tmp_path, "email,notes\na@x.com,\"two\nlines\"\nb@x.com,é\n".encode("utf-16"))
    chunks = list(CsvFile("s", path, "utf-16", 1).blocks())
    assert all(isinstance(chunk, RawChunk) for chunk in chunks) and len(chunks) == 2
    assert_same_as_before(path, "utf-16", 1)


def test_an_unknown_encoding_fails_as_it_always_did(tmp_path: Path) -> None:
    path = write(tmp_path, b"email\na@x.com\n")
    with pytest.raises(LookupError):
        list(CsvFile("s", path, "no-such-codec", 1).chunks())


# --- in the workers ----------------------------------------------------------------------------------

def mapped_frames(path: Path, workers: int) -> tuple[list[int], pd.DataFrame, pd.DataFrame, bool]:
    """(rows read per chunk, every event, every refused row, whether workers started) as a run maps it."""
    unit = CsvFile("s", path, "utf-8", 3)
    with ChunkMapper(workers) as mapper:
        got = list(mapper.map_unit(unit, SOURCE, NOW))
        started = mapper._pool is not None
    events = pd.concat([m.events for _, m in got], ignore_index=True)
    refused = pd.concat([m.refused for _, m in got], ignore_index=True)
    return [rows for rows, _ in got], events, refused, started


@pytest.mark.parametrize("rows_before", [0, 6])
def test_a_misaligned_block_in_the_workers_maps_as_here(tmp_path: Path, rows_before: int) -> None:
    path = write(tmp_path, misaligned_csv(rows_before, rows_after=40))
    here = mapped_frames(path, 0)
    result: list[tuple[list[int], pd.DataFrame, pd.DataFrame, bool]] = []
    worker = threading.Thread(target=lambda: result.append(mapped_frames(path, 1)), daemon=True)
    worker.start()
    worker.join(timeout=300)  # a liveness bound, not a speed claim
    assert not worker.is_alive(), "mapping in the workers hung after a misaligned block"
    there = result[0]
    assert there[3] and not here[3]
    assert there[0] == here[0] and sum(there[0]) == rows_before + 3 + 40
    pd.testing.assert_frame_equal(there[1], here[1])
    pd.testing.assert_frame_equal(there[2], here[2])


def test_blocks_are_parsed_in_the_workers_and_count_their_rows(tmp_path: Path) -> None:
    lines = ["event_name,event_time,email"] + [f"Lead,2026-11-20T01:00:00Z,p{n}@x.com" for n in range(10)]
    path = write(tmp_path, ("\n".join(lines) + "\n\nLead,soon,bad,row\n").encode("utf-8"))
    sent: list[object] = []
    real = ChunkMapper._start

    def spying(mapper: ChunkMapper) -> object:
        pool = real(mapper)
        submit = pool.submit
        pool.submit = lambda fn, item, *args: sent.append(item) or submit(fn, item, *args)  # type: ignore
        return pool

    with mock.patch.object(ChunkMapper, "_start", spying):
        rows, events, refused, started = mapped_frames(path, 1)
    assert started and all(isinstance(item, CsvBlock) for item in sent) and len(sent) == 4
    assert rows == [3, 3, 3, 2] and len(events) == 10  # the last block: a row, a blank line, a bad line
    assert refused.empty or set(refused["reason"]) == {"malformed_row"}
