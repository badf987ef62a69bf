"""Generate a messy CRM export of N rows in the standard CSV template, deterministically.

Same ``--rows``, ``--seed`` and ``--now`` give the same bytes. The rows look like what sales-ops
tools export: mixed-case emails with stray spaces, phones in national and international shapes
(with extensions, dots, ``00`` prefixes, national trunk zeros), state and country names or codes,
ZIP+4, dates of birth in four spellings, missing fields, repeat customers, and a few bad rows
(unparseable or future times, negative values, a Purchase without a value, a line with too many
fields, an invalid email). Every time lies within the last five days before ``--now``.

    python benchmarks/generate.py --rows 1000000 --out benchmarks/data/crm-1000000.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

HEADER = ["event_name", "event_time", "action_source", "event_id", "order_id", "email", "phone",
          "first_name", "last_name", "city", "state", "zip", "country", "date_of_birth", "gender",
          "external_id", "lead_id", "value", "currency", "stage"]
FIRST = ["John", "Mary", "José", "Valéry", "Anne-Marie", "Chloé", "Mohammed", "Wei", "Sören", "Åsa",
         "Patrick", "Zoë", "Jean-Luc", "Ng", "Liam", "Olivia", "Noah", "Emma", "Mateo", "Sofía",
         "Lucas", "Mia", "Ethan", "Ava", "Björn", "Ingrid", "Raj", "Priya", "Kofi", "Amara"]
LAST = ["Smith", "O'Neil", "García", "Müller", "Dupont", "Nguyen", "van der Berg", "Smith-Jones",
        "Kowalski", "Østergaard", "Brown", "Johnson", "Williams", "Jones", "Miller", "Davis",
        "Martínez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Lee",
        "Harris", "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright", "Scott", "Green"]
US_PLACES = [("New York", "New York", "NY", "10001", "212"), ("San Francisco", "California", "CA", "94107", "415"),
             ("Menlo Park", "California", "CA", "94025", "650"), ("Austin", "Texas", "TX", "73301", "512"),
             ("Chicago", "Illinois", "IL", "60601", "312"), ("St. Louis", "Missouri", "MO", "63101", "314"),
             ("Boston", "Massachusetts", "MA", "02134", "617"), ("Seattle", "Washington", "WA", "98101", "206"),
             ("Miami", "Florida", "FL", "33101", "305"), ("Denver", "Colorado", "CO", "80202", "303")]
COUNTRY_SPELLINGS = {"us": ["United States", "USA", "us", "US", "U.S.A.", ""],
                     "gb": ["United Kingdom", "UK", "GB", "gb"],
                     "de": ["Germany", "DE", "Deutschland"],
                     "fr": ["France", "FR", "fr"]}
NEW_YORK = ZoneInfo("America/New_York")
DOMAINS = ["gmail.com", "Example.com", "yahoo.com", "ACME-corp.example", "outlook.com", "web.de"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="data rows to write")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--now", type=float, default=None,
                        help="Unix seconds the times are relative to (default: the clock, to the hour)")
    parser.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    return parser.parse_args(argv)


def default_now() -> float:
    """The clock rounded down to the hour, so two runs within an hour write the same file."""
    return float(int(time.time()) // 3600 * 3600)


def generate(path: Path, rows: int, seed: int, now: float) -> dict[str, object]:
    """Write the CSV and a ``.json`` description beside it; return the description."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for row in _rows(rows, random.Random(seed), now):
            writer.writerow(row)
    meta = {"rows": rows, "seed": seed, "now": now, "path": str(path), "bytes": path.stat().st_size}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def _rows(n: int, rng: random.Random, now: float) -> Iterator[list[str]]:
    customers = max(1, int(n * 0.7))  # three in ten rows are a repeat customer
    for i in range(n):
        if i % 997 == 500:
            yield _bad_row(i, rng, now)
            continue
        yield _good_row(i, rng.randrange(customers), rng, now)


def _good_row(i: int, customer: int, rng: random.Random, now: float) -> list[str]:
    person = random.Random(customer * 7919 + 17)  # a customer keeps name, email, phone in every row
    country = person.choices(["us", "gb", "de", "fr"], weights=[80, 8, 7, 5])[0]
    first, last = person.choice(FIRST), person.choice(LAST)
    event = rng.choices(["Purchase", "Lead", "Subscribe", ""], weights=[60, 20, 10, 10])[0]
    stage = rng.choice(["Closed Won", "closed won", "Qualified"]) if not event else ""
    has_value = event == "Purchase" or (not event and stage.lower() == "closed won")
    return [
        event,
        _time(rng, now),
        rng.choices(["", "system_generated", "phone_call", "Physical_Store"], weights=[70, 10, 15, 5])[0],
        "",
        f"SO-{i:08d}" if rng.random() < 0.85 else "",
        _email(person, first, last, customer) if rng.random() < 0.9 else "",
        _phone(person, country, customer) if rng.random() < 0.85 else "",
        _case(rng, first) if rng.random() < 0.9 else "",
        _case(rng, last) if rng.random() < 0.9 else "",
        *_place(person, rng, country),
        _dob(person) if rng.random() < 0.4 else "",
        rng.choice(["F", "female", "Male", "m", "", "", ""]),
        f"CRM-{customer:07d}" if rng.random() < 0.7 else "",
        str(person.randrange(10**14, 10**15) * 10 + 1) if rng.random() < 0.05 else "",
        _value(rng) if has_value else "",
        rng.choice(["usd", "USD", "EUR", "gbp"]) if has_value else "",
        stage,
    ]


