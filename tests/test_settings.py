from __future__ import annotations

from pathlib import Path

import pytest

from uploader.errors import ConfigError
from uploader.settings import Secret, default_config_path, load_settings, require_delivery

MINIMAL = '[ledger]\nurl = "sqlite:///state/ledger.db"\n\n[[sources]]\nname = "sales_ops"\ntype = "csv"\npath = "drop"\n'


def write(tmp_path: Path, text: str, drop: bool = True) -> Path:
    if drop:
        (tmp_path / "drop").mkdir(exist_ok=True)
    path = tmp_path / "capi-uploader.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_minimal_file_is_enough_for_a_csv_drop(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL), environ={})
    source = settings.sources[0]
    assert (source.name, source.type, source.path) == ("sales_ops", "csv", tmp_path / "drop")
    assert (source.action_source, source.timezone, source.default_country) == ("system_generated", "UTC", None)
    assert settings.ledger_url == f"sqlite:///{tmp_path / 'state' / 'ledger.db'}"
    meta = settings.meta
    assert (meta.api_version, meta.graph_url, meta.batch_size) == ("v25.0", "https://graph.facebook.com", 1000)
    assert meta.access_token is None and meta.dataset_id is None


def test_every_problem_is_listed_at_once_with_its_setting(tmp_path: Path) -> None:
    text = ('[ledger]\nurl = "nonsense"\n[meta]\nbatch_size = 5000\n[[sources]]\nname = "a b"\ntype = "ftp"\n'
            'path = "missing"\naction_source = "web"\ntimezone = "Mars/Base"\ndefault_country = "XX"\n'
            'colour = "red"\n[sources.columns]\n"Deal Amount" = "amount"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text, drop=False),
                      environ={"META_DATASET_ID": "abc", "META_GRAPH_URL": "http://example.com"})
    problems = caught.value.problems
    expected_starts = [
        "ledger.url: must be a SQLAlchemy URL",
        "sources[0].colour: unknown setting",
        "sources[0].name: 'a b' may hold only",
        "sources[0].type: 'ftp' is not a known source type (known: csv, sql)",
        'sources[0].path: folder "missing" does not exist',
        "sources[0].action_source: 'web' is not one of",
        "sources[0].timezone: 'Mars/Base' is not a time zone",
        "sources[0].default_country: 'XX' is not a two-letter ISO country code",
        "sources[0].columns: 'Deal Amount' is renamed to 'amount', which is not a template column",
        "META_DATASET_ID: 'abc' must be the numeric dataset (pixel) id",
        "META_GRAPH_URL: plain http is allowed only for a sandbox on this machine",
        "meta.batch_size: must be a whole number between 1 and 1000",
    ]
    for start in expected_starts:
        assert any(p.startswith(start) for p in problems), (start, problems)
    assert len(problems) == len(expected_starts)


def test_missing_file_names_the_default_and_the_example(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file '.*nowhere.toml' not found \(pass --config PATH"):
        load_settings(tmp_path / "nowhere.toml", environ={})


def test_bad_toml_says_where(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not valid TOML \(.*line 1"):
        load_settings(write(tmp_path, "[ledger\n"), environ={})


def test_environment_wins_over_dotenv_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("META_ACCESS_TOKEN=from-dotenv\nMETA_DATASET_ID=111\n"
                                   "META_TEST_EVENT_CODE=TEST123\n", encoding="utf-8")
    settings = load_settings(write(tmp_path, MINIMAL), environ={"META_DATASET_ID": "222"})
    assert settings.meta.access_token == Secret("from-dotenv")
    assert settings.meta.dataset_id == "222"
    assert settings.meta.test_event_code == "TEST123"


def test_the_token_never_shows_in_a_repr(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL), environ={"META_ACCESS_TOKEN": "EAAsecret123"})
    assert "EAAsecret123" not in repr(settings)
    assert "EAAsecret123" not in str(settings.meta.access_token)
    assert settings.meta.access_token is not None and settings.meta.access_token.reveal() == "EAAsecret123"


def test_sending_needs_token_and_dataset_and_says_where_it_looked(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL), environ={})
    with pytest.raises(ConfigError) as caught:
        require_delivery(settings.meta)
    assert caught.value.problems == [
        "META_ACCESS_TOKEN: not set (looked in the environment and .env)",
        "META_DATASET_ID: not set (looked in the environment and .env)",
    ]


def test_env_placeholders_in_paths(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    text = MINIMAL.replace('path = "drop"', 'path = "${EXPORT_DIR}"')
    settings = load_settings(write(tmp_path, text), environ={"EXPORT_DIR": "exports"})
    assert settings.sources[0].path == tmp_path / "exports"
    with pytest.raises(ConfigError, match=r"sources\[0\].path: \$\{EXPORT_DIR\} is not set"):
        load_settings(write(tmp_path, text), environ={})


def test_default_config_path_comes_from_the_environment() -> None:
    assert default_config_path({}) == Path("capi-uploader.toml")
    assert default_config_path({"CAPI_UPLOADER_CONFIG": "/etc/capi.toml"}) == Path("/etc/capi.toml")


def test_duplicate_source_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the name 'sales_ops' is used twice"):
        load_settings(write(tmp_path, MINIMAL + MINIMAL.split("\n\n", 1)[1]), environ={})


def test_a_csv_source_may_name_its_delimiter_and_decimal_separator(tmp_path: Path) -> None:
    source = load_settings(write(tmp_path, MINIMAL), environ={}).sources[0]
    assert (source.delimiter, source.decimal) == (None, ".")  # each file's header shows its delimiter
    source = load_settings(write(tmp_path, MINIMAL + 'delimiter = "\\t"\ndecimal = ","\n'), environ={}).sources[0]
    assert (source.delimiter, source.decimal) == ("\t", ",")


@pytest.mark.parametrize(("lines", "problem"), [
    ('delimiter = ";;"', 'sources[0].delimiter: \';;\' must be one character such as ";" or "\\t" '
                         "(leave it out to take the one each file's header shows)"),
    ('delimiter = "\\""', 'sources[0].delimiter: \'"\' must be one character'),
    ('delimiter = "x"', "sources[0].delimiter: 'x' must be one character"),
    ('decimal = "dot"', 'sources[0].decimal: \'dot\' must be "." (10.50) or "," (10,50)'),
    ('delimiter = ","\ndecimal = ","', "sources[0].decimal: ',' cannot also be the delimiter"),
])
def test_a_bad_delimiter_or_decimal_names_the_setting(tmp_path: Path, lines: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, MINIMAL + lines + "\n"), environ={})
    assert len(caught.value.problems) == 1 and caught.value.problems[0].startswith(problem)
