"""Normalise raw source values into the exact strings Meta's Conversions API hashes.

The rules are Meta's (docs/meta-capi-offline.md, "user_data: normalise, then SHA-256"), not the
official SDK's, which is weaker. Every public function is pure and vectorised: it takes a pandas
Series of str ("" or NaN/None = missing) and returns a Series of str with the same index, dtype
object, where "" means "missing or invalid". A value that already is a 64-hex SHA-256 passes
through lowercased in every field that Meta hashes, so pre-hashed sources are never hashed twice.
Every public function runs once per distinct input (``_distinct``), and where a Python call per value
is the fastest form (phones, dates of birth) it is written per value with compiled regexes.
"""

from __future__ import annotations

import datetime
import functools
import re
import sys
import unicodedata
from collections.abc import Callable

import numpy as np
import pandas as pd
import phonenumbers
import pycountry
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumber, PhoneNumberFormat
from phonenumbers import ValidationResult

from .hashing import is_sha256

# --------------------------------------------------------------------------------------------
# Shared plumbing: every function works on a positional (RangeIndex) object Series internally,
# so that duplicate or odd index labels never misalign, and re-wraps the result at the end.


def _prep(values: pd.Series) -> pd.Series:
    """Missing -> "", every value a stripped Python str; RangeIndex, dtype object."""
    text = values.astype(object).fillna("").astype(str).astype(object)
    return text.reset_index(drop=True).str.strip()


def _done(values: pd.Series, raw: pd.Series, out: pd.Series) -> pd.Series:
    """Apply the pre-hashed pass-through and give the result the caller's index."""
    out = out.astype(object).fillna("").where(~is_sha256(raw), raw.str.lower())
    return pd.Series(out.to_numpy(dtype=object), index=values.index, name=values.name, dtype=object)


def _regions(countries: pd.Series, values: pd.Series) -> pd.Series:
    """Per-row lowercase ISO alpha-2 code aligned to `values`; anything else -> ""."""
    if not countries.index.equals(values.index):
        countries = countries.reindex(values.index)
    codes = _prep(countries).str.lower()
    return codes.where(codes.str.fullmatch(r"[a-z]{2}"), "")


def _distinct(fn: Callable[..., pd.Series]) -> Callable[..., pd.Series]:
    """Run an elementwise normaliser once per distinct input and spread the results back.

    Every normaliser maps each value (with its row's country) on its own, so a repeated value
    gets the same result; CRM columns repeat a lot (names, cities, states, countries, repeat
    customers). ``fn.__wrapped__`` is the plain version, which the tests compare against.
    """
    @functools.wraps(fn)
    def wrapper(values: pd.Series, *countries: pd.Series) -> pd.Series:
        aligned = [c if c.index.equals(values.index) else c.reindex(values.index) for c in countries]
        codes, uniques = _factorize([values.to_numpy(dtype=object)] + [c.to_numpy(dtype=object) for c in aligned])
        if len(uniques[0]) == len(values):
            return fn(values, *aligned)
        out = fn(*(pd.Series(u, dtype=object) for u in uniques)).to_numpy(dtype=object)
        return pd.Series(out[codes], index=values.index, name=values.name, dtype=object)
    return wrapper


