"""Normalisers for user_data: Meta's rules, tricky inputs, and properties (hypothesis)."""

from __future__ import annotations

import datetime
import hashlib
import types
from collections.abc import Callable

import numpy as np
import pandas as pd
import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uploader.mapping import normalize as N
from uploader.mapping.hashing import sha256_hex

HEX = "6915771BE1C5AA0C886870B6951B03D7EAFC121FEA0E80A5EA83BEB7C449F4EC"  # sha256("mary"), upper
NAN = np.nan
PROPS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run1(fn: Callable[..., pd.Series], value: object, country: str | None = None) -> str:
    """Normalise one value (as a one-row object Series) and return the single result."""
    s = pd.Series([value], dtype=object)
    out = fn(s) if country is None else fn(s, pd.Series([country], dtype=object))
    assert out.dtype == object and out.index.equals(s.index)
    return out.iloc[0]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- Meta's published examples, end to end (normalise, then hash) ----------------------------

META = [  # (normaliser, raw, country, normalised, digest published by Meta)
    (N.email, " John_Smith@gmail.com ", None, "john_smith@gmail.com",
     "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"),
    (N.phone, "(650)555-1212", "us", "16505551212",
     "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"),
    (N.name, "Mary", None, "mary",
     "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"),
    (N.date_of_birth, "2/16/1997", None, "19970216",
     "01acdbf6ec7b4f478a225f1a246e5d6767eeab1a7ffa17f025265b5b94f40f0c"),
    (N.country, "United States", None, "us",
     "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"),
]


@pytest.mark.parametrize("fn, raw, country, normalised, digest", META)
def test_meta_examples(fn: Callable[..., pd.Series], raw: str, country: str | None,
                       normalised: str, digest: str) -> None:
    assert run1(fn, raw, country) == normalised
    assert sha(normalised) == digest
    assert sha256_hex(pd.Series([normalised])).iloc[0] == digest


# --- tables of tricky inputs, per field -------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("  John_Smith@Gmail.COM ", "john_smith@gmail.com"),
    ("", ""), ("   ", ""), (NAN, ""), (None, ""),
    ("n/a", ""), ("john@", ""), ("@gmail.com", ""), ("john@gmail", ""), ("a@b@c.com", ""),
    ("john smith@gmail.com", ""), ("John <john@x.com>", ""), ("a@x.com;b@y.com", ""),
    ("john@gmail..com", ""), ("john@gmail.c", ""),
    ("JOSÉ@Correo.es", "josé@correo.es"), ("иван@почта.рф", "иван@почта.рф"),
    ("x@xn--p1ai.xn--p1ai", "x@xn--p1ai.xn--p1ai"),
    (HEX, HEX.lower()), (" " + HEX + " ", HEX.lower()),
])
def test_email(raw: object, expected: str) -> None:
    assert run1(N.email, raw) == expected


@pytest.mark.parametrize("raw, country, expected", [
    ("(650)555-1212", "us", "16505551212"),
    ("650-555-1212", "us", "16505551212"),
    ("1 650 555 1212", "us", "16505551212"),
    ("+1 (650) 555-1212", "", "16505551212"),
    ("650.555.1212", "ca", "16505551212"),
    ("+44 844 412 4653", "", "448444124653"),
    ("+44 844 412 4653", "us", "448444124653"),  # "+" wins over the row's country
    ("0044 20 7946 0958", "", "442079460958"),
    ("0044 20 7946 0958", "us", "442079460958"),  # so does "00"
    ("+44 (0)20 7946 0958", "", "442079460958"),
    ("020 7946 0958", "gb", "442079460958"),
    ("06 12 34 56 78", "fr", "33612345678"),
    ("+33 6 12 34 56 78", "de", "33612345678"),
    ("030 123456", "de", "4930123456"), ("+49 030 123456", "", "4930123456"),
    ("+49 (0)30 123456", "fr", "4930123456"), ("+39 06 1234 5678", "", "390612345678"),
    ("650-555-1212", "", ""),  # national number and no country: never guess
    ("020 7946 0958", "", ""),
    ("+1 650 555 1212 x123", "us", "16505551212"),
    ("(650) 555-1212 ext. 12", "us", "16505551212"),
    ("650-555-1212 Ext:9", "us", "16505551212"),
    ("555-1212", "us", ""),  # local-only: no area code
    ("0000000000", "us", ""), ("(123) 456-7890", "us", ""),  # NANP placeholders
    ("n/a", "us", ""), ("12", "us", ""), ("call me", "us", ""), ("1-800-FLOWERS", "us", ""),
    ("", "us", ""), ("  ", "gb", ""), (NAN, "us", ""), (None, "us", ""),
    ("+999 123 456 789", "", ""), ("+", "us", ""), ("0", "us", ""),
    ("+7 912 345-67-89", "", "79123456789"),
    ("090-1234-5678", "jp", "819012345678"),
    ("٠٢٠ ٧٩٤٦ ٠٩٥٨", "gb", "442079460958"),  # Arabic-Indic digits
    (HEX, "us", HEX.lower()), (HEX, "", HEX.lower()),
])
def test_phone(raw: object, country: str, expected: str) -> None:
    assert run1(N.phone, raw, country) == expected


