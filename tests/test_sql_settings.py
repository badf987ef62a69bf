"""Settings of a ``type = "sql"`` source: checked at load, every problem at once, the URL a Secret."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from uploader.errors import ConfigError
from uploader.settings import Secret, load_settings

CRM = "postgresql+psycopg://crm_reader:pa55word@db.example.com:5432/crm"
SQL_SOURCE = ('[[sources]]\nname = "crm_deals"\ntype = "sql"\nurl = "${CRM_DATABASE_URL}"\n'
              'query = "sql/deals.sql"\ncursor = "updated_at"\n')
QUERY = "SELECT * FROM deals WHERE updated_at >= :since AND updated_at < :until"


def write(tmp_path: Path, text: str, query: str = QUERY) -> Path:
    (tmp_path / "sql").mkdir(exist_ok=True)
    (tmp_path / "sql" / "deals.sql").write_text(query, encoding="utf-8")
    path = tmp_path / "capi-uploader.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path, environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=environ)
    return caught.value.problems


def test_a_sql_source_takes_its_url_from_the_environment_and_hides_it(tmp_path: Path) -> None:
    text = SQL_SOURCE + 'lookback = "2h"\nstart = 2026-11-01T00:00:00Z\n'
    settings = load_settings(write(tmp_path, text), environ={"CRM_DATABASE_URL": CRM})
    source = settings.sources[0]
    assert (source.type, source.path, source.cursor) == ("sql", None, "updated_at")
    assert source.url == Secret(CRM) and source.query == tmp_path / "sql" / "deals.sql"
    assert source.lookback == 7200.0
    assert source.start == datetime(2026, 11, 1, tzinfo=UTC).timestamp()
    assert "pa55word" not in repr(settings) and "pa55word" not in str(source.url)


@pytest.mark.parametrize(("lookback", "seconds"), [("30m", 1800.0), ("1d", 86400.0), ("45s", 45.0),
                                                   ("90", 90.0), (600, 600.0), (0, 0.0)])
def test_lookback_takes_a_duration_or_seconds(tmp_path: Path, lookback: object, seconds: float) -> None:
    value = f'"{lookback}"' if isinstance(lookback, str) else str(lookback)
    settings = load_settings(write(tmp_path, SQL_SOURCE + f"lookback = {value}\n"), environ={"CRM_DATABASE_URL": CRM})
    assert settings.sources[0].lookback == seconds


def test_a_naive_start_is_read_in_the_sources_timezone(tmp_path: Path) -> None:
    text = SQL_SOURCE + 'timezone = "America/New_York"\nstart = "2026-11-01 00:00"\n'
    settings = load_settings(write(tmp_path, text), environ={"CRM_DATABASE_URL": CRM})
    assert settings.sources[0].start == datetime(2026, 11, 1, 4, tzinfo=UTC).timestamp()  # EDT, UTC-4


def test_a_relative_sqlite_crm_is_relative_to_the_config_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, SQL_SOURCE), environ={"CRM_DATABASE_URL": "sqlite:///crm/crm.db"})
    assert settings.sources[0].url == Secret(f"sqlite:///{tmp_path / 'crm' / 'crm.db'}")


def test_every_sql_problem_is_listed_at_once_with_its_setting(tmp_path: Path) -> None:
    text = ('[[sources]]\nname = "a"\ntype = "sql"\npath = "drop"\nquery = "sql/missing.sql"\ncursor = "updated at"\n'
            'lookback = "soon"\nstart = "yesterday"\n'
            '[[sources]]\nname = "b"\ntype = "sql"\nurl = "postgresql://crm:hunter2@db/crm"\n'
            'query = "sql/deals.sql"\ncursor = "updated_at"\n'
            '[[sources]]\nname = "c"\ntype = "sql"\nurl = "${CRM_DATABASE_URL}"\nquery = "sql/deals.sql"\n'
            'cursor = "updated_at"\n'
            '[[sources]]\nname = "d"\ntype = "sql"\nurl = "mssql+pyodbc://db/crm"\nquery = "sql/deals.sql"\n'
            'cursor = "updated_at"\n'
            '[[sources]]\nname = "e"\ntype = "sql"\nurl = "postgresql+pg8000://db/crm"\nquery = "sql/deals.sql"\n'
            'cursor = "updated_at"\n'
            '[[sources]]\nname = "f"\ntype = "csv"\npath = "sql"\nurl = "sqlite:///x.db"\n')
    found = problems(write(tmp_path, text), environ={})
    # The "known" lists name the keys of the source's own type (other work adds common keys).
    sql_known = known_keys(found.pop(0), "sources[0].path: unknown setting (known: ")
    csv_known = known_keys(found.pop(), "sources[5].url: unknown setting (known: ")
    assert {"url", "query", "cursor", "lookback", "start", "timezone"} <= sql_known and "path" not in sql_known
    assert {"path", "encoding", "timezone"} <= csv_known and not {"url", "query", "cursor"} & csv_known
    assert found == [
        'sources[0].url: missing (a SQLAlchemy URL, best from the environment: url = "${CRM_DATABASE_URL}")',
        f'sources[0].query: cannot read the file "sql/missing.sql" (looked at {tmp_path / "sql" / "missing.sql"})',
        "sources[0].cursor: must be a column name of the query's result, such as \"updated_at\"",
        'sources[0].lookback: must be a duration such as "30m", "2h", "1d" or a number of seconds',
        "sources[0].start: must be a date and time such as 2026-11-01T00:00:00Z (without an offset it is read "
        "in the source's timezone)",
        'sources[1].url: holds a password; keep it out of the config file: url = "${CRM_DATABASE_URL}" with the '
        "URL in the environment or .env",
        "sources[2].url: ${CRM_DATABASE_URL} is not set (looked in the environment and .env)",
        "sources[3].url: the mssql database is not supported (use SQLite, PostgreSQL or MySQL/MariaDB)",
        "sources[4].url: the driver 'postgresql+pg8000' is not installed (pip install 'capi-uploader[postgres]' "
        "provides postgresql+psycopg)",
    ]
    assert not any("hunter2" in p for p in found)


def known_keys(problem: str, start: str) -> set[str]:
    assert problem.startswith(start) and problem.endswith(")"), problem
    return set(problem[len(start):-1].split(", "))


def test_the_query_must_use_since_and_until(tmp_path: Path) -> None:
    path = write(tmp_path, SQL_SOURCE, query="-- :since and :until in a comment do not count\n"
                                             "SELECT * FROM deals WHERE updated_at >= :since")
    assert problems(path, {"CRM_DATABASE_URL": CRM}) == [
        'sources[0].query: "sql/deals.sql" must use the bind parameters :since and :until (missing: :until), '
        "e.g. WHERE updated_at >= :since AND updated_at < :until"]