def _factorize(columns: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Codes of the distinct rows of one or more aligned columns, and those rows' values."""
    codes, uniques = pd.factorize(columns[0], use_na_sentinel=False)
    distinct = [uniques.astype(object)]
    for column in columns[1:]:
        more, more_uniques = pd.factorize(column, use_na_sentinel=False)
        width = max(len(more_uniques), 1)
        codes, pairs = pd.factorize(codes.astype(np.int64) * width + more)
        distinct = [d[pairs // width] for d in distinct] + [more_uniques.astype(object)[pairs % width]]
    return codes, distinct


@functools.cache
def _char_tables() -> tuple[dict[int, str | None], dict[int, str | None]]:
    """str.translate tables built once from Unicode categories.

    TEXT (names, cities): drop punctuation (P*), symbols (S*), invisible format characters (Cf,
    except ZWJ/ZWNJ which some scripts need to spell a name) and lone surrogates; turn controls
    and separators into spaces.  KEY (lookups of countries, states, genders): also drop accents
    (after NFKD) and dots/apostrophes ("U.S.A." -> "usa"), every other P/S/C/Z becomes a space.
    """
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
    """NFC, lowercase, no punctuation/symbols, whitespace runs -> `sep`; digits-only -> ""."""
    t = s.str.normalize("NFC").str.lower().str.translate(_char_tables()[0])
    # NFC again at the end: removing a symbol can bring a base letter and a combining mark
    # together, and the hash must be of one canonical spelling (this also makes it idempotent).
    t = t.str.strip().str.replace(r"\s+", sep, regex=True).str.normalize("NFC")
    return t.where(~t.str.fullmatch(r"[\d ]*"), "")


def _key(s: pd.Series) -> pd.Series:
    """Loose lookup key: no accents, case, dots or punctuation; single spaces."""
    k = s.str.normalize("NFKD").str.translate(_char_tables()[1]).str.normalize("NFC").str.lower()
    return k.str.replace(r"\s+", " ", regex=True).str.strip()


def _table(pairs: dict[str, str], key: Callable[[pd.Series], pd.Series] = _key) -> dict[str, str]:
    """Re-key a {spelling: code} table with the same key function the inputs go through."""
    keys = key(pd.Series(list(pairs), dtype=object))
    return dict(zip(keys, pairs.values()))


# --------------------------------------------------------------------------------------------
# em


# One @, a non-empty local part, a dotted domain whose last label is 2+ letters, and none of
# the characters that show a list or a display name ("John <j@x.com>", "a@x.com;b@y.com").
_NOT_EMAIL = r"\s@,;:<>()\[\]\"\\\x00-\x1f\x7f"
_EMAIL = rf"[^{_NOT_EMAIL}]+@(?:[^{_NOT_EMAIL}.]+\.)+(?:[^\W\d_]{{2,}}|xn--[a-z0-9-]+)"


@_distinct
def email(values: pd.Series) -> pd.Series:
    """Trim and lowercase an email address; anything that is not one -> ""."""
    raw = _prep(values)
    low = raw.str.lower()
    return _done(values, raw, low.where(low.str.fullmatch(_EMAIL), ""))


# --------------------------------------------------------------------------------------------
# ph
#
# Possible, not valid: a number is kept when phonenumbers parses it and
# is_possible_number_with_reason() is exactly IS_POSSIBLE (its length fits the country's plan;
# IS_POSSIBLE_LOCAL_ONLY, e.g. a US 7-digit number without area code, is refused because it can
# never match). We do not require is_valid_number(): validity depends on the allocation tables
# of the installed phonenumbers release, so a real customer in a newly opened range would be
# dropped and the same CRM row could hash differently after a library upgrade; Meta itself only
# asks for "digits with country code" and a non-matching hash costs nothing. Length-based
# possibility is also something a vectorised fast path can reproduce exactly.
# One cheap structural rule is added for NANP (+1) numbers: area code and exchange must start
# with 2-9. It is the plan's fixed structure, not allocation data, and it rejects the CRM
# placeholders "0000000000", "1111111111", "(123) 456-7890" that are otherwise "possible".

_NANP = r"[2-9][0-9]{2}[2-9][0-9]{6}"
_EXTENSION = r"(?i)\s*[,;]?\s*(?:ext(?:ension)?|x|#)\s*[.:]?\s*[0-9]{1,7}#?$"
_FAST_CHARS = r"[0-9 ().-]"
# Compiled once; the per-value functions below are the exact per-value form of the pandas
# string operations (.str.replace/.str.fullmatch/.str.match call these same re functions).
_NANP_RE = re.compile(_NANP)
_EXTENSION_RE = re.compile(_EXTENSION)
_LETTER_RE = re.compile(r"[^\W\d_]")
_DOUBLE_ZERO_RE = re.compile(r"^00")
_NOT_DIGIT_RE = re.compile(r"[^0-9]")
_NANP_SHAPE_RE = re.compile(rf"{_FAST_CHARS}{{1,40}}")
_PLUS_SHAPE_RE = re.compile(rf"\+{_FAST_CHARS}{{1,40}}")
_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")


def _phone_prepare_one(raw: str) -> str:
    """Drop an extension, refuse letters, and read a leading "00" as the international "+"."""
    s = _EXTENSION_RE.sub("", raw).strip()
    return "" if _LETTER_RE.search(s) else _DOUBLE_ZERO_RE.sub("+", s)


def _phone_prepare(raw: pd.Series) -> pd.Series:
    """``_phone_prepare_one`` over a Series of stripped text."""
    return raw.map(_phone_prepare_one).astype(object)


def _phone_one(text: str, region: str) -> str:
    """Slow path for one (prepared) value: E.164 digits, or "" unless they are canonical.

    Canonical = reading the digits back with a "+" gives the same number. Numbers that fail this
    carry a national prefix inside the international form ("+31 0000000"); their hash would depend
    on how often they had been normalised, so they are dropped (never produced by the fast path).
    """
    digits = _phone_parse(text, region)
    if not digits:
        return ""
    # The fast path is exact where it answers, and answers for most canonical numbers: it spares
    # the second parse ("+" + its digits) for national numbers like "020 7946 0958".
    return digits if _phone_fast_plus("+" + digits) == digits or _phone_parse("+" + digits, "") == digits else ""


def _phone_parse(text: str, region: str) -> str:
    """phonenumbers parse + possibility check -> E.164 digits without "+", or ""."""
    try:
        number = phonenumbers.parse(text, region.upper() or None)
    except NumberParseException:
        return ""  # includes "national number but no country": never guess one
    if phonenumbers.is_possible_number_with_reason(number) != ValidationResult.IS_POSSIBLE:
        return ""
    digits = phonenumbers.format_number(number, PhoneNumberFormat.E164)[1:]
    if number.country_code == 1 and not _NANP_RE.fullmatch(digits[1:]):
        return ""
    return digits


def _phone_slow(s: pd.Series, regions: pd.Series) -> pd.Series:
    """Slow path over a Series: one phonenumbers call per unique (value, region) pair."""
    keys = s + "\x1f" + regions  # regions are "" or [a-z]{2}, so the last \x1f splits safely
    results = {k: _phone_one(*k.rsplit("\x1f", 1)) for k in keys.unique()}
    return keys.map(results).astype(object)


@functools.cache
def _calling_codes() -> dict[str, tuple[frozenset[int], re.Pattern[str] | None]]:
    """Per country calling code: the IS_POSSIBLE national lengths and the national-prefix regex.

    Built with phonenumbers' own length test on synthetic numbers, so it cannot drift from what
    the slow path decides.
    """
    table = {}
    for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        region = phonenumbers.region_code_for_country_code(code)
        meta = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
        if meta is None:
            continue
        lengths = frozenset(
            n for n in range(1, 18)
            if phonenumbers.is_possible_number_with_reason(
                PhoneNumber(country_code=code, national_number=int("2" * n)))
            == ValidationResult.IS_POSSIBLE)
        prefix = meta.national_prefix_for_parsing
        table[str(code)] = (lengths, re.compile(prefix) if prefix else None)
    return table


def _phone_fast_nanp(s: str, region: str) -> str | None:
    """US/CA national numbers: 10 digits, or 11 starting with 1, area code and exchange 2-9."""
    if region not in ("us", "ca") or not _NANP_SHAPE_RE.fullmatch(s):
        return None
    digits = _NOT_DIGIT_RE.sub("", s)
    nsn = digits[1:] if len(digits) == 11 and digits[0] == "1" else digits
    return "1" + nsn if _NANP_RE.fullmatch(nsn) else None


def _phone_fast_plus(s: str) -> str | None:
    """"+"-prefixed digits whose country code, length and lack of a national prefix are clear."""
    if not _PLUS_SHAPE_RE.fullmatch(s):
        return None
    digits = _NOT_DIGIT_RE.sub("", s)
    codes = _calling_codes()
    # Calling codes are prefix-free; phonenumbers also tries 1, 2, then 3 digits.
    code = next((digits[:n] for n in (1, 2, 3) if digits[:n] in codes), None)
    if code is None:
        return None
    nsn = digits[len(code):]
    lengths, prefix = codes[code]
    if len(nsn) not in lengths:
        return None
    if prefix is not None and prefix.match(nsn):  # "+44 (0)20": the slow path's job
        return None
    if code == "1" and not _NANP_RE.fullmatch(nsn):
        return None
    return code + nsn


def _phone_fast_one(s: str, region: str) -> str | None:
    """The result for the common shapes, None where the slow path must decide."""
    nanp = _phone_fast_nanp(s, region)
    return nanp if nanp is not None else _phone_fast_plus(s)


def _phone_fast(s: pd.Series, regions: pd.Series) -> pd.Series:
    """``_phone_fast_one`` over a Series (None where the slow path must decide)."""
    out = [_phone_fast_one(v, r if isinstance(r, str) else "") for v, r in zip(s, regions.reindex(s.index))]
    return pd.Series(out, index=s.index, dtype=object)


def _phone_value(raw: str, region: str) -> str:
    """One stripped raw value in one region: pre-hashed, fast path, else phonenumbers."""
    if _SHA256_RE.fullmatch(raw):
        return raw.lower()
    s = _phone_prepare_one(raw)
    if not s:
        return ""
    fast = _phone_fast_one(s, region)
    return fast if fast is not None else _phone_one(s, region)


@_distinct
def phone(values: pd.Series, countries: pd.Series) -> pd.Series:
    """Phone -> E.164 digits with country code, no "+" ("(650)555-1212", us -> "16505551212").

    "+" or "00" prefixed numbers are international whatever the row's country; a national number
    is read in the row's country (lowercase alpha-2 in `countries`), and with no country it is
    dropped. Extensions are dropped; letters, impossible lengths and NANP placeholders -> "".
    """
    raw = _prep(values)
    regions = _regions(countries, values)
    out = [_phone_value(v, r) for v, r in zip(raw, regions)]
    return pd.Series(out, index=values.index, name=values.name, dtype=object)


# --------------------------------------------------------------------------------------------
# fn, ln, ct


@_distinct
def name(values: pd.Series) -> pd.Series:
    """First or last name: NFC, lowercase, no punctuation/symbols, single inner spaces."""
    raw = _prep(values)
    return _done(values, raw, _text(raw, " "))


@_distinct
def city(values: pd.Series) -> pd.Series:
    """City: like name() but with no spaces at all ("St. Louis" -> "stlouis")."""
    raw = _prep(values)
    return _done(values, raw, _text(raw, ""))


# --------------------------------------------------------------------------------------------
# country

_COUNTRY_ALIASES = {
    "us": ["USA", "U.S.", "U.S.A.", "US of A", "United States of America", "America",
           "Estados Unidos"],
    "gb": ["UK", "U.K.", "Great Britain", "Britain", "England", "Scotland", "Wales",
           "Northern Ireland"],
    "de": ["Deutschland", "Germany"], "nl": ["Holland", "Nederland"],
    "kr": ["South Korea", "Republic of Korea", "Korea"], "kp": ["North Korea"],
    "ru": ["Russia"], "ir": ["Iran"], "vn": ["Vietnam"], "la": ["Laos"], "sy": ["Syria"],
    "tw": ["Taiwan"], "tr": ["Turkey"], "cz": ["Czech Republic"], "ci": ["Ivory Coast"],
    "mk": ["Macedonia"], "cv": ["Cape Verde"], "sz": ["Swaziland"], "mm": ["Burma"],
    "tl": ["East Timor"], "va": ["Vatican", "Vatican City"], "ps": ["Palestine"],
    "cd": ["DR Congo", "DRC", "Democratic Republic of the Congo"],
    "ae": ["UAE", "U.A.E.", "Emirates"], "bn": ["Brunei"], "mo": ["Macau"],
    "es": ["España"], "br": ["Brasil"], "mx": ["México"], "ch": ["Schweiz", "Suisse", "Svizzera"],
    "at": ["Österreich"], "it": ["Italia"], "pl": ["Polska"], "se": ["Sverige"],
    "no": ["Norge"], "dk": ["Danmark"], "fi": ["Suomi"], "be": ["België", "Belgique"],
    "ie": ["Éire"], "jp": ["Nippon"], "cn": ["PRC"],
}


@functools.cache
def _country_table() -> dict[str, str]:
    """Lookup key -> alpha-2 lowercase. Later entries win: names < aliases < codes."""
    pairs: dict[str, str] = {}
    for c in pycountry.countries:
        code = c.alpha_2.lower()
        for label in (c.name, getattr(c, "official_name", None), getattr(c, "common_name", None)):
            if label:
                pairs[label] = code
                if ", " in label:  # "Iran, Islamic Republic of" is also written the other way round
                    head, _, tail = label.partition(", ")
                    pairs[f"{tail} {head}"] = code
    table = _table(pairs, _country_key)
    aliases = {a: code for code, names in _COUNTRY_ALIASES.items() for a in names}
    table.update(_table(aliases, _country_key))
    table.update({c.alpha_3.lower(): c.alpha_2.lower() for c in pycountry.countries})
    table.update({c.alpha_2.lower(): c.alpha_2.lower() for c in pycountry.countries})
    return table


def _country_key(s: pd.Series) -> pd.Series:
    """_key() without a leading "the " ("The Netherlands", "the Gambia")."""
    return _key(s).str.replace(r"^the ", "", regex=True)


@_distinct
def country(values: pd.Series) -> pd.Series:
    """Country -> ISO 3166-1 alpha-2 lowercase, from alpha-2, alpha-3, English names or aliases."""
    raw = _prep(values)
    return _done(values, raw, _country_key(raw).map(_country_table()))


# --------------------------------------------------------------------------------------------
# st


@functools.cache
def _us_states() -> dict[str, str]:
    """US state, district and territory names and codes -> 2-letter code lowercase."""
    pairs: dict[str, str] = {"Washington DC": "dc", "Washington, D.C.": "dc",
                             "US Virgin Islands": "vi", "Virgin Islands": "vi"}
    for sub in pycountry.subdivisions.get(country_code="US"):
        code = sub.code.split("-")[1].lower()
        pairs.update({sub.name: code, sub.code: code, code: code})
    return _table(pairs, _state_key)


def _state_key(s: pd.Series) -> pd.Series:
    """_key() without spaces, so "NewYork" and "New-York" find New York as well."""
    return _key(s).str.replace(" ", "", regex=False)


@_distinct
def state(values: pd.Series, countries: pd.Series) -> pd.Series:
    """State: US -> 2-letter code lowercase ("California" -> "ca"); else like city().

    A row with no country whose value is a US state name or code is treated as US; a US row whose
    value is not a US state -> "".
    """
    raw = _prep(values)
    regions = _regions(countries, values)
    us_code = _state_key(raw).map(_us_states())
    is_us = regions.eq("us") | (regions.eq("") & us_code.notna())
    return _done(values, raw, _text(raw, "").where(~is_us, us_code))


# --------------------------------------------------------------------------------------------
# zp


def _us_zip(compact: pd.Series) -> pd.Series:
    """First 5 digits of an explicitly-US ZIP, restoring leading zeros Excel dropped."""
    d = compact.str.replace(r"^([0-9]+)\.0+$", r"\1", regex=True)  # 2134.0 from a float column
    # 3-5 digits: a ZIP (00501, 02134 -> "501", "2134"); 7-9 digits: ZIP+4, same damage.
    five = d.str.zfill(5).where(d.str.len().le(5), d.str.zfill(9).str[:5])
    return five.where(d.str.fullmatch(r"[0-9]{3,5}|[0-9]{7,9}"), "")


@_distinct
def zip_code(values: pd.Series, countries: pd.Series) -> pd.Series:
    """Postal code: lowercase, no spaces or dashes; US: first 5 digits ("94035-1234" -> "94035").

    Elsewhere the result must look like a postal code (2-10 of a-z0-9 with a digit), so that
    placeholders like "n/a" or "unknown" are not hashed and sent.
    """
    raw = _prep(values)
    regions = _regions(countries, values)
    compact = raw.str.lower().str.replace(r"[\s\-\u2010-\u2015\u2212]", "", regex=True)
    us_like = regions.eq("") & compact.str.fullmatch(r"[0-9]{5}(?:[0-9]{4})?")
    other = compact.where(compact.str.fullmatch(r"(?=.*[0-9])[0-9a-z]{2,10}"), "")
    out = other.where(~us_like, compact.str[:5]).where(regions.ne("us"), _us_zip(compact))
    return _done(values, raw, out)


# --------------------------------------------------------------------------------------------
# db

_TIME = r"(?:[T ][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
# (regex, order) with groups y/a/b; order says how a and b map to month and day.
_DOB_FORMATS = (
    (rf"^(?P<y>[0-9]{{4}})(?P<s>[-/.])(?P<a>[0-9]{{1,2}})(?P=s)(?P<b>[0-9]{{1,2}}){_TIME}$", "ymd"),
    (r"^(?P<y>[0-9]{4})(?P<a>[0-9]{2})(?P<b>[0-9]{2})$", "ymd"),
    (r"^(?P<a>[0-9]{1,2})/(?P<b>[0-9]{1,2})/(?P<y>[0-9]{4})$", "mdy"),
    (r"^(?P<a>[0-9]{1,2})(?P<s>[.-])(?P<b>[0-9]{1,2})(?P=s)(?P<y>[0-9]{4})$", "dmy"),
)


_DOB_PATTERNS = tuple((re.compile(pattern), order) for pattern, order in _DOB_FORMATS)


def _dob_one(text: str) -> str:
    """One stripped value -> YYYYMMDD, or "" (the first format that matches decides)."""
    for pattern, order in _DOB_PATTERNS:
        found = pattern.search(text)
        if found:
            break
    else:
        return ""
    year, a, b = int(found["y"]), int(found["a"]), int(found["b"])
    if order == "ymd":
        month, day = a, b
    elif order == "mdy":  # US month-first, unless the first number cannot be a month
        month, day = (b, a) if a > 12 else (a, b)
    else:  # day-first, unless only month-first makes sense ("02-16-1997")
        month, day = (a, b) if b > 12 and a <= 12 else (b, a)
    try:
        when = datetime.date(year, month, day)
    except ValueError:
        return ""
    return f"{year:04d}{month:02d}{day:02d}" if year >= 1900 and when <= datetime.date.today() else ""


@_distinct
def date_of_birth(values: pd.Series) -> pd.Series:
    """Date of birth -> YYYYMMDD: a real date, year >= 1900, not in the future.

    Accepts Y-M-D (also with / or ., or an ISO time after it), YYYYMMDD, US M/D/Y (D/M/Y when the
    first number exceeds 12) and D.M.Y / D-M-Y; two-digit years are ambiguous and give "".
    """
    raw = _prep(values)
    return _done(values, raw, raw.map(_dob_one).astype(object))


# --------------------------------------------------------------------------------------------
# ge

_GENDERS = {
    "f": ["f", "female", "woman", "w", "weiblich", "femme", "mujer", "femenino", "fem"],
    "m": ["m", "male", "man", "männlich", "homme", "hombre", "masculino", "masc"],
}


@functools.cache
def _gender_table() -> dict[str, str]:
    return _table({word: code for code, words in _GENDERS.items() for word in words})


@_distinct
def gender(values: pd.Series) -> pd.Series:
    """Gender -> "f" or "m" from common words in a few languages; anything else -> ""."""
    raw = _prep(values)
    return _done(values, raw, _key(raw).map(_gender_table()))


# --------------------------------------------------------------------------------------------
# external_id, lead_id


@_distinct
def external_id(values: pd.Series) -> pd.Series:
    """External id: trimmed only (case kept: it must be the same string wherever it is sent)."""
    raw = _prep(values)
    return _done(values, raw, raw)


@_distinct
def lead_id(values: pd.Series) -> pd.Series:
    """Meta Lead Ads lead id (never hashed): digits only, spreadsheet damage repaired.

    "1234567890123456.0" (a float column) -> "1234567890123456"; the "l:" prefix of Ads Manager
    lead exports is dropped; anything else that is not all digits -> "".
    """
    raw = _prep(values)
    s = raw.str.replace(r"^[lL]:", "", regex=True).str.replace(r"^([0-9]+)\.0+$", r"\1", regex=True)
    out = s.where(s.str.fullmatch(r"[0-9]+"), "")
    return pd.Series(out.to_numpy(dtype=object), index=values.index, name=values.name, dtype=object)
