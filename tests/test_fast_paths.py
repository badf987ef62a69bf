"""Every fast path added for throughput (issue 6) gives exactly what the slow path gives.

The slow paths are kept here as reference implementations (the code the fast paths replaced, or
the plain per-row form), and compared on tables of tricky values and on hypothesis data. No
timing is asserted anywhere: benchmarks/ measures speed.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.csv_folder import CsvFile
from uploader.ledger import Ledger, StoredEvent
from uploader.ledger.schema import events, journal
from uploader.mapping import engine, fields, hashing, identity, payload
from uploader.mapping import normalize as N
from uploader.mapping.columns import as_text
from uploader.validation import rules

PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REGIONS = ["us", "ca", "gb", "de", "fr", "", "xx", None]
# Values that repeat (so the per-distinct-value path matters), tricky text, and pre-hashed ones.
SAMPLES = [" Mary ", "MARY", "mary", "", None, np.nan, "  ", "(650) 555-1212", "+44 20 7946 0958",
           "020 7946 0958", "2/16/1997", "16.02.1997", "1997-02-16", "19970216", "02-16-1997",
           "John_Smith@Gmail.com ", "not an email", "California", "CA", "94035-1234", "SW1A 1AA",
           "United States", "U.S.A.", "Deutschland", "female", "M", "Valéry", "O'Neil", "a" * 64,
           "6915771BE1C5AA0C886870B6951B03D7EAFC121FEA0E80A5EA83BEB7C449F4EC", "l:1234567890123456",
           "1234567890123456.0", "\u00a0x\u2028", "İstanbul", "ß", "0"]
# Numbers too: 0 and 0.0 are equal, but their texts "0" and "0.0" are not.
values_lists = st.lists(st.one_of(st.sampled_from(SAMPLES), st.text(max_size=12), st.integers(-2, 2), st.floats()),
                        min_size=0, max_size=30)
ONE_ARG = [N.email, N.name, N.city, N.country, N.date_of_birth, N.gender, N.external_id, N.lead_id]
TWO_ARG = [N.phone, N.state, N.zip_code]


# --- normalisers: each distinct value normalised once (N._distinct) ---------------------------------


@PROPS
@given(values_lists, st.data())
def test_distinct_values_path_equals_the_plain_path(values: list[object], data: st.DataObject) -> None:
    series = pd.Series(values, dtype=object, index=[i % 3 for i in range(len(values))], name="v")
    countries = pd.Series(data.draw(st.lists(st.sampled_from(REGIONS), min_size=len(values),
                                             max_size=len(values))), index=series.index, dtype=object)
    for fn in ONE_ARG:
        fast, slow = fn(series), fn.__wrapped__(series)
        assert fast.tolist() == slow.tolist() and fast.index.equals(slow.index) and fast.name == "v"
    for fn in TWO_ARG:
        fast, slow = fn(series, countries), fn.__wrapped__(series, countries)
        assert fast.tolist() == slow.tolist() and fast.index.equals(slow.index)


def test_distinct_values_path_keeps_equal_numbers_apart() -> None:
    values = pd.Series([0, 0.0, 1, 1.0, True, "1"], dtype=object)
    for fn in ONE_ARG:
        assert fn(values).tolist() == fn.__wrapped__(values).tolist(), fn.__name__
    assert N.external_id(values).tolist() == ["0", "0.0", "1", "1.0", "True", "1"]


def test_distinct_values_path_aligns_countries_by_label() -> None:
    values = pd.Series(["020 7946 0958", "(650)555-1212", "020 7946 0958"], index=["a", "b", "c"])
    countries = pd.Series(["us", "gb", "gb"], index=["b", "a", "c"])
    assert N.phone(values, countries).tolist() == ["442079460958", "16505551212", "442079460958"]


def _dob_parts_reference(s: pd.Series) -> pd.DataFrame:
    """The vectorised date-of-birth parser the per-value one replaced."""
    found = pd.DataFrame(np.nan, index=s.index, columns=["y", "m", "d"])
    for pattern, order in N._DOB_FORMATS:
        rest = s[found["y"].isna()]
        g = rest.str.extract(pattern)[["y", "a", "b"]].apply(pd.to_numeric).dropna()
        a, b = g["a"], g["b"]
        if order == "ymd":
            month, day = a, b
        elif order == "mdy":
            month, day = b.where(a > 12, a), a.where(a > 12, b)
        else:
            us = (b > 12) & (a <= 12)
            month, day = a.where(us, b), b.where(us, a)
        found.loc[g.index] = np.column_stack([g["y"], month, day])
    return found


def _dob_reference(values: pd.Series) -> list[str]:
    raw = N._prep(values)
    p = _dob_parts_reference(raw).fillna(0).astype(int)
    text = (p["y"].astype(str).str.zfill(4) + p["m"].astype(str).str.zfill(2)
            + p["d"].astype(str).str.zfill(2)).astype(object)
    when = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
    ok = when.notna() & p["y"].ge(1900) & (when <= pd.Timestamp.today())
    out = text.where(ok, "").where(~hashing.is_sha256(raw), raw.str.lower())  # pre-hashed values pass through
    return out.tolist()


dob_text = st.tuples(st.integers(0, 40), st.sampled_from(["-", "/", ".", ""]), st.integers(0, 40),
                     st.sampled_from(["-", "/", ".", ""]), st.integers(1800, 2100),
                     st.sampled_from(["ymd", "dmy"]), st.sampled_from(["", "T10:30", " 10:30:00Z"]))


def _dob_string(parts: tuple) -> str:
    a, s1, b, s2, y, order, time = parts
    return f"{y}{s1}{a:02d}{s2}{b:02d}{time}" if order == "ymd" else f"{a}{s1}{b}{s2}{y}"


@PROPS
@given(st.lists(st.one_of(dob_text.map(_dob_string), st.sampled_from(SAMPLES), st.text(max_size=10)),
                max_size=30))
def test_date_of_birth_per_value_equals_the_vectorised_parser(values: list[object]) -> None:
    series = pd.Series(values, dtype=object)
    assert N.date_of_birth(series).tolist() == _dob_reference(series)


def test_date_of_birth_edge_cases_match_the_reference() -> None:
    today = datetime.date.today()
    values = ["2/30/1997", "13/12/1997", "12/13/1997", "02-16-1997", "16-02-1997", "1899-12-31",
              f"{today:%Y-%m-%d}", f"{today + datetime.timedelta(days=1):%Y-%m-%d}", "1997-2-3T1:02",
              "1997-02-16\n", "1997/02-16", "00.00.2000", "31.04.2000"]
    series = pd.Series(values, dtype=object)
    assert N.date_of_birth(series).tolist() == _dob_reference(series)


# --- hashing -----------------------------------------------------------------------------------------


def _sha256_reference(values: pd.Series) -> list[str]:
    text = hashing._as_text(values)
    hashed = hashing.is_sha256(text)
    todo = text[text.ne("") & ~hashed].unique()
    digests = {v: hashlib.sha256(v.encode("utf-8", "surrogatepass")).hexdigest() for v in todo}
    return text.map(digests).astype(object).fillna("").where(~hashed, text.str.lower()).tolist()


@PROPS
@given(st.lists(st.one_of(st.sampled_from(SAMPLES), st.text(max_size=8), st.integers(), st.floats()),
                max_size=30))
def test_sha256_per_distinct_value_equals_the_reference(values: list[object]) -> None:
    series = pd.Series(values, dtype=object)
    assert hashing.sha256_hex(series).tolist() == _sha256_reference(series)


# --- event ids -----------------------------------------------------------------------------------------


def _event_ids_reference(frame: pd.DataFrame, by_lead: bool = False) -> list[str]:
    """The column-wise recipe the per-row one replaced."""
    short = identity._short_hash
    by_order = identity.RECIPE + "|order|" + frame["event_name"] + "|" + frame["order_id"]
    seconds = frame["event_time"].fillna(-1).astype("int64").astype(str)
    keys = frame[identity.MATCH_KEYS[0]]
    for key in identity.MATCH_KEYS[1:]:
        keys = keys + "|" + frame[key]
    by_person = identity.RECIPE + "|person|" + frame["event_name"] + "|" + seconds + "|" + keys
    recipe = by_order.where(frame["order_id"].ne(""), by_person)
    if by_lead:
        recipe = (identity.RECIPE + "|lead|" + frame["event_name"] + "|" + frame["lead_id"]).where(
            frame["lead_id"].ne(""), recipe)
    return frame["event_id"].where(frame["event_id"].ne(""), recipe.map(short)).tolist()


short_text = st.sampled_from(["", "", "a", "Purchase", "x|y", "é", "1"])


@PROPS
@given(st.lists(st.tuples(short_text, short_text, short_text, short_text,
                          st.one_of(st.none(), st.integers(0, 2_000_000_000))), min_size=1, max_size=25),
       st.booleans())
def test_event_ids_per_row_equal_the_column_recipe(rows: list[tuple], by_lead: bool) -> None:
    frame = pd.DataFrame(rows, columns=["event_id", "event_name", "order_id", "lead_id", "event_time"])
    frame["event_time"] = frame["event_time"].astype("float64")
    for i, key in enumerate(k for k in identity.MATCH_KEYS if k != "lead_id"):
        frame[key] = [("k" + str(i)) if (n + i) % 3 else "" for n in range(len(frame))]
    frame.index = [10 + 2 * i for i in range(len(frame))]
    got = identity.event_ids(frame, by_lead=by_lead)
    assert got.tolist() == _event_ids_reference(frame, by_lead) and got.index.equals(frame.index)


# --- payload JSON ------------------------------------------------------------------------------------


def _member_reference(key: str, values: pd.Series, encode: object) -> pd.Series:
    text = values.astype(str)
    present = text.ne("")
    uniques = text[present].unique()
    encoded = text[present].map(dict(zip(uniques, map(encode, uniques))))
    out = pd.Series("", index=values.index, dtype=object)
    out[present] = f'"{key}":' + encoded + ","
    return out


def _object_reference(members: list[pd.Series]) -> pd.Series:
    joined = members[0]
    for member in members[1:]:
        joined = joined + member
    return "{" + joined.str.rstrip(",") + "}"


json_text = st.one_of(st.sampled_from(["", "", "a\"b", "x\\y", "é\u2028", "\x00\x1f", "USD"]), st.text(max_size=8))


@PROPS
@given(st.lists(st.tuples(json_text, json_text, st.one_of(st.just(""), st.floats(0, 1e9, allow_nan=False))),
                min_size=1, max_size=25))
def test_payload_members_and_objects_equal_the_column_wise_build(rows: list[tuple]) -> None:
    frame = pd.DataFrame(rows, columns=["a", "b", "value"], dtype=object)
    members = [payload._member("a", frame["a"], payload._string), payload._member("b", frame["b"], payload._string),
               payload._member("value", frame["value"], payload._number)]
    reference = [_member_reference("a", frame["a"], payload._string),
                 _member_reference("b", frame["b"], payload._string),
                 _member_reference("value", frame["value"], payload._number)]
    assert [list(m) for m in members] == [m.tolist() for m in reference]
    assert payload._object(members) == _object_reference(reference).tolist()
    for text in payload._object(members):
        json.loads(text)  # every object is valid JSON


@PROPS
@given(st.lists(st.one_of(st.just(np.nan), st.floats(-1e12, 1e12, allow_nan=False), st.sampled_from([0.1, 2.0, 1e-7])),
                min_size=1, max_size=25))
def test_a_float_column_member_is_each_numbers_text_read_back(values: list[float]) -> None:
    column = pd.Series(values, dtype="float64")
    expected = ["" if np.isnan(v) else f'"value":{payload._number(str(v))},' for v in values]
    assert payload._member("value", column, payload._number) == expected


@given(st.text())
def test_string_encoding_is_json_dumps(value: str) -> None:
    assert payload._string(value) == json.dumps(value, ensure_ascii=False)


# --- coverage ------------------------------------------------------------------------------------------


@PROPS
@given(st.lists(st.tuples(st.sampled_from(["Purchase", "Lead", "Subscribe"]),
                          st.lists(st.booleans(), min_size=8, max_size=8)), max_size=30))
def test_coverage_counts_equal_a_groupby_of_the_filled_keys(rows: list[tuple[str, list[bool]]]) -> None:
    keys = ["em", "ph", "external_id", "zp", "country", "lead_id", "fn", "ln"]
    frame = pd.DataFrame({"event_name": [name for name, _ in rows],
                          **{key: ["h" if flags[i] else "" for _, flags in rows] for i, key in enumerate(keys)}},
                         index=range(3, 3 + 2 * len(rows), 2), dtype=object)
    present = frame[keys].ne("").assign(events=True)
    present["fn+ln"] = present["fn"] & present["ln"]
    expected = present.groupby(frame["event_name"])[["events", *engine.COVERAGE_KEYS]].sum().astype("int64")
    got = engine.coverage(frame)
    assert list(got.columns) == ["events", *engine.COVERAGE_KEYS]
    pd.testing.assert_frame_equal(got.sort_index(), expected, check_names=False, check_index_type=False)


# --- columns -------------------------------------------------------------------------------------------


@PROPS
@given(st.lists(st.one_of(st.none(), st.just(np.nan), st.text(max_size=6)), max_size=20),
       st.sampled_from([object, "str"]))
def test_as_text_equals_the_pandas_string_path(values: list[object], dtype: object) -> None:
    series = pd.Series(values, dtype=dtype, name="c")
    reference = series.astype(object).where(series.notna(), "").astype(str).str.strip()
    got = as_text(series)
    assert got.tolist() == reference.tolist() and got.dtype == object and got.name == "c"


# --- validation: rules see the whole frame, only open rows take a verdict ---------------------------


def _refusals_reference(frame: pd.DataFrame, now: float) -> pd.DataFrame:
    """The loop that gave each rule a copy of the rows still open, set verdicts by label."""
    reason = pd.Series("", index=frame.index, dtype=object)
    column, message = reason.copy(), reason.copy()
    for code, test, explain in rules.RULES:
        open_rows = reason.eq("")
        if not open_rows.any():
            break
        rows = frame[open_rows]
        rows = rows[test(rows, now)]
        col, text = explain(rows, now)
        reason[rows.index] = code
        column[rows.index] = col
        message[rows.index] = text
    refused = reason.ne("")
    return pd.DataFrame({"reason": reason[refused], "column": column[refused], "message": message[refused]})


def _parsed_frame(rows: list[tuple]) -> pd.DataFrame:
    now = 1_800_000_000
    frame = pd.DataFrame(index=range(100, 100 + len(rows)))

    def pick(i: int, options: list) -> list:
        return [options[r[i] % len(options)] for r in rows]

    frame["event_name"] = pick(0, ["Purchase", "Lead", "", "Purchase"])
    frame["stage"] = pick(1, ["", "won", ""])
    frame["action_source"] = pick(2, ["system_generated", "physical_store", "bogus"])
    frame["event_time_text"] = pick(3, ["x", "", "2026"])
    frame["event_time"] = pick(3, [np.nan, now - 10, now + 100, now - 30 * 86400, now - 70 * 86400])
    frame["value_text"] = pick(4, ["", "1", "-2", "abc"])
    frame["value"] = pick(4, [np.nan, 1.0, -2.0, np.nan])
    frame["currency"] = pick(5, ["", "USD", "XXQ"])
    frame["cancelled_at_text"] = pick(6, ["", "", "bad"])
    frame["cancelled_at"] = np.nan
    frame["lead_created_at"] = pick(7, [np.nan, now, now - 100 * 86400])
    frame["lead_required"] = pick(8, [False, True, False])
    for i, key in enumerate(rules.IDENTIFYING + ("country",)):
        frame[key] = [("h" if (r[9] >> i) & 1 else "") for r in rows]
    frame["lead_id"] = pick(10, ["", "123456789012345", "12"])
    frame["em_dropped"] = pick(11, [False, True])
    frame["ph_dropped"] = pick(12, [False, True])
    return frame


@PROPS
@given(st.lists(st.tuples(*[st.integers(0, 4095)] * 13), min_size=1, max_size=40))
def test_refusals_equal_the_copy_per_rule_loop(rows: list[tuple]) -> None:
    frame = _parsed_frame(rows)
    got, reference = rules.refusals(frame, 1_800_000_000), _refusals_reference(frame, 1_800_000_000)
    pd.testing.assert_frame_equal(got, reference, check_dtype=False)


# --- CSV reading -------------------------------------------------------------------------------------


csv_cell = st.one_of(st.sampled_from(["", "a", "b c", '"q"', "x,y", "é", " s ", "\ufffd"]),
                     st.text(alphabet='ab ,"\n', max_size=5))


@PROPS
@given(st.lists(st.lists(csv_cell, min_size=0, max_size=4), max_size=25), st.integers(1, 7))
def test_csv_chunks_equal_the_plain_reader(rows: list[list[str]], chunk_size: int) -> None:
    import csv
    import io
    import tempfile

    path = Path(tempfile.mkdtemp()) / "a.csv"
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["h1", "h2", "h3"])
    writer.writerows(rows)
    path.write_text(text.getvalue(), encoding="utf-8", newline="")
    frames, bad = [], []
    for chunk in CsvFile("s", path, "utf-8", chunk_size).chunks():
        frames.append(chunk.frame)
        bad.extend((b.line, b.reason, b.column) for b in chunk.bad_lines)
    expected_rows, expected_bad = _csv_reference(path)
    got = pd.concat(frames) if frames else pd.DataFrame(columns=["h1", "h2", "h3"])
    assert [(int(i), list(r)) for i, r in zip(got.index, got.to_numpy().tolist())] == expected_rows
    assert sorted(bad) == sorted(expected_bad)


def _csv_reference(path: Path) -> tuple[list[tuple[int, list[str]]], list[tuple[int, str, str]]]:
    """Row by row with the csv module: blank lines skipped, long rows malformed, short rows padded,
    rows with a replacement character refused naming the first such column."""
    import csv

    rows, bad = [], []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        start = reader.line_num + 1
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row or row == [""]:
                continue
            if len(row) > len(header):
                bad.append((line, "malformed_row", ""))
                continue
            row = row + [""] * (len(header) - len(row))
            column = next((header[i] for i, cell in enumerate(row) if "\ufffd" in cell), None)
            if column is not None:
                bad.append((line, "bad_encoding", column))
            else:
                rows.append((line, row))
    return rows, bad


# --- ledger: the SQLite insert and update paths ---------------------------------------------------------


def _batch(ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"event_id": ids, "event_name": "Purchase", "event_time": np.arange(len(ids)) + 1_700_000_000,
                         "action_source": "system_generated", "stage_rank": 0,
                         "payload": [json.dumps({"event_id": i, "note": "é\"'"}) for i in ids]})


def test_sqlite_record_writes_what_the_generic_insert_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.dialects import sqlite

    fast = Ledger.open(f"sqlite:///{tmp_path / 'fast.db'}")
    slow = Ledger.open(f"sqlite:///{tmp_path / 'slow.db'}")
    # The generic SQLAlchemy insert, on SQLite: what the fast path must reproduce row for row.
    monkeypatch.setattr(slow.engine.dialect, "name", "sqlite (generic path)", raising=False)
    monkeypatch.setattr("uploader.ledger.store._insert_ignore",
                        lambda engine, table=events: sqlite.insert(table).on_conflict_do_nothing())
    results = []
    for ledger in (fast, slow):
        repeated = _batch(["b", "c", "d", "d", "e"])
        repeated.loc[2, "event_time"] = 1_800_000_000  # two "d": the first one is kept, whatever the order
        repeated.loc[4, "event_time"] = 1_600_000_000
        counts = [ledger.record("ds", "src", _batch(["a", "b", "c"]), 1_700_000_100.5),
                  ledger.record("ds", "src", repeated, 1_700_000_200.0)]
        with ledger.engine.connect() as conn:
            rows = conn.execute(events.select().order_by(events.c.event_id)).all()
        results.append((counts, [tuple(r) for r in rows]))
    assert results[0] == results[1]
    assert results[0][0] == [3, 2] and len(results[0][1]) == 5
    assert [row[4] for row in results[0][1] if row[2] == "d"] == [1_800_000_000]


def test_sqlite_ledger_marks_exactly_the_batch(tmp_path: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'l.db'}")
    ledger.record("ds", "src", _batch([f"e{i}" for i in range(10)]), 1_700_000_000)
    ledger.record("other", "src", _batch(["e1"]), 1_700_000_000)
    page = next(ledger.pending("ds", 4))
    ledger.mark_sent("ds", page, "trace", 1_700_000_500)
    ledger.mark_attempt("ds", page[:1], "boom", None, 1_700_000_600)
    with ledger.engine.connect() as conn:
        rows = dict(conn.execute(events.select().with_only_columns(events.c.event_id, events.c.status)
                                 .where(events.c.dataset_id == "ds")).all())
        other = conn.execute(events.select().with_only_columns(events.c.status)
                             .where(events.c.dataset_id == "other")).scalar()
    assert sorted(k for k, v in rows.items() if v == "sent") == sorted(e.event_id for e in page)
    assert other == "pending" and ledger.count("ds", "pending") == 6
    with ledger.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_postgresql_journal_copy_writes_what_the_generic_insert_writes(postgres_ledger_url: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    odd = ["plain", "tab\there", "new\nline", "back\\slash", 'quote"', "\\N", "é-ü-漢", ""]
    batch = [StoredEvent("Purchase", f"id-{text}", 1_700_000_000 + i, "{}", i % 3, "phone_call", "crm")
             for i, text in enumerate(odd)]
    ledger = Ledger.open(postgres_ledger_url, fold_every=10**9)
    ledger.mark_sent("copy", batch, "TRACE", 1_700_000_100.25)
    # SQLAlchemy's executemany: what the COPY must reproduce row for row.
    monkeypatch.setattr(ledger.engine.dialect, "driver", "generic")
    ledger.mark_sent("generic", batch, "TRACE", 1_700_000_100.25)
    with ledger.engine.connect() as conn:
        rows = conn.execute(journal.select().order_by(journal.c.seq)).all()
    ledger.close()
    # Each row but its seq and dataset, per dataset.
    written = {name: [tuple(row)[2:] for row in rows if row.dataset_id == name] for name in ("copy", "generic")}
    assert written["copy"] == written["generic"]
    assert [row[1] for row in written["copy"]] == [event.event_id for event in batch]


# --- phones: the slow path's canonical check may be answered by the (exact) fast path ----------------


def _phone_one_reference(text: str, region: str) -> str:
    digits = N._phone_parse(text, region)
    return digits if digits and N._phone_parse("+" + digits, "") == digits else ""


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.sampled_from(["020 7946 0958", "030 2005861", "06 12 34 56 78",
                                                     "+44 (0)20 7946 0958", "+31 0000000", "0044 20 7946 0958"]),
                                    st.text(alphabet="0123456789+ ()-", min_size=1, max_size=16)),
                          st.sampled_from(["us", "gb", "de", "fr", "nl", "it", "au", ""])), max_size=20))
def test_phone_slow_path_equals_phonenumbers_alone(pairs: list[tuple[str, str]]) -> None:
    for text, region in pairs:
        prepared = N._phone_prepare_one(text)
        assert N._phone_one(prepared, region) == _phone_one_reference(prepared, region), (text, region)


# --- phones: the common US and Canadian shapes, read by one regex -----------------------------------

def _us_digits(size: int) -> st.SearchStrategy[str]:
    """``size`` digits, leading 0 and 1 as often as 2-9 (NANP refuses those), or a size off by one."""
    exact = st.tuples(st.sampled_from("0123456789" + "01" * 4), st.text(alphabet="0123456789", min_size=size - 1,
                                                                      max_size=size - 1)).map("".join)
    return st.one_of(exact, exact, exact, st.text(alphabet="0123456789", min_size=size - 1, max_size=size + 1))


us_separator = st.sampled_from(["", " ", "-", ".", ") ", ")", "(", "--", " x"])
us_text = st.one_of(
    st.tuples(st.sampled_from(["", "1", "+1", "1 ", "+1 ", "1-", "+1-", "+1.", "+", "+2", "11", "0", "001 "]),
              st.sampled_from(["", "("]), _us_digits(3), us_separator, _us_digits(3), us_separator, _us_digits(4),
              st.sampled_from(["", "", "", " ", " x12", "#"])).map("".join),
    st.text(alphabet="0123456789 ().+-", min_size=1, max_size=18))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(us_text, st.sampled_from(["us", "ca", "gb", "pr", ""])), min_size=1, max_size=20))
def test_phone_common_us_shapes_equal_the_general_path(pairs: list[tuple[str, str]]) -> None:
    texts, regions = (list(column) for column in zip(*pairs))
    out = N.phone(pd.Series(texts, dtype=object), pd.Series(regions, dtype=object)).tolist()
    assert out == [N._phone_general(text.strip(), region) for text, region in pairs]  # values come stripped


def test_phone_common_us_shapes_are_the_ones_the_regex_reads() -> None:
    common = ["(650) 555-1212", "650.555.1212", "650-555-1212", "6505551212", "+1 650 555 1212", "1-650-555-1212"]
    assert all(N._US_COMMON_RE.fullmatch(text) for text in common)
    assert N.phone(pd.Series(common), pd.Series(["us"] * 6)).tolist() == ["16505551212"] * 6
    assert not any(N._US_COMMON_RE.fullmatch(text) for text in ["650-555-1212 x123", "(123) 456-7890", "+650 555 1212"])


# --- phones: national prefixes read with phonenumbers' own steps, without parse's text handling ------

ALL_REGIONS = sorted(region.lower() for region in phonenumbers.SUPPORTED_REGIONS)
national_digits = st.text(alphabet="0123456789", min_size=1, max_size=16)
national_text = st.tuples(st.sampled_from(["", "0", "0", "00", "(0", "8", "1"]), national_digits,
                          st.sampled_from(["", " ", "-", ".", ") ", " ("]), st.text(alphabet="0123456789", max_size=6)
                          ).map("".join)
plus_text = st.tuples(st.sampled_from(["+", "+ "]),
                      st.sampled_from(sorted(str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)),
                      st.sampled_from(["", " ", " (0)", "(0)", " 0", "-", " 8 "]), national_digits).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.one_of(national_text, plus_text), st.sampled_from(ALL_REGIONS + ["gb", "de", "fr", ""])),
                min_size=1, max_size=10))
def test_phone_national_prefix_fast_paths_equal_phonenumbers(pairs: list[tuple[str, str]]) -> None:
    """Where the national and international fast paths answer, phonenumbers (the slow path) agrees."""
    for text, region in pairs:
        prepared = N._phone_prepare_one(text.strip())
        for fast in (N._phone_fast_national(prepared, region), N._phone_fast_international(prepared)):
            if fast is not None:
                assert fast == N._phone_one(prepared, region), (text, region)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.tuples(st.sampled_from(["", "0", "00", "8", "1", "01", "15", "9"]), national_digits)
                          .map("".join), st.sampled_from(ALL_REGIONS)), min_size=1, max_size=20))
def test_the_national_prefix_step_equals_phonenumbers_own(pairs: list[tuple[str, str]]) -> None:
    """Every region's plan, and every calling code's, strips exactly what phonenumbers' step strips."""
    from phonenumbers.phonenumberutil import _maybe_strip_national_prefix_carrier_code as strip
    by_code = N._calling_code_plans()
    for digits, region in pairs:
        plan, code, _ = N._national_plans()[region]
        for numbering in (plan, by_code[code]):
            assert N._stripped_national_prefix(digits, numbering) == strip(digits, numbering.meta)[1], (digits, region)


