"""The operations settings: [schedule], [logging], [run] reports and lock, the CSV lifecycle keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_settings import MINIMAL, write
from uploader.errors import ConfigError
from uploader.settings import LoggingSettings, ScheduleSettings, load_settings


def test_defaults_nightly_warning_text_reports_and_move(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL), environ={})
    assert settings.schedule == ScheduleSettings(cron="15 2 * * *", interval_minutes=None, timezone=None,
                                                 misfire_grace_seconds=3600)
    assert settings.logging == LoggingSettings(level="WARNING", format="text", file=None)
    assert (settings.reports_dir, settings.lock_stale_seconds) == (tmp_path / "reports", 300.0)
    source = settings.sources[0]
    assert (source.after, source.settle_seconds) == ("move", 0.0)


def test_every_setting_is_read(tmp_path: Path) -> None:
    text = MINIMAL + ('after = "keep"\nsettle_seconds = 30\n'
                      '[run]\nreports_dir = "out/reports"\nlock_stale_seconds = 900\n'
                      '[schedule]\ninterval_minutes = 15\ntimezone = "Europe/Berlin"\nmisfire_grace_seconds = 600\n'
                      '[logging]\nlevel = "info"\nformat = "json"\nfile = "logs/capi.log"\n')
    settings = load_settings(write(tmp_path, text), environ={})
    assert settings.schedule == ScheduleSettings(cron=None, interval_minutes=15.0, timezone="Europe/Berlin",
                                                 misfire_grace_seconds=600)
    assert settings.logging == LoggingSettings(level="INFO", format="json", file=tmp_path / "logs" / "capi.log")
    assert (settings.reports_dir, settings.lock_stale_seconds) == (tmp_path / "out" / "reports", 900.0)
    assert (settings.sources[0].after, settings.sources[0].settle_seconds) == ("keep", 30.0)
    cron = load_settings(write(tmp_path, MINIMAL + '[schedule]\ncron = "*/5 * * * *"\n'), environ={})
    assert (cron.schedule.cron, cron.schedule.interval_minutes) == ("*/5 * * * *", None)


def test_every_operations_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = MINIMAL + ('after = "delete"\nsettle_seconds = -1\n'
                      '[run]\nlock_stale_seconds = 0\n'
                      '[schedule]\ncron = "every night"\ntimezone = "Mars/Base"\nmisfire_grace_seconds = 0\n'
                      'when = "always"\n'
                      '[logging]\nlevel = "loud"\nformat = "xml"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ={})
    problems = caught.value.problems
    expected = [
        "sources[0].after: 'delete' must be \"move\" (to processed/) or \"keep\" (leave the file)",
        "sources[0].settle_seconds: must be a number of seconds, 0 or more",
        "schedule.when: unknown setting (known: cron, interval_minutes, misfire_grace_seconds, timezone)",
        "schedule.timezone: 'Mars/Base' is not a time zone name such as \"Europe/Berlin\"",
        "schedule.cron: 'every night' is not a crontab expression such as \"15 2 * * *\"",
        "schedule.misfire_grace_seconds: must be a whole number at least 1",
        "logging.level: 'loud' is not one of debug, info, warning, error",
        "logging.format: 'xml' must be \"text\" or \"json\"",
        "run.lock_stale_seconds: must be a number of seconds above 0",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)
    assert len(problems) == len(expected)


def test_cron_and_interval_together_or_a_bad_interval_are_refused(tmp_path: Path) -> None:
    both = MINIMAL + '[schedule]\ncron = "15 2 * * *"\ninterval_minutes = 10\n'
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, both), environ={})
    assert caught.value.problems == ["schedule: set either cron or interval_minutes, not both"]
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, MINIMAL + "[schedule]\ninterval_minutes = 0\n"), environ={})
    assert caught.value.problems == ["schedule.interval_minutes: must be a number of minutes above 0"]
