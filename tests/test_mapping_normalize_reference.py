"""The per-value normalisers give exactly what the column-wise (pandas .str) ones they replaced gave.

The column-wise versions are kept here verbatim as the reference (issue 6: throughput). They are
compared with both forms of every public normaliser: the per-distinct-value one and its plain
per-row ``__wrapped__``, on tables of tricky values and on hypothesis data (any Unicode text,
pre-hashed values, missing values, every region shape). Tables (countries, US states, genders) are
rebuilt here with the reference key functions, so the per-value key functions are checked too.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Callable

import numpy as np
import pandas as pd
import pycountry
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uploader.mapping import hashing
from uploader.mapping import normalize as N

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- the column-wise reference -------------------------------------------------------------------


def _prep(values: pd.Series) -> pd.Series:
    text = values.astype(object).fillna("").astype(str).astype(object)
    return text.reset_index(drop=True).str.strip()


def _done(values: pd.Series, raw: pd.Series, out: pd.Series) -> pd.Series:
    out = out.astype(object).fillna("").where(~hashing.is_sha256(raw), raw.str.lower())
    return pd.Series(out.to_numpy(dtype=object), index=values.index, name=values.name, dtype=object)


def _regions(countries: pd.Series, values: pd.Series) -> pd.Series:
    if not countries.index.equals(values.index):
        countries = countries.reindex(values.index)
    codes = _prep(countries).str.lower()
    return codes.where(codes.str.fullmatch(r"[a-z]{2}"), "")


@functools.cache
def _char_tables() -> tuple[dict[int, str | None], dict[int, str | None]]:
    text: dict[int, str | None] = {}
    key: dict[int, str | None] = {}
    for cp in range(sys.maxunicode + 1):
        cat = unicodedata.category(chr(cp))
        if cat[0] in "PS" or cat == "Cs" or (cat == "Cf" and cp not in (0x200C, 0x200D)):
            text[cp] = None
        elif cat == "Cc" or cat[0] == "Z":
            text[cp] = " "
        if cat == "Mn" or chr(cp) in ".'\u2019\u02bc`":
            key[cp] = None
        elif cat[0] in "PSZ" or cat in ("Cc", "Cf", "Cs"):
            key[cp] = " "
    return text, key


def _text(s: pd.Series, sep: str) -> pd.Series:
    t = s.str.normalize("NFC").str.lower().str.translate(_char_tables()[0])
    t = t.str.strip().str.replace(r"\s+", sep, regex=True).str.normalize("NFC")
    return t.where(~t.str.fullmatch(r"[\d ]*"), "")


def _key(s: pd.Series) -> pd.Series:
    k = s.str.normalize("NFKD").str.translate(_char_tables()[1]).str.normalize("NFC").str.lower()
    return k.str.replace(r"\s+", " ", regex=True).str.strip()


def _table(pairs: dict[str, str], key: Callable[[pd.Series], pd.Series] = _key) -> dict[str, str]:
    keys = key(pd.Series(list(pairs), dtype=object))
    return dict(zip(keys, pairs.values()))


def email(values: pd.Series) -> pd.Series:
    raw = _prep(values)
    low = raw.str.lower()
    return _done(values, raw, low.where(low.str.fullmatch(N._EMAIL), ""))


def _phone_prepare_one(raw: str) -> str:
    s = re.sub(N._EXTENSION, "", raw).strip()
    return "" if re.search(r"[^\W\d_]", s) else re.sub(r"^00", "+", s)


def _phone_value(raw: str, region: str) -> str:
    if re.fullmatch(r"[0-9a-fA-F]{64}", raw):
        return raw.lower()
    s = _phone_prepare_one(raw)
    if not s:
        return ""
    fast = N._phone_fast_one(s, region)
    return fast if fast is not None else N._phone_one(s, region)


def phone(values: pd.Series, countries: pd.Series) -> pd.Series:
    raw = _prep(values)
    regions = _regions(countries, values)
    out = [_phone_value(v, r) for v, r in zip(raw, regions)]
    return pd.Series(out, index=values.index, name=values.name, dtype=object)


def name(values: pd.Series) -> pd.Series:
    raw = _prep(values)
    return _done(values, raw, _text(raw, " "))


def city(values: pd.Series) -> pd.Series:
    raw = _prep(values)
    return _done(values, raw, _text(raw, ""))


@functools.cache
def _country_table() -> dict[str, str]:
    pairs: dict[str, str] = {}
    for c in pycountry.countries:
        code = c.alpha_2.lower()
        for label in (c.name, getattr(c, "official_name", None), getattr(c, "common_name", None)):
            if label:
                pairs[label] = code
                if ", " in label:
                    head, _, tail = label.partition(", ")
                    pairs[f"{tail} {head}"] = code
    table = _table(pairs, _country_key)
    aliases = {a: code for code, names in N._COUNTRY_ALIASES.items() for a in names}
    table.update(_table(aliases, _country_key))
    table.update({c.alpha_3.lower(): c.alpha_2.lower() for c in pycountry.countries})
    table.update({c.alpha_2.lower(): c.alpha_2.lower() for c in pycountry.countries})
    return table


def _country_key(s: pd.Series) -> pd.Series:
    return _key(s).str.replace(r"^the ", "", regex=True)


def country(values: pd.Series) -> pd.Series:
    raw = _prep(values)
    return _done(values, raw, _country_key(raw).map(_country_table()))


@functools.cache
def _us_states() -> dict[str, str]:
    pairs: dict[str, str] = {"Washington DC": "dc", "Washington, D.C.": "dc",
                             "US Virgin Islands": "vi", "Virgin Islands": "vi"}
    for sub in pycountry.subdivisions.get(country_code="US"):
        code = sub.code.split("-")[1].lower()
        pairs.update({sub.name: code, sub.code: code, code: code})
    return _table(pairs, _state_key)


def _state_key(s: pd.Series) -> pd.Series:
    return _key(s).str.replace(" ", "", regex=False)


def state(values: pd.Series, countries: pd.Series) -> pd.Series:
    raw = _prep(values)
    regions = _regions(countries, values)
    us_code = _state_key(raw).map(_us_states())
    is_us = regions.eq("us") | (regions.eq("") & us_code.notna())
    return _done(values, raw, _text(raw, "").where(~is_us, us_code))


def _us_zip(compact: pd.Series) -> pd.Series:
    d = compact.str.replace(r"^([0-9]+)\.0+$", r"\1", regex=True)
    five = d.str.zfill(5).where(d.str.len().le(5), d.str.zfill(9).str[:5])
    return five.where(d.str.fullmatch(r"[0-9]{3,5}|[0-9]{7,9}"), "")


def zip_code(values: pd.Series, countries: pd.Series) -> pd.Series:
    raw = _prep(values)
    regions = _regions(countries, values)
    compact = raw.str.lower().str.replace(r"[\s\-\u2010-\u2015\u2212]", "", regex=True)
    us_like = regions.eq("") & compact.str.fullmatch(r"[0-9]{5}(?:[0-9]{4})?")
    other = compact.where(compact.str.fullmatch(r"(?=.*[0-9])[0-9a-z]{2,10}"), "")
    out = other.where(~us_like, compact.str[:5]).where(regions.ne("us"), _us_zip(compact))
    return _done(values, raw, out)


def date_of_birth(values: pd.Series) -> pd.Series:
    raw = _prep(values)
    return _done(values, raw, raw.map(N._dob_one).astype(object))


@functools.cache
def _gender_table() -> dict[str, str]:
    return _table({word: code for code, words in N._GENDERS.items() for word in words})


def gender(values: pd.Series) -> pd.Series:
    raw = _prep(values)
    return _done(values, raw, _key(raw).map(_gender_table()))


def external_id(values: pd.Series) -> pd.Series:
    raw = _prep(values)
    return _done(values, raw, raw)


def lead_id(values: pd.Series) -> pd.Series:
    raw = _prep(values)
    s = raw.str.replace(r"^[lL]:", "", regex=True).str.replace(r"^([0-9]+)\.0+$", r"\1", regex=True)
    out = s.where(s.str.fullmatch(r"[0-9]+"), "")
    return pd.Series(out.to_numpy(dtype=object), index=values.index, name=values.name, dtype=object)


ONE_ARG = [(N.email, email), (N.name, name), (N.city, city), (N.country, country),
           (N.date_of_birth, date_of_birth), (N.gender, gender), (N.external_id, external_id),
           (N.lead_id, lead_id)]
TWO_ARG = [(N.phone, phone), (N.state, state), (N.zip_code, zip_code)]


# --- comparisons ---------------------------------------------------------------------------------

HEX = "6915771BE1C5AA0C886870B6951B03D7EAFC121FEA0E80A5EA83BEB7C449F4EC"
TRICKY = [
    None, np.nan, "", " ", "\u00a0", "\u2028x\u2029", "Mary", " MARY ", "O'Neil", "Jean-Luc", "José", "Jose\u0301",
    "e\u0301\u0301", "a\u200db\u200cc\u200bd", "\ud800", "x\ud800y", "İstanbul", "ß", "ǅ", "ﬁ", "Ⅻ", "①", "٣٤٥",
    "12 34", "1 2", "123", "St. Louis", "ST. LOUIS", "san-francisco", "U.S.A.", "the Netherlands", "The Gambia",
    "Iran, Islamic Republic of", "Islamic Republic of Iran", "Côte d'Ivoire", "Deutschland", "United States",
    "usa", "US", "us", "gb", "UK", "xx", "K\u212a", "\u212aR", "California", "CA", "ca", "New-York", "NewYork",
    "washington, d.c.", "Washington DC", "Puerto Rico", "PR", "US-CA", "Île-de-France", "Bayern",
    "94035-1234", "94035", "2134", "2134.0", "021340000", "02134-0000", "501", "00501", "1234567", "12345678",
    "SW1A 1AA", "sw1a1aa", "n/a", "unknown", "75001", "10115", "H0H 0H0", "12345‐6789", "12345−6789", "1\n",
    "female", "F", "Femme", "MÄNNLICH", "männlich", "m.", "W", "other",
    "2/16/1997", "16.02.1997", "1997-02-16", "19970216", "02-16-1997", "1997-02-16T10:00:00Z", "2099-01-01",
    "(650) 555-1212", "+44 20 7946 0958", "020 7946 0958", "+44 (0)20 7946 0958", "0044 20 7946 0958",
    "650-555-1212 x123", "650-555-1212 ext. 12", "+1 650 555 1212#", "555-CALL", "1-800-FLOWERS",
    "john_smith@gmail.com ", "John.Smith@Example.COM", "a@b", "a@b.c", "a@b.co", "a@xn--p1ai", "a @b.com",
    "a@b.com;c@d.com", "José@exämple.de", "l:1234567890123456", "L:123", "1234567890123456.0", "12.00", "1.5",
    HEX, HEX.lower(), "g" * 64, "a" * 63, "0" * 64, " " + HEX + " ",
]
REGION_VALUES = ["us", "US", " us ", "ca", "gb", "de", "fr", "nl", "", None, np.nan, "xx", "usa", "K\u212a",
                 "u", "\u212ar"]


def _compare(values: list[object], countries: list[object]) -> None:
    series = pd.Series(values, dtype=object, index=[7 - i % 4 for i in range(len(values))], name="v")
    regions = pd.Series(countries, dtype=object, index=series.index)
    for fn, reference in ONE_ARG:
        expected = reference(series).tolist()
        assert fn(series).tolist() == expected, fn.__name__
        assert fn.__wrapped__(series).tolist() == expected, fn.__name__
    for fn, reference in TWO_ARG:
        expected = reference(series, regions).tolist()
        assert fn(series, regions).tolist() == expected, fn.__name__
        assert fn.__wrapped__(series, regions).tolist() == expected, fn.__name__


@pytest.mark.parametrize("region", REGION_VALUES)
def test_tricky_values_match_the_column_wise_reference(region: object) -> None:
    _compare(TRICKY, [region] * len(TRICKY))


def test_hashed_results_are_the_hashes_of_the_results() -> None:
    series = pd.Series(TRICKY * 2, dtype=object)
    regions = pd.Series((REGION_VALUES * 20)[:len(series)], dtype=object)
    for fn, _ in ONE_ARG:
        assert fn(series, hashed=True).tolist() == hashing.sha256_hex(fn(series)).tolist(), fn.__name__
    for fn, _ in TWO_ARG:
        got = fn(series, regions, hashed=True).tolist()
        assert got == hashing.sha256_hex(fn(series, regions)).tolist(), fn.__name__


def test_lazy_translation_tables_match_the_full_build() -> None:
    text, key = _char_tables()
    lazy_text, lazy_key = N._char_tables()
    for cp in range(sys.maxunicode + 1):
        assert chr(cp).translate(lazy_text) == chr(cp).translate(text), hex(cp)
        assert chr(cp).translate(lazy_key) == chr(cp).translate(key), hex(cp)


def test_tables_match_the_reference_tables() -> None:
    assert N._country_table() == _country_table()
    assert N._us_states() == _us_states()
    assert N._gender_table() == _gender_table()


unicode_text = st.text(st.characters(codec="utf-8"), max_size=12)
any_text = st.text(max_size=12)  # includes lone surrogates
values = st.one_of(st.sampled_from(TRICKY), unicode_text, any_text,
                   st.text(alphabet="0123456789+-() ./xX#ext:lL", max_size=20),
                   st.text(alphabet="0123456789abcdefABCDEF", min_size=64, max_size=64))


@PROPS
@given(st.lists(st.tuples(values, st.one_of(st.sampled_from(REGION_VALUES), unicode_text)), max_size=30))
def test_any_values_match_the_column_wise_reference(rows: list[tuple[object, object]]) -> None:
    _compare([v for v, _ in rows], [c for _, c in rows])


@PROPS
@given(st.lists(st.one_of(st.characters(), st.text(st.characters(), min_size=1, max_size=3)), max_size=40))
def test_any_characters_match_the_column_wise_reference(chars: list[str]) -> None:
    _compare(chars + ["a" + c + "b" for c in chars], ["us"] * (2 * len(chars)))