def test_the_national_prefix_step_keeps_a_prefix_the_number_needs() -> None:
    gb = N._national_plans()["gb"][0]
    assert N._stripped_national_prefix("02079460958", gb) == "2079460958"
    assert N._stripped_national_prefix("2079460958", gb) == "2079460958"  # no prefix to strip
    assert N._stripped_national_prefix("", gb) == ""
    # Argentina's plan rewrites what it strips: its own step (transform rule) decides.
    ar = N._national_plans()["ar"][0]
    assert ar.transform and N._stripped_national_prefix("0111512345678", ar) == "91112345678"


def test_phone_national_prefix_fast_paths_answer_the_common_shapes() -> None:
    assert N._phone_fast_national("020 7946 0958", "gb") == "442079460958"
    assert N._phone_fast_national("030 2005861", "de") == "49302005861"
    assert N._phone_fast_national("06 12 34 56 78", "fr") == "33612345678"
    assert N._phone_fast_international("+44 (0)20 7946 0958") == "442079460958"
    # Left to the slow path: the region's IDD or country code at the start, no region, a "+".
    assert N._phone_fast_national("0044 20 7946 0958", "gb") is None
    assert N._phone_fast_national("44 20 7946 0958", "gb") is None
    assert N._phone_fast_national("020 7946 0958", "") is None
    assert N._phone_fast_national("+44 20 7946 0958", "gb") is None