@pytest.mark.parametrize("raw, expected", [
    ("Mary", "mary"), ("Valéry", "valéry"), ("Vale\u0301ry", "valéry"),  # NFC
    ("O'Brien", "obrien"), ("Smith-Jones", "smithjones"), ("J.", "j"),
    ("  Mary   Ann ", "mary ann"), ("Mary\tAnn", "mary ann"), ("ÉLODIE", "élodie"),
    ("정", "정"), ("Мария", "мария"), ("محمد", "محمد"), ("山田", "山田"), ("Straße", "straße"),
    ("Zoë 🙂", "zoë"), ("José\u200b", "josé"),
    ("", ""), ("   ", ""), (NAN, ""), (None, ""), ("123", ""), ("1 2", ""), ("...", ""), ("-", ""),
    (HEX, HEX.lower()),
])
def test_name(raw: object, expected: str) -> None:
    assert run1(N.name, raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("New York", "newyork"), ("St. Louis", "stlouis"), ("São Paulo", "sãopaulo"),
    ("Winston-Salem", "winstonsalem"), ("  Los   Angeles ", "losangeles"), ("MÜNCHEN", "münchen"),
    ("東京", "東京"), ("Москва", "москва"), ("Kraków", "kraków"),
    ("", ""), (" ", ""), (NAN, ""), (None, ""), ("12345", ""), ("#!", ""), (HEX, HEX.lower()),
])
def test_city(raw: object, expected: str) -> None:
    assert run1(N.city, raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("United States", "us"), ("US", "us"), ("usa", "us"), ("U.S.", "us"), ("U.S.A.", "us"),
    ("United States of America", "us"), ("America", "us"), (" uk ", "gb"), ("U.K.", "gb"),
    ("Great Britain", "gb"), ("England", "gb"), ("Scotland", "gb"), ("Wales", "gb"),
    ("Northern Ireland", "gb"), ("GBR", "gb"), ("Deutschland", "de"), ("DEU", "de"),
    ("germany", "de"), ("Holland", "nl"), ("The Netherlands", "nl"), ("South Korea", "kr"),
    ("Korea, Republic of", "kr"), ("Republic of Korea", "kr"), ("North Korea", "kp"),
    ("Russia", "ru"), ("Russian Federation", "ru"), ("Iran", "ir"), ("Côte d'Ivoire", "ci"),
    ("Cote d'Ivoire", "ci"), ("Viet Nam", "vn"), ("Vietnam", "vn"), ("Czechia", "cz"),
    ("Czech Republic", "cz"), ("Taiwan", "tw"), ("Türkiye", "tr"), ("Turkey", "tr"),
    ("FRANCE", "fr"), ("fr", "fr"), ("Bolivia", "bo"), ("Georgia", "ge"),
    ("", ""), ("  ", ""), (NAN, ""), (None, ""), ("Atlantis", ""), ("xx", ""), ("123", ""),
    ("日本", ""), (HEX, HEX.lower()),
])
def test_country(raw: object, expected: str) -> None:
    assert run1(N.country, raw) == expected


