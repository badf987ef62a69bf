"""Normalise raw source values into the exact strings Meta's Conversions API hashes.

The rules are Meta's (docs/meta-capi-offline.md, "user_data: normalise, then SHA-256"), not the
official SDK's, which is weaker. Every public function is pure and vectorised: it takes a pandas
Series of str ("" or NaN/None = missing) and returns a Series of str with the same index, dtype
object, where "" means "missing or invalid". A value that already is a 64-hex SHA-256 passes
through lowercased in every field that Meta hashes, so pre-hashed sources are never hashed twice.
Each rule is written once, per value (one stripped str, and the row's region where it matters),
with compiled regexes and str methods: one Python call does every step of a value, where pandas
.str methods would loop over the column once per step. ``_distinct`` runs it once per distinct
input, and with ``hashed=True`` hashes in the same pass.
"""

from __future__ import annotations

import datetime
import functools
import itertools
import re
import time
import unicodedata
from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np
import pandas as pd
import phonenumbers
import pycountry
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumber, PhoneNumberFormat
from phonenumbers import ValidationResult

try:  # parse's own steps for a national number (see _phone_fast_national); private to phonenumbers
    from phonenumbers.phonenumberutil import _maybe_strip_national_prefix_carrier_code as _strip_national_prefix
    from phonenumbers.phonenumberutil import _test_number_length
except ImportError:  # a release without them: phonenumbers.parse decides those shapes (same result, slower)
    _strip_national_prefix = _test_number_length = None  # type: ignore[assignment]

from .columns import factorize_text
from .hashing import digest

# --------------------------------------------------------------------------------------------
# Shared plumbing. A per-value normaliser is ``one(text, region) -> str``: `text` is the stripped
# value ("" when missing), `region` the row's lowercase alpha-2 country or "" (ignored by the
# fields that do not depend on it).

PerValue = Callable[[str, str], str]
_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
_REGION_RE = re.compile(r"[a-z]{2}")


def _prep(values: pd.Series) -> pd.Series:
    """Missing -> "", every value a stripped Python str; RangeIndex, dtype object."""
    text = values.astype(object).fillna("").astype(str).astype(object)
    return text.reset_index(drop=True).str.strip()


def _texts(values: np.ndarray) -> list[str]:
    """``_prep`` as a list: the plain loop when every value is a str (always, from conform())."""
    if pd.api.types.infer_dtype(values, skipna=False) == "string":
        return list(map(str.strip, values))
    return _prep(pd.Series(values, dtype=object)).tolist()


def _region(text: str) -> str:
    """One stripped country cell -> lowercase alpha-2 if it looks like one, else ""."""
    code = text.lower()
    return code if _REGION_RE.fullmatch(code) else ""


def _regions_of(countries: np.ndarray) -> list[str]:
    """``_region`` of each raw country cell, worked out once per distinct cell."""
    texts = _texts(countries)
    regions = {text: _region(text) for text in set(texts)}
    return [regions[text] for text in texts]


def _normalise(one: PerValue, keep_hashes: bool, values: np.ndarray, countries: list[np.ndarray]) -> list[str]:
    """`one` over aligned raw values (and raw countries, when the field needs them)."""
    regions: Iterable[str] = _regions_of(countries[0]) if countries else itertools.repeat("")
    if not keep_hashes:
        return [one(text, region) for text, region in zip(_texts(values), regions)]
    return [text.lower() if len(text) == 64 and _SHA256_RE.fullmatch(text) else one(text, region)
            for text, region in zip(_texts(values), regions)]