def _time(rng: random.Random, now: float) -> str:
    seconds = now - rng.uniform(600, 5 * 86400)
    shape = rng.random()
    if shape < 0.5:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if shape < 0.75:
        zone = timezone(timedelta(hours=rng.choice([-5, 1, 2])))
        return datetime.fromtimestamp(seconds, zone).isoformat(timespec="seconds")
    if shape < 0.9:  # naive: local time in the source's zone (the benchmark's config says New York)
        return datetime.fromtimestamp(seconds, NEW_YORK).strftime("%Y-%m-%d %H:%M")
    return str(int(seconds))


def _case(rng: random.Random, text: str) -> str:
    return rng.choice([text, text.upper(), text.lower(), f" {text} "])


def _email(person: random.Random, first: str, last: str, customer: int) -> str:
    local = f"{first}.{last}".replace(" ", "").replace("'", "")
    domain = person.choice(DOMAINS)
    shape = person.random()
    if shape < 0.003:
        return f"{first} at {domain}"  # not an address: dropped, the row goes on with other keys
    text = f"{local}{customer}@{domain}"
    return text.upper() if shape < 0.2 else (f"  {text} " if shape < 0.4 else text)


def _phone(person: random.Random, country: str, customer: int) -> str:
    line = f"{customer % 10000:04d}"
    exchange = f"{200 + customer // 10000 % 800:03d}"
    if country == "us":
        area = person.choice(US_PLACES)[4]
        shapes: list[Callable[[], str]] = [
            lambda: f"({area}) {exchange}-{line}", lambda: f"{area}.{exchange}.{line}",
            lambda: f"{area}-{exchange}-{line}", lambda: f"{area}{exchange}{line}",
            lambda: f"+1 {area} {exchange} {line}", lambda: f"1-{area}-{exchange}-{line}",
            lambda: f"{area}-{exchange}-{line} x{customer % 900 + 100}",
        ]
        return person.choice(shapes)()
    if country == "gb":
        return person.choice([f"+44 20 7{exchange} {line}", f"020 7{exchange} {line}",
                              f"0044 20 7{exchange} {line}", f"+44 (0)20 7{exchange} {line}"])
    if country == "de":
        return person.choice([f"+49 30 {exchange}{line}", f"030 {exchange}{line}", f"0049 30 {exchange} {line}"])
    return person.choice([f"+33 6 12 {exchange[:2]} {line[:2]} {line[2:]}", f"06 12 {exchange[:2]} {line[:2]} {line[2:]}"])


def _place(person: random.Random, rng: random.Random, country: str) -> list[str]:
    spelled = rng.choice(COUNTRY_SPELLINGS[country])
    if country == "us":
        city, state, code, zip5, _ = person.choice(US_PLACES)
        zip_text = rng.choice([zip5, f"{zip5}-{person.randrange(10000):04d}", zip5.lstrip("0")])
        return [_case(rng, city), rng.choice([state, code, code.lower(), state.upper()]), zip_text, spelled]
    places = {"gb": ("London", "", "SW1A 1AA"), "de": ("München", "Bayern", "80331"),
              "fr": ("Paris", "Île-de-France", "75001")}
    city, state, zip_text = places[country]
    return [_case(rng, city), state, zip_text, spelled]


def _dob(person: random.Random) -> str:
    y, m, d = person.randrange(1940, 2005), person.randrange(1, 13), person.randrange(1, 29)
    return person.choice([f"{y}-{m:02d}-{d:02d}", f"{m}/{d}/{y}", f"{d:02d}.{m:02d}.{y}", f"{y}{m:02d}{d:02d}"])


def _value(rng: random.Random) -> str:
    amount = rng.randrange(100, 5_000_000) / 100
    return rng.choice([f"{amount:.2f}", f"{amount:,.2f}", str(int(amount))])


def _bad_row(i: int, rng: random.Random, now: float) -> list[str]:
    """One of a few kinds of row the uploader must refuse (or half-refuse) with a reason."""
    good = _good_row(i, i, rng, now)
    kind = (i // 997) % 6
    if kind == 0:
        good[1] = "yesterday afternoon"
    elif kind == 1:
        good[1] = datetime.fromtimestamp(now + 86400, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif kind == 2:
        good[0], good[17], good[18] = "Purchase", "-25.00", "USD"
    elif kind == 3:
        good[0], good[17], good[18] = "Purchase", "", ""
    elif kind == 4:
        return good + ["an unquoted, comma"]  # more fields than the header: malformed_row
    else:
        good[5], good[6], good[7], good[8], good[15], good[16] = "not-an-email", "12", "", "", "", ""
    return good


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    meta = generate(args.out, args.rows, args.seed, args.now if args.now is not None else default_now())
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