@pytest.mark.parametrize("raw, country, expected", [
    ("California", "us", "ca"), ("CA", "us", "ca"), ("ca", "", "ca"), ("new york", "us", "ny"),
    ("NewYork", "us", "ny"), ("New-York", "", "ny"), ("District of Columbia", "us", "dc"),
    ("Washington, D.C.", "us", "dc"), ("D.C.", "us", "dc"), ("US-TX", "us", "tx"),
    ("Puerto Rico", "us", "pr"), ("Georgia", "", "ga"),
    ("Ontario", "us", ""), ("Bavaria", "us", ""), ("ZZ", "us", ""),  # US row, not a US state
    ("Île-de-France", "fr", "îledefrance"), ("ON", "ca", "on"), ("Ontario", "", "ontario"),
    ("New South Wales", "au", "newsouthwales"), ("北京", "cn", "北京"),
    ("Baden-Württemberg", "de", "badenwürttemberg"),
    ("", "us", ""), ("  ", "", ""), (NAN, "us", ""), (None, "fr", ""), ("12", "fr", ""),
    (HEX, "us", HEX.lower()), (HEX, "fr", HEX.lower()),
])
def test_state(raw: object, country: str, expected: str) -> None:
    assert run1(N.state, raw, country) == expected


@pytest.mark.parametrize("raw, country, expected", [
    ("94035-1234", "us", "94035"), ("940351234", "us", "94035"), ("94035", "us", "94035"),
    ("94035 1234", "", "94035"), ("94035-1234", "", "94035"), ("2134", "us", "02134"),
    ("2134", "", "2134"),  # padding only when the row is explicitly US
    ("2134.0", "us", "02134"), ("501", "us", "00501"), ("21341234", "us", "02134"),
    ("SW1A 1AA", "gb", "sw1a1aa"), ("SW1A 1AA", "us", ""), ("K1A 0B1", "ca", "k1a0b1"),
    ("75008", "fr", "75008"), ("100-0001", "jp", "1000001"), ("D02 X285", "ie", "d02x285"),
    ("", "us", ""), ("   ", "gb", ""), (NAN, "us", ""), (None, "", ""), ("n/a", "gb", ""),
    ("unknown", "", ""), ("123456", "us", ""), ("東京", "jp", ""), (HEX, "us", HEX.lower()),
])
def test_zip_code(raw: object, country: str, expected: str) -> None:
    assert run1(N.zip_code, raw, country) == expected


@pytest.mark.parametrize("raw, expected", [
    ("1997-02-16", "19970216"), ("19970216", "19970216"), ("1997/02/16", "19970216"),
    ("2/16/1997", "19970216"), ("02/16/1997", "19970216"), ("16/2/1997", "19970216"),
    ("16.02.1997", "19970216"), ("16-02-1997", "19970216"), ("02-16-1997", "19970216"),
    ("1997-02-16T00:00:00", "19970216"), ("1997-02-16 00:00:00", "19970216"),
    ("1997-02-16T00:00:00.000Z", "19970216"), ("3/4/1997", "19970304"), ("1.2.2000", "20000201"),
    ("2/16/97", ""), ("16.02.97", ""), ("1997-02-30", ""), ("2/29/2001", ""),
    ("2/29/2000", "20000229"),
    ("13/13/1997", ""), ("1899-12-31", ""), ("1900-01-01", "19000101"), ("2999-01-01", ""),
    ("16/02-1997", ""), ("", ""), ("  ", ""), (NAN, ""), (None, ""), ("yesterday", ""),
    ("١٩٩٧-٠٢-١٦", ""), (HEX, HEX.lower()),
])
def test_date_of_birth(raw: object, expected: str) -> None:
    assert run1(N.date_of_birth, raw) == expected