def _distinct(one: PerValue | None = None, *, keep_hashes: bool = True) -> Callable[..., pd.Series]:
    """Make a per-value normaliser a Series one that runs once per distinct input.

    Every normaliser maps each value (with its row's country) on its own, so a repeated value
    gets the same result; CRM columns repeat a lot (names, cities, states, countries, repeat
    customers). ``hashed=True`` returns the SHA-256 (``hashing.digest``) of each result, also
    once per distinct input. ``keep_hashes``: a 64-hex input passes through lowercased.
    ``fn.__wrapped__`` is the plain version (one call per row), which the tests compare against.
    """
    if one is None:
        return functools.partial(_distinct, keep_hashes=keep_hashes)  # type: ignore[return-value]

    def plain(values: pd.Series, *countries: pd.Series) -> pd.Series:
        arrays = [c.to_numpy(dtype=object) for c in _aligned(values, countries)]
        out = _normalise(one, keep_hashes, values.to_numpy(dtype=object), arrays)
        return pd.Series(out, index=values.index, name=values.name, dtype=object)

    @functools.wraps(one)
    def wrapper(values: pd.Series, *countries: pd.Series, hashed: bool = False) -> pd.Series:
        arrays = [c.to_numpy(dtype=object) for c in _aligned(values, countries)]
        codes, uniques = _factorize([_strings(values.to_numpy(dtype=object))] + arrays)
        out = _normalise(one, keep_hashes, uniques[0], uniques[1:])
        results = np.array(list(map(digest, out)) if hashed else out, dtype=object)
        return pd.Series(results[codes], index=values.index, name=values.name, dtype=object)

    wrapper.__wrapped__ = plain  # type: ignore[attr-defined]
    return wrapper


def _strings(values: np.ndarray) -> np.ndarray:
    """Values made text before they are told apart, unless they all are: 0 and 0.0 are equal
    (pd.factorize would merge them), their texts "0" and "0.0" are not."""
    if pd.api.types.infer_dtype(values, skipna=False) == "string":
        return values
    return np.array(_texts(values), dtype=object)


def _aligned(values: pd.Series, countries: tuple[pd.Series, ...]) -> list[pd.Series]:
    return [c if c.index.equals(values.index) else c.reindex(values.index) for c in countries]


