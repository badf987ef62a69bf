"""``capi-uploader demo``: a real upload to a local sandbox, on a machine with no credentials.

It builds a drop folder with a messy (but valid) sales-ops export, starts the
sandbox Graph API on a free port, runs the real pipeline against it, then drops
the same rows again in a new file to show that nothing is sent twice.
"""

from __future__ import annotations

import csv
import hashlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from uploader.pipeline import run_once
from uploader.sample_crm import QUERIES, load_sample_crm
from uploader.sandbox import SandboxServer
from uploader.settings import load_settings

DATASET_ID = "1234567890123"
CRM_URL = "sqlite:///crm.db"  # relative to the demo's config file
CONFIG = """\
# capi-uploader demo configuration (see config/capi-uploader.example.toml for every setting)
[ledger]
url = "sqlite:///state/ledger.db"

[[sources]]
name = "sales_ops"
type = "csv"
path = "drop"
default_country = "US"
timezone = "America/New_York"

# The sample CRM (sql/sample_crm/, in SQLite here): one source per conversion type. The URL
# comes from the environment (CRM_DATABASE_URL), so a password never sits in this file.
[[sources]]
name = "crm_deals"
type = "sql"
url = "${CRM_DATABASE_URL}"
query = "sql/closed_won_deals.sql"
cursor = "updated_at"

[[sources]]
name = "crm_leads"
type = "sql"
url = "${CRM_DATABASE_URL}"
query = "sql/qualified_leads.sql"
cursor = "updated_at"
event_name = "Lead"

[[sources]]
name = "crm_renewals"
type = "sql"
url = "${CRM_DATABASE_URL}"
query = "sql/renewals.sql"
cursor = "updated_at"
event_name = "Subscribe"
"""
HEADER = ["Event_Name", "Event_Time", "action_source", "order_id", "email", "phone", "first_name",
          "last_name", "city", "state", "zip", "country", "date_of_birth", "gender", "external_id",
          "value", "currency", "Sales Rep"]


def sample_rows(now: datetime) -> list[list[str]]:
    """A day of closed deals, qualified leads and renewals, in the shapes CRMs export."""
    def ago(hours: float) -> str:
        return (now - timedelta(hours=hours)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    hashed = hashlib.sha256(b"already.hashed@example.org").hexdigest().upper()
    rows = [
        ["Purchase", ago(30), "", "D-1001", " John_Smith@Gmail.com ", "(650) 555-1212", "John", "Smith",
         "Menlo Park", "California", "94025-1234", "United States", "2/16/1997", "Male", "CRM-1", "1,250.00", "usd", "Ana"],
        ["Purchase", ago(26), "phone_call", "D-1002", "mary.jones@example.com", "+44 20 7946 0958", "Mary", "Jones",
         "London", "", "SW1A 1AA", "GB", "1985-07-04", "F", "CRM-2", "899", "GBP", "Ben"],
        ["Lead", ago(20), "", "", "PAT.O'NEIL@EXAMPLE.NET", "415.555.0199", "Pat", "O'Neil",
         "San Francisco", "CA", "94107", "USA", "", "", "CRM-3", "", "", "Ana"],
        ["Lead", ago(18), "", "", hashed, "", "", "", "", "", "", "", "", "", "CRM-4", "", "", "Cy"],
        ["Subscribe", ago(12), "", "R-2001", "renewals@acme-corp.example", "212-555-0147", "Acme", "Corp",
         "New York", "New York", "10001", "US", "", "", "CRM-5", "4800.00", "USD", "Ben"],
        ["Purchase", ago(6), "phone_call", "D-1003", "Valery.Dupont@example.fr", "06 12 34 56 78", "Valéry", "Dupont",
         "Paris", "Île-de-France", "75001", "France", "16.02.1990", "female", "CRM-6", "2300.5", "EUR", "Cy"],
        ["QualifiedLead", ago(3), "", "", "sam@example.com", "", "Sam", "Lee",
         "Austin", "Texas", "73301", "", "", "", "CRM-7", "", "", "Ana"],
    ]
    return rows + [rows[0]]  # the CRM exported one deal twice: it is sent once


def write_drop(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)


def build_sample_crm(folder: Path) -> None:
    """A fresh sample CRM (SQLite) in the demo folder, with the sample queries beside it."""
    (folder / "crm.db").unlink(missing_ok=True)
    load_sample_crm(f"sqlite:///{folder / 'crm.db'}")
    (folder / "sql").mkdir(exist_ok=True)
    for query in QUERIES.glob("*.sql"):
        shutil.copyfile(query, folder / "sql" / query.name)


def run_demo(folder: Path | None, echo: Callable[[str], None] = print) -> int:
    """Run the demo in ``folder`` (a new temporary one if None); returns the exit code."""
    folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="capi-demo-"))
    (folder / "drop").mkdir(parents=True, exist_ok=True)
    (folder / "capi-uploader.toml").write_text(CONFIG, encoding="utf-8")
    # No secret here: only what lets `capi-uploader status` (and validate) work in the folder afterwards.
    (folder / ".env").write_text(f"CRM_DATABASE_URL={CRM_URL}\nMETA_DATASET_ID={DATASET_ID}\n", encoding="utf-8")
    build_sample_crm(folder)
    now = datetime.now(UTC)
    rows = sample_rows(now)
    write_drop(folder / "drop" / f"deals-{now:%Y%m%d-%H%M%S}.csv", rows)
    token = "demo-" + secrets.token_hex(16)
    with SandboxServer(token=token, dataset_id=DATASET_ID) as sandbox:
        env = {**os.environ, "META_ACCESS_TOKEN": token, "META_DATASET_ID": DATASET_ID,
               "META_GRAPH_URL": sandbox.url, "META_TEST_EVENT_CODE": "", "CRM_DATABASE_URL": CRM_URL}
        settings = load_settings(folder / "capi-uploader.toml", environ=env)
        echo(f"Demo folder: {folder}\nSandbox Graph API: {sandbox.url}\n")
        first = run_once(settings)
        echo(first.render())
        accepted = len(sandbox.accepted())
        echo(f"\nThe sandbox accepted {accepted} events (all hashed) from the CSV drop and the sample CRM. "
             "Now the same rows arrive again in a new file, and the CRM is read again from its cursor:\n")
        write_drop(folder / "drop" / f"deals-{now:%Y%m%d-%H%M%S}-again.csv", list(reversed(rows)))
        second = run_once(settings)
        echo(second.render())
        resent = len(sandbox.accepted()) - accepted
    echo(f"\nSecond run sent {resent} events: the ledger ({folder / 'state' / 'ledger.db'}) already held them.")
    ok = first.exit_code() == 0 and accepted == first.sent > 0 and resent == 0
    echo(f"Look around: cd {folder} && capi-uploader status (or validate, or open the reports/ folder).")
    echo("Demo finished: OK" if ok else "Demo finished: something is off (see above)")
    return 0 if ok else 1