def test_date_of_birth_not_in_future() -> None:
    tomorrow = (pd.Timestamp.today() + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    today = pd.Timestamp.today().strftime("%Y-%m-%d")
    assert run1(N.date_of_birth, tomorrow) == ""
    assert run1(N.date_of_birth, today) == today.replace("-", "")


def test_date_of_birth_today_moves_at_local_midnight(monkeypatch: pytest.MonkeyPatch) -> None:
    # Today's date is worked out once a minute, not once a process: a scheduler running for days
    # must accept a birthday dated today as soon as today begins.
    before_midnight = datetime.datetime(2026, 11, 23, 23, 59, 30).timestamp()  # local time
    clock = types.SimpleNamespace(time=lambda: before_midnight)
    monkeypatch.setattr(N, "time", clock)
    assert run1(N.date_of_birth, "2026-11-24") == ""
    assert run1(N.date_of_birth, "2026-11-23") == "20261123"
    clock.time = lambda: before_midnight + 30
    assert run1(N.date_of_birth, "2026-11-24") == "20261124"


@pytest.mark.parametrize("raw, expected", [
    ("F", "f"), ("female", "f"), ("Woman", "f"), ("w", "f"), ("Weiblich", "f"), ("femme", "f"),
    ("MUJER", "f"), ("femenino", "f"), ("fem", "f"), ("f.", "f"),
    ("m", "m"), ("Male", "m"), ("man", "m"), ("männlich", "m"), ("MÄNNLICH", "m"), ("homme", "m"),
    ("hombre", "m"), ("masculino", "m"), ("masc", "m"), (" M ", "m"),
    ("", ""), ("  ", ""), (NAN, ""), (None, ""), ("x", ""), ("other", ""), ("unknown", ""),
    ("1", ""), ("女", ""), (HEX, HEX.lower()),
])
def test_gender(raw: object, expected: str) -> None:
    assert run1(N.gender, raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("  CRM-00042 ", "CRM-00042"), ("abc", "abc"), ("ABC", "ABC"), ("42", "42"),
    ("ключ-1", "ключ-1"), ("", ""), ("   ", ""), (NAN, ""), (None, ""), (HEX, HEX.lower()),
])
def test_external_id(raw: object, expected: str) -> None:
    assert run1(N.external_id, raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("1234567890123456", "1234567890123456"), (" 1234567890123456 ", "1234567890123456"),
    ("1234567890123456.0", "1234567890123456"), ("l:1234567890123456", "1234567890123456"),
    ("1.23456789012346E+15", ""), ("12-34", ""), ("abc", ""), ("١٢٣", ""),
    ("", ""), ("  ", ""), (NAN, ""), (None, ""),
    (HEX, ""),  # never hashed, so a digest is not a lead id
])
def test_lead_id(raw: object, expected: str) -> None:
    assert run1(N.lead_id, raw) == expected


# --- the Series contract ----------------------------------------------------------------------

ONE_ARG = [N.email, N.name, N.city, N.country, N.date_of_birth, N.gender, N.external_id, N.lead_id]
TWO_ARG = [N.phone, N.state, N.zip_code]


@pytest.mark.parametrize("fn", ONE_ARG + TWO_ARG)
def test_series_contract(fn: Callable[..., pd.Series]) -> None:
    """Same index (even duplicate labels), name kept, dtype object of str, "str" dtype input ok."""
    values = pd.Series(["Mary", None, " 650 555 1212 ", "", "us"], index=[5, 5, 9, 2, 0],
                       dtype="str", name="col")
    countries = pd.Series(["us", "us", "us", "", None], index=values.index, dtype="str")
    out = fn(values) if fn in ONE_ARG else fn(values, countries)
    assert out.index.equals(values.index) and out.name == "col" and out.dtype == object
    assert all(isinstance(v, str) for v in out)
    assert out.iloc[1] == "" and out.iloc[3] == ""


def test_dropped_values_are_detectable() -> None:
    raw = pd.Series(["a@b.com", "nope", "", None, "  "], dtype=object)
    out = N.email(raw)
    dropped = raw.fillna("").str.strip().ne("") & out.eq("")
    assert dropped.tolist() == [False, True, False, False, False]


def test_phone_countries_aligned_by_label() -> None:
    values = pd.Series(["020 7946 0958", "(650)555-1212"], index=["a", "b"])
    countries = pd.Series(["us", "gb"], index=["b", "a"])
    assert N.phone(values, countries).tolist() == ["442079460958", "16505551212"]


# --- properties (hypothesis) ------------------------------------------------------------------

REGIONS = ["us", "ca", "gb", "fr", "de", "it", "in", "ar", "br", "mx", "ru", "au", "jp", "cn",
           "", "xx"]
any_value = st.one_of(st.none(), st.just(NAN), st.text(max_size=30),
                      st.text(alphabet="0123456789+-() ./xX#ext:", max_size=25))
regions = st.sampled_from(REGIONS)
rows = st.lists(st.tuples(any_value, regions), min_size=1, max_size=40)


def frame(pairs: list[tuple[object, str]]) -> tuple[pd.Series, pd.Series]:
    return (pd.Series([v for v, _ in pairs], dtype=object),
            pd.Series([c for _, c in pairs], dtype=object))