def _factorize(columns: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Codes of the distinct rows of one or more aligned columns, and those rows' values."""
    codes, uniques = factorize_text(columns[0])
    distinct = [uniques.astype(object)]
    for column in columns[1:]:
        more, more_uniques = factorize_text(column)
        width = max(len(more_uniques), 1)
        codes, pairs = pd.factorize(codes.astype(np.int64) * width + more)
        distinct = [d[pairs // width] for d in distinct] + [more_uniques.astype(object)[pairs % width]]
    return codes, distinct


class _LazyTable(dict[int, "int | str | None"]):
    """A str.translate table whose entry for a code point is worked out on its first use.

    Same translation as a table built over all 1.1M code points, without building it: an entry
    is the code point itself (unchanged), a replacement, or None (deleted).
    """

    def __init__(self, entry: Callable[[int], int | str | None]) -> None:
        super().__init__()
        self._entry = entry

    def __missing__(self, cp: int) -> int | str | None:
        value = self[cp] = self._entry(cp)
        return value


def _text_entry(cp: int) -> int | str | None:
    cat = unicodedata.category(chr(cp))
    if cat[0] in "PS" or cat == "Cs" or (cat == "Cf" and cp not in (0x200C, 0x200D)):
        return None
    return " " if cat == "Cc" or cat[0] == "Z" else cp


def _key_entry(cp: int) -> int | str | None:
    cat = unicodedata.category(chr(cp))
    if cat == "Mn" or chr(cp) in ".'\u2019\u02bc`":
        return None
    return " " if cat[0] in "PSZ" or cat in ("Cc", "Cf", "Cs") else cp


@functools.cache
def _char_tables() -> tuple[_LazyTable, _LazyTable]:
    """str.translate tables from Unicode categories, filled per code point as they are met.

    TEXT (names, cities): drop punctuation (P*), symbols (S*), invisible format characters (Cf,
    except ZWJ/ZWNJ which some scripts need to spell a name) and lone surrogates; turn controls
    and separators into spaces.  KEY (lookups of countries, states, genders): also drop accents
    (after NFKD) and dots/apostrophes ("U.S.A." -> "usa"), every other P/S/C/Z becomes a space.
    """
    return _LazyTable(_text_entry), _LazyTable(_key_entry)


_SPACES_RE = re.compile(r"\s+")
_DIGITS_AND_SPACES_RE = re.compile(r"[\d ]*")


def _text(s: str, sep: str) -> str:
    """NFC, lowercase, no punctuation/symbols, whitespace runs -> `sep`; digits-only -> ""."""
    t = unicodedata.normalize("NFC", s).lower().translate(_char_tables()[0])
    # NFC again at the end: removing a symbol can bring a base letter and a combining mark
    # together, and the hash must be of one canonical spelling (this also makes it idempotent).
    t = unicodedata.normalize("NFC", _SPACES_RE.sub(sep, t.strip()))
    return "" if _DIGITS_AND_SPACES_RE.fullmatch(t) else t


def _key(s: str) -> str:
    """Loose lookup key: no accents, case, dots or punctuation; single spaces."""
    k = unicodedata.normalize("NFC", unicodedata.normalize("NFKD", s).translate(_char_tables()[1])).lower()
    return _SPACES_RE.sub(" ", k).strip()


def _table(pairs: dict[str, str], key: Callable[[str], str] = _key) -> dict[str, str]:
    """Re-key a {spelling: code} table with the same key function the inputs go through."""
    return {key(spelling): code for spelling, code in pairs.items()}


# --------------------------------------------------------------------------------------------
# em


# One @, a non-empty local part, a dotted domain whose last label is 2+ letters, and none of
# the characters that show a list or a display name ("John <j@x.com>", "a@x.com;b@y.com").
_NOT_EMAIL = r"\s@,;:<>()\[\]\"\\\x00-\x1f\x7f"
_EMAIL = rf"[^{_NOT_EMAIL}]+@(?:[^{_NOT_EMAIL}.]+\.)+(?:[^\W\d_]{{2,}}|xn--[a-z0-9-]+)"


_EMAIL_RE = re.compile(_EMAIL)


@_distinct
def email(text: str, region: str = "") -> str:
    """Trim and lowercase an email address; anything that is not one -> ""."""
    low = text.lower()
    return low if _EMAIL_RE.fullmatch(low) else ""


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
_NANP_SHAPE_RE = re.compile(rf"{_FAST_CHARS}{{1,40}}")
_PLUS_SHAPE_RE = re.compile(rf"\+{_FAST_CHARS}{{1,40}}")
_NATIONAL_SHAPE_RE = _NANP_SHAPE_RE  # digits and separators, no "+"
# parse keeps the number as given when stripping the national prefix leaves one of these lengths.
_NOT_STRIPPED = (ValidationResult.TOO_SHORT, ValidationResult.IS_POSSIBLE_LOCAL_ONLY, ValidationResult.INVALID_LENGTH)
# Neither an extension (it needs an "x" or "#") nor a letter can be in these.
_PLAIN_PHONE_RE = re.compile(r"[0-9 ().+-]*")


def _phone_prepare_one(raw: str) -> str:
    """Drop an extension, refuse letters, and read a leading "00" as the international "+"."""
    if _PLAIN_PHONE_RE.fullmatch(raw):  # the common case, without the extension search
        s = raw.strip()
    else:
        s = _EXTENSION_RE.sub("", raw).strip()
        if _LETTER_RE.search(s):
            return ""
    return "+" + s[2:] if s.startswith("00") else s


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
    digits = _shape_digits(s)
    nsn = digits[1:] if len(digits) == 11 and digits[0] == "1" else digits
    return "1" + nsn if _NANP_RE.fullmatch(nsn) else None


def _shape_digits(s: str) -> str:
    """The digits of a string of the fast shapes (digits, " ().-" and a leading "+"), by a few
    str.replace calls, which cost less than re.sub("[^0-9]", "", s)."""
    return s.replace("+", "").replace(" ", "").replace("(", "").replace(")", "").replace(".", "").replace("-", "")


def _phone_fast_plus(s: str) -> str | None:
    """"+"-prefixed digits whose country code, length and lack of a national prefix are clear."""
    if not _PLUS_SHAPE_RE.fullmatch(s):
        return None
    return _checked_e164(_shape_digits(s))


def _checked_e164(digits: str) -> str | None:
    """``_phone_fast_plus`` once the "+" and separators are gone: the digits if they are E.164 as
    parse would give them (code, possible length, no national prefix, NANP's structure), else None."""
    codes = _calling_codes()
    # Calling codes are prefix-free; phonenumbers also tries 1, 2, then 3 digits.
    code = digits[:1] if digits[:1] in codes else digits[:2] if digits[:2] in codes else digits[:3]
    if code not in codes:
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


# The national-prefix fast paths use parse's own steps for the number once its country calling
# code is known: strip the national prefix (kept if what remains has no possible length), then
# the result must be what the exact "+" fast path confirms as possible and canonical. Digits that
# parse could read another way (an IDD or the country code at the start of a national number,
# too few digits) are left to the slow path.


class _Plan(NamedTuple):
    """A numbering plan's metadata, with the patterns parse's national-prefix step uses compiled once."""

    meta: PhoneMetadata
    prefix: re.Pattern[str] | None  # national_prefix_for_parsing
    transform: bool  # a national_prefix_transform_rule: such plans are left to phonenumbers' own step
    general: re.Pattern[str] | None  # general_desc.national_number_pattern


def _plan(meta: PhoneMetadata) -> _Plan:
    pattern = meta.general_desc.national_number_pattern if meta.general_desc is not None else None
    return _Plan(meta, re.compile(meta.national_prefix_for_parsing) if meta.national_prefix_for_parsing else None,
                 bool(meta.national_prefix_transform_rule), re.compile(pattern) if pattern else None)


@functools.cache
def _national_plans() -> dict[str, tuple[_Plan, str, re.Pattern[str] | None]]:
    """Per region (lowercase): its plan, country calling code and international (IDD) prefix."""
    plans = {}
    for region in phonenumbers.SUPPORTED_REGIONS:
        meta = PhoneMetadata.metadata_for_region(region, None)
        if meta is not None:
            idd = re.compile(meta.international_prefix) if meta.international_prefix else None
            plans[region.lower()] = (_plan(meta), str(meta.country_code), idd)
    return plans


@functools.cache
def _calling_code_plans() -> dict[str, _Plan]:
    """Per country calling code: the plan parse reads a "+" number with."""
    plans = {}
    for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        meta = PhoneMetadata.metadata_for_region_or_calling_code(code, phonenumbers.region_code_for_country_code(code))
        if meta is not None:
            plans[str(code)] = _plan(meta)
    return plans


def _phone_fast_national(s: str, region: str) -> str | None:
    """A national number ("020 7946 0958", gb), read as parse reads it, without its text handling."""
    plan = _national_plans().get(region)
    if plan is None or not _NATIONAL_SHAPE_RE.fullmatch(s):
        return None
    numbering, code, idd = plan
    digits = _shape_digits(s)
    if len(digits) < 3 or digits.startswith(code) or (idd is not None and idd.match(digits)):
        return None
    return _without_national_prefix(code, digits, numbering)


def _phone_fast_international(s: str) -> str | None:
    """A "+" number with a national prefix inside ("+44 (0)20 7946 0958"), read as parse reads it."""
    if not _PLUS_SHAPE_RE.fullmatch(s):
        return None
    digits = _shape_digits(s)
    plans = _calling_code_plans()
    # Calling codes are prefix-free; parse also tries 1, 2, then 3 digits.
    code = digits[:1] if digits[:1] in plans else digits[:2] if digits[:2] in plans else digits[:3]
    if code not in plans or len(digits) <= 2:
        return None
    return _without_national_prefix(code, digits[len(code):], plans[code])


def _without_national_prefix(code: str, national: str, plan: _Plan) -> str | None:
    """E.164 digits of `national` in the plan of `code`, None unless the "+" fast path confirms them."""
    if _strip_national_prefix is None or _test_number_length is None:
        return None
    nsn = _stripped_national_prefix(national, plan)
    if _test_number_length(nsn, plan.meta) in _NOT_STRIPPED:  # parse keeps a possible short number as given
        nsn = national
    e164 = code + nsn
    return e164 if len(nsn) >= 2 and _checked_e164(e164) == e164 else None


def _stripped_national_prefix(number: str, plan: _Plan) -> str:
    """The number without its national prefix, as phonenumbers' own step strips it (a prefix is
    kept when the number fits the plan with it and not without it), with the plan's patterns
    compiled once; a plan with a transform rule goes through that step itself."""
    if plan.transform:
        return _strip_national_prefix(number, plan.meta)[1]
    found = plan.prefix.match(number) if plan.prefix is not None and number else None
    if found is None:
        return number
    rest = number[found.end():]
    if plan.general is not None and plan.general.fullmatch(number) and not plan.general.fullmatch(rest):
        return number
    return rest


def _phone_fast_one(s: str, region: str) -> str | None:
    """The result for the common shapes, None where the slow path must decide."""
    fast = _phone_fast_nanp(s, region)
    if fast is None:
        fast = _phone_fast_plus(s)
    if fast is None:
        fast = _phone_fast_international(s)
    return fast if fast is not None else _phone_fast_national(s, region)


def _phone_fast(s: pd.Series, regions: pd.Series) -> pd.Series:
    """``_phone_fast_one`` over a Series (None where the slow path must decide)."""
    out = [_phone_fast_one(v, r if isinstance(r, str) else "") for v, r in zip(s, regions.reindex(s.index))]
    return pd.Series(out, index=s.index, dtype=object)


@_distinct
def phone(text: str, region: str) -> str:
    """Phone -> E.164 digits with country code, no "+" ("(650)555-1212", us -> "16505551212").

    "+" or "00" prefixed numbers are international whatever the row's country; a national number
    is read in the row's country (lowercase alpha-2 in `countries`), and with no country it is
    dropped. Extensions are dropped; letters, impossible lengths and NANP placeholders -> "".
    The fast path answers the common shapes, phonenumbers the rest.
    """
    if region in _NANP_REGIONS and (found := _US_COMMON_RE.fullmatch(text)):
        return "1" + found[1] + found[2] + found[3]
    return _phone_general(text, region)


def _phone_general(text: str, region: str) -> str:
    """``phone`` without its first step for the common US and Canadian shapes."""
    s = _phone_prepare_one(text)
    if not s:
        return ""
    fast = _phone_fast_one(s, region)
    return fast if fast is not None else _phone_one(s, region)


# The shapes US and Canadian CRMs write most ("(650) 555-1212", "650.555.1212", "+1 650 555 1212",
# "1-650-555-1212", "6505551212"), read by one regex. Each is made of digits and " ().-" (with "+1"),
# its digits a NANP number: what the general steps answer for it, in 0.55 µs where they take 0.9-1.7.
_NANP_REGIONS = ("us", "ca")
_US_COMMON_RE = re.compile(r"(?:\+?1[ .-]?)?\(?([2-9][0-9]{2})\)?[ .-]?([2-9][0-9]{2})[ .-]?([0-9]{4})")


# --------------------------------------------------------------------------------------------
# fn, ln, ct


@_distinct
def name(text: str, region: str = "") -> str:
    """First or last name: NFC, lowercase, no punctuation/symbols, single inner spaces."""
    return _text(text, " ")


@_distinct
def city(text: str, region: str = "") -> str:
    """City: like name() but with no spaces at all ("St. Louis" -> "stlouis")."""
    return _text(text, "")


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


def _country_key(s: str) -> str:
    """_key() without a leading "the " ("The Netherlands", "the Gambia")."""
    k = _key(s)
    return k[4:] if k.startswith("the ") else k


@_distinct
def country(text: str, region: str = "") -> str:
    """Country -> ISO 3166-1 alpha-2 lowercase, from alpha-2, alpha-3, English names or aliases."""
    return _country_table().get(_country_key(text), "")


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


def _state_key(s: str) -> str:
    """_key() without spaces, so "NewYork" and "New-York" find New York as well."""
    return _key(s).replace(" ", "")


@_distinct
def state(text: str, region: str) -> str:
    """State: US -> 2-letter code lowercase ("California" -> "ca"); else like city().

    A row with no country whose value is a US state name or code is treated as US; a US row whose
    value is not a US state -> "".
    """
    us_code = _us_states().get(_state_key(text))
    if region == "us" or (region == "" and us_code is not None):
        return us_code or ""
    return _text(text, "")


# --------------------------------------------------------------------------------------------
# zp


_FLOAT_TEXT_RE = re.compile(r"^([0-9]+)\.0+$")  # 2134.0 from a float column
_ZIP_SEPARATORS_RE = re.compile(r"[\s\-\u2010-\u2015\u2212]")
_US_ZIP_RE = re.compile(r"[0-9]{3,5}|[0-9]{7,9}")
_US_LIKE_ZIP_RE = re.compile(r"[0-9]{5}(?:[0-9]{4})?")
_POSTAL_CODE_RE = re.compile(r"(?=.*[0-9])[0-9a-z]{2,10}")


def _us_zip(compact: str) -> str:
    """First 5 digits of an explicitly-US ZIP, restoring leading zeros Excel dropped."""
    d = _FLOAT_TEXT_RE.sub(r"\1", compact)
    # 3-5 digits: a ZIP (00501, 02134 -> "501", "2134"); 7-9 digits: ZIP+4, same damage.
    if not _US_ZIP_RE.fullmatch(d):
        return ""
    return d.zfill(5) if len(d) <= 5 else d.zfill(9)[:5]


@_distinct
def zip_code(text: str, region: str) -> str:
    """Postal code: lowercase, no spaces or dashes; US: first 5 digits ("94035-1234" -> "94035").

    Elsewhere the result must look like a postal code (2-10 of a-z0-9 with a digit), so that
    placeholders like "n/a" or "unknown" are not hashed and sent.
    """
    compact = _ZIP_SEPARATORS_RE.sub("", text.lower())
    if region == "us":
        return _us_zip(compact)
    if region == "" and _US_LIKE_ZIP_RE.fullmatch(compact):
        return compact[:5]
    return compact if _POSTAL_CODE_RE.fullmatch(compact) else ""


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
    return f"{year:04d}{month:02d}{day:02d}" if year >= 1900 and when <= _today() else ""


def _today() -> datetime.date:
    """Today's local date. ``date.today()`` costs 0.5 µs, more than the rest of a date's check, and
    mapping asks once per distinct date of birth: the date is worked out once a minute."""
    return _date_of_minute(int(time.time()) // 60)


@functools.lru_cache(maxsize=1)
def _date_of_minute(minute: int) -> datetime.date:
    # Local midnight falls on a whole minute, so the date at the minute's start is the date all through it.
    return datetime.date.fromtimestamp(minute * 60)


@_distinct
def date_of_birth(text: str, region: str = "") -> str:
    """Date of birth -> YYYYMMDD: a real date, year >= 1900, not in the future.

    Accepts Y-M-D (also with / or ., or an ISO time after it), YYYYMMDD, US M/D/Y (D/M/Y when the
    first number exceeds 12) and D.M.Y / D-M-Y; two-digit years are ambiguous and give "".
    """
    return _dob_one(text)


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
def gender(text: str, region: str = "") -> str:
    """Gender -> "f" or "m" from common words in a few languages; anything else -> ""."""
    return _gender_table().get(_key(text), "")


# --------------------------------------------------------------------------------------------
# external_id, lead_id


@_distinct
def external_id(text: str, region: str = "") -> str:
    """External id: trimmed only (case kept: it must be the same string wherever it is sent)."""
    return text


_LEAD_PREFIX_RE = re.compile(r"^[lL]:")
_ALL_DIGITS_RE = re.compile(r"[0-9]+")


@_distinct(keep_hashes=False)  # a lead id is sent as it is, never hashed
def lead_id(text: str, region: str = "") -> str:
    """Meta Lead Ads lead id (never hashed): digits only, spreadsheet damage repaired.

    "1234567890123456.0" (a float column) -> "1234567890123456"; the "l:" prefix of Ads Manager
    lead exports is dropped; anything else that is not all digits -> "".
    """
    s = _FLOAT_TEXT_RE.sub(r"\1", _LEAD_PREFIX_RE.sub("", text))
    return s if _ALL_DIGITS_RE.fullmatch(s) else ""