# --- event fields: one pass classifies each value, empty values cost nothing -------------------------


def _event_times_reference(values: pd.Series, timezone: str) -> pd.Series:
    """The column-wise classification (three .str passes over every value) it replaced."""
    out = pd.Series(np.nan, index=values.index, dtype="float64")
    unix = values.str.match(fields._UNIX)
    out[unix] = pd.to_numeric(values[unix], errors="coerce").astype("float64")
    aware = ~unix & values.str.contains(fields._AWARE, regex=True)
    out[aware] = fields._seconds(pd.to_datetime(values[aware], format="ISO8601", utc=True, errors="coerce"))
    naive = ~unix & ~aware & values.ne("")
    out[naive] = fields._seconds(fields._localize(pd.to_datetime(values[naive], format="ISO8601", errors="coerce"),
                                                  timezone))
    return out.floordiv(1)


def _amounts_reference(values: pd.Series) -> pd.Series:
    clean = values.str.replace(" ", "", regex=False)
    ok = clean.str.match(fields._AMOUNT) | clean.str.match(r"^-(?:\d+)(?:\.\d+)?$")
    return pd.to_numeric(clean.where(ok, "").str.replace(",", "", regex=False), errors="coerce")


time_text = st.one_of(
    st.just(""), st.sampled_from(["1795168800", "1795168800.5", "179516880", "2026-11-20T10:00:00Z", "2026-11-20 10:00",
                                  "2026-11-20T10:00:00+01:00", "2026-03-08T02:30:00", "2026-11-01T01:30:00", "soon",
                                  "2026-11-20T10:00:00 z", "20.11.2026 10:00", "2026-02-30", "1795168800000"]),
    st.datetimes().map(lambda d: d.isoformat(sep=" ")), st.text(alphabet="0123456789-:TZ+. ", max_size=22))