@PROPS
@given(rows)
def test_never_raises_and_keeps_shape(pairs: list[tuple[object, str]]) -> None:
    values, countries = frame(pairs)
    for fn in ONE_ARG:
        out = fn(values)
        assert out.index.equals(values.index) and all(isinstance(v, str) for v in out)
    for fn in TWO_ARG:
        out = fn(values, countries)
        assert out.index.equals(values.index) and all(isinstance(v, str) for v in out)


@PROPS
@given(rows)
def test_idempotent(pairs: list[tuple[object, str]]) -> None:
    values, countries = frame(pairs)
    for fn in (N.email, N.name, N.city, N.country, N.gender, N.date_of_birth, N.external_id,
               N.lead_id):
        once = fn(values)
        assert fn(once).tolist() == once.tolist(), fn.__name__
    for fn in (N.zip_code, N.state):
        once = fn(values, countries)
        assert fn(once, countries).tolist() == once.tolist(), fn.__name__


def nanp_text() -> st.SearchStrategy[str]:
    """US-style numbers in the shapes CRMs export: separators, parentheses, optional 1 / +1."""
    digit, lead = st.sampled_from("0123456789"), st.sampled_from("23456789")
    part = lambda first, n: st.tuples(first, *[digit] * (n - 1)).map("".join)  # noqa: E731
    sep = st.sampled_from(["", " ", "-", ".", ") ", "-"])
    return st.tuples(st.sampled_from(["", "1 ", "1-", "+1 ", "+1", "(", "1 ("]),
                     part(lead, 3), sep, part(lead, 3), sep, part(digit, 4)).map("".join)


def international_text() -> st.SearchStrategy[str]:
    """"+" or "00", a real calling code, a national part of a plausible length, separators."""
    every = st.sampled_from(sorted(str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE))
    # Codes whose plans have national prefixes, long or variable lengths, or transform rules.
    tricky = st.sampled_from(["1", "7", "33", "39", "44", "49", "52", "54", "55", "61", "81", "91"])
    body = st.text(alphabet="0123456789", min_size=1, max_size=15)
    sep = st.sampled_from(["", " ", "-", " (0) ", " 0", "(", ") ", "."])
    return st.tuples(st.sampled_from(["+", "00", "+ "]), st.one_of(tricky, every), sep, body,
                     sep, st.text(alphabet="0123456789", max_size=4)).map("".join)


phone_like = st.one_of(nanp_text(), international_text(),
                       st.text(alphabet="0123456789+-() .", max_size=22))
phone_rows = st.lists(st.tuples(phone_like, regions), min_size=1, max_size=40)


@settings(max_examples=50, deadline=None)
@given(phone_rows)
def test_phone_fast_path_equals_slow_path(pairs: list[tuple[str, str]]) -> None:
    values, countries = frame(pairs)
    prepared = N._phone_prepare(N._prep(values))
    fast = N._phone_fast(prepared, countries)
    slow = N._phone_slow(prepared, countries)
    handled = fast.notna()
    assert fast[handled].tolist() == slow[handled].tolist()
    assert N.phone(values, countries).tolist() == slow.tolist()


@settings(max_examples=30, deadline=None)
@given(st.lists(nanp_text(), min_size=1, max_size=20), st.sampled_from(["us", "ca"]))
def test_phone_fast_path_covers_us_numbers(numbers: list[str], region: str) -> None:
    values = pd.Series(numbers, dtype=object)
    countries = pd.Series([region] * len(numbers), dtype=object)
    fast = N._phone_fast(N._phone_prepare(N._prep(values)), countries)
    assert fast.notna().all()
    assert fast.str.fullmatch(r"1[2-9][0-9]{2}[2-9][0-9]{6}").all()


@PROPS
@given(phone_rows)
def test_phone_idempotent(pairs: list[tuple[str, str]]) -> None:
    values, countries = frame(pairs)
    once = N.phone(values, countries)
    kept = once.ne("")
    # The output is E.164 without "+": with the "+" put back it reads the same in any country,
    assert N.phone("+" + once[kept], countries[kept]).tolist() == once[kept].tolist()
    # and a NANP result reads the same again in a US or Canadian row.
    nanp = kept & countries.isin(["us", "ca"]) & once.str.startswith("1")
    assert N.phone(once[nanp], countries[nanp]).tolist() == once[nanp].tolist()
