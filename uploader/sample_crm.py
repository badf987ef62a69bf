"""The sample CRM in ``sql/sample_crm/``: create its tables in a database and seed them.

The demo builds it in SQLite; tests and a first try on a server use it too:

    python -m uploader.sample_crm postgresql+psycopg://postgres@127.0.0.1:5432/crm

The seed's times are relative to now, so its conversions are always recent enough for Meta.
(This writes to the database it is given: point it at a sample database, never at a real CRM.)
"""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url


def sql_dir(package: Path) -> Path:
    """The checkout's ``sql/`` beside the ``uploader`` package, or the copy an installed wheel
    carries inside it as ``uploader/_sql`` (pyproject.toml's package-data), so that the demo
    works outside a checkout too."""
    installed = package / "_sql"
    return installed if installed.is_dir() else package.parent / "sql"


SQL_DIR = sql_dir(Path(__file__).resolve().parent)
QUERIES = SQL_DIR / "queries"


def sample_dialect(url: str) -> str:
    """The folder of ``sql/sample_crm`` for this URL's database."""
    backend = make_url(url).get_backend_name()
    return "mysql" if backend == "mariadb" else backend


def load_sample_crm(url: str, seed: bool = True, sql_dir: Path = SQL_DIR) -> None:
    """Create the sample CRM's tables in ``url`` and (with ``seed``) insert its rows."""
    folder = sql_dir / "sample_crm" / sample_dialect(url)
    engine = create_engine(url)
    try:
        for name in ("schema.sql", "seed.sql") if seed else ("schema.sql",):
            _run_script(engine, (folder / name).read_text(encoding="utf-8"))
    finally:
        engine.dispose()


def _run_script(engine: Engine, script: str) -> None:
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "sqlite":
            driver = raw.driver_connection
            assert driver is not None, "a raw connection has its driver connection"
            driver.executescript(script)
        elif engine.dialect.name == "postgresql":
            # One call: psycopg sends several statements (and $$ function bodies) at once.
            raw.cursor().execute(script)
        else:
            cursor = raw.cursor()
            for statement in _statements(script):
                cursor.execute(statement)
        raw.commit()
    finally:
        raw.close()


def _statements(script: str) -> list[str]:
    """MySQL's driver runs one statement per call; the sample files end each with ';' at a line end."""
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in code.split(";\n") if part.strip().rstrip(";")]


if __name__ == "__main__":  # pragma: no cover - a convenience for people trying the sample
    if len(sys.argv) != 2:
        sys.exit("usage: python -m uploader.sample_crm SQLALCHEMY_URL")
    load_sample_crm(sys.argv[1])
    print(f"sample CRM created and seeded in {make_url(sys.argv[1]).render_as_string(hide_password=True)}")