amount_text = st.one_of(st.just(""), st.sampled_from(["1234.5", "1,234.50", " 10 ", "-5", "abc", "1.2.3", "12,34", "1e5",
                                                      "0", "-0.5", "1 000", "12\n"]),
                        st.text(alphabet="0123456789,.- ", max_size=12))


@PROPS
@given(st.lists(time_text, max_size=25), st.sampled_from(["UTC", "America/New_York", "Europe/Berlin"]))
def test_event_times_equal_the_column_wise_passes(values: list[str], timezone: str) -> None:
    series = pd.Series(values, dtype=object, index=[3 * i + 1 for i in range(len(values))])
    try:
        expected = _event_times_reference(series, timezone)
    except (ValueError, OverflowError) as error:  # e.g. year 0: out of pandas' range, then and now
        with pytest.raises(type(error)):
            fields.event_times(series, timezone)
        return
    pd.testing.assert_series_equal(fields.event_times(series, timezone), expected)


@PROPS
@given(st.lists(amount_text, max_size=25))
def test_amounts_equal_the_column_wise_passes(values: list[str]) -> None:
    series = pd.Series(values, dtype=object, name="value", index=[3 * i + 1 for i in range(len(values))])
    pd.testing.assert_series_equal(fields.amounts(series), _amounts_reference(series))
