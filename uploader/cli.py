"""The ``capi-uploader`` command line: a thin shell around ``run_once`` and the sandbox.

Exit codes: 0 everything delivered and nothing refused; 1 the run finished but rows
were refused or events are undelivered; 2 the run could not start (configuration,
credentials, unreachable endpoint or ledger); 3 another run holds the run lock.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import click

from uploader.errors import ConfigError, UploaderError
from uploader.heap import keep_heap_small
from uploader.logs import configure_logging
from uploader.progress import progress_for
from uploader.pipeline import run_once
from uploader.settings import CONFIG_ENV, DEFAULT_CONFIG, Settings, default_config_path, load_settings

CONFIG_HELP = f"Configuration file (default: ${CONFIG_ENV}, else ./{DEFAULT_CONFIG})."


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None, help=CONFIG_HELP)
@click.option("-v", "--verbose", count=True, help="Log each file and batch (-vv: debug).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="Log lines as text or JSON (default: [logging] format, else text).")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: int, log_format: str | None) -> None:
    """Send offline and CRM conversions to Meta's Conversions API, each exactly once."""
    ctx.obj = _Options(config_path, verbose, log_format)
    # Until the configuration is read: the flags, and the token as far as the environment knows it.
    configure_logging(_level("WARNING", verbose), log_format or "text", [os.environ.get("META_ACCESS_TOKEN", "")])


@dataclass(frozen=True)
class _Options:
    config_path: Path | None
    verbose: int
    log_format: str | None


def _level(configured: str, verbose: int) -> str:
    wanted = {0: configured, 1: "INFO"}.get(verbose, "DEBUG")
    order = ["DEBUG", "INFO", "WARNING", "ERROR"]
    return min(configured, wanted, key=order.index)


def _settings(ctx: click.Context) -> Settings:
    options: _Options = ctx.obj
    settings = load_settings(options.config_path or default_config_path())
    token = settings.meta.access_token.reveal() if settings.meta.access_token else ""
    configure_logging(_level(settings.logging.level, options.verbose),
                      options.log_format or settings.logging.format, [token], settings.logging.file)
    return settings


@cli.command()
@click.pass_context
def run(ctx: click.Context) -> int:
    """One pass: read, map, validate, send new events as they are read, then pending ones; print a summary."""
    settings = _settings(ctx)
    with progress_for(sys.stderr) as progress:
        report = run_once(settings, progress=progress)
    click.echo(report.render())
    return report.exit_code()


@cli.command()
@click.option("--since", required=True, help="Start: a date (2026-11-20) or time (2026-11-20T14:30), UTC "
                                             "unless it has an offset.")
@click.option("--until", default=None, help="End, not included; a date includes that whole day (default: now).")
@click.option("--source", "source_name", default=None, help="Only this source (default: all).")
@click.option("--dry-run", is_flag=True, help="Read, map and report; record and send nothing.")
@click.pass_context
def backfill(ctx: click.Context, since: str, until: str | None, source_name: str | None, dry_run: bool) -> int:
    """Re-read a window from the sources and send what the ledger does not hold yet.

    CSV sources re-read the files modified inside the window (processed ones too),
    SQL sources the rows whose cursor column is inside it. Events older than Meta
    accepts are reported as expired, never sent.
    """
    from uploader import backfill as bf

    try:
        window = bf.window(since, until, time.time())
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    settings = bf.only_source(_settings(ctx), source_name)
    with progress_for(sys.stderr) as progress:
        report = run_once(settings, send=not dry_run, window=window, progress=progress)
    click.echo(report.render())
    return report.exit_code()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option("--runs", default=10, show_default=True, type=click.IntRange(1, 1000), help="How many runs to show.")
@click.pass_context
def status(ctx: click.Context, as_json: bool, runs: int) -> int:
    """What the ledger holds, the last runs, cursors, and what needs you.

    Exit code 1 when something needs you: events Meta refused, pending events
    passing Meta's age limit within 24 hours, or a last run that stopped on an error.
    """
    from uploader import status as st

    current = st.gather(_settings(ctx), runs=runs)
    click.echo(json.dumps(current.to_dict(), indent=2, default=str) if as_json else st.render(current))
    return 1 if current.needs_attention() else 0


@cli.command()
@click.option("--now", "run_now", is_flag=True, help="Also run once right away, then on the schedule.")
@click.pass_context
def schedule(ctx: click.Context, run_now: bool) -> int:
    """Stay running and upload on the [schedule] cron (default nightly 02:15) or interval.

    SIGTERM or Ctrl-C stops it after the run in flight; a cron `run` started meanwhile
    exits 3 while the lock is held.
    """
    from uploader.scheduling import run_scheduler

    settings = _settings(ctx)
    return run_scheduler(settings.config_path.resolve(), settings.schedule, run_now=run_now, echo=click.echo)


@cli.command()
@click.pass_context
def validate(ctx: click.Context) -> int:
    """Everything but delivery: summary, quarantine report and one sample payload."""
    report = run_once(_settings(ctx), send=False)
    click.echo(report.render())
    if report.sample_payload:
        click.echo("\nSample event as it would be sent (hashed):")
        click.echo(json.dumps(json.loads(report.sample_payload), indent=2, ensure_ascii=False))
    return report.exit_code()


@cli.command()
@click.pass_context
def retry(ctx: click.Context) -> int:
    """Re-queue events Meta refused (once you fixed the cause) and deliver them now.

    Events that have meanwhile grown too old for Meta are marked expired instead.
    """
    settings = _settings(ctx)
    report = run_once(replace(settings, sources=()), requeue=True)  # re-queued under the run lock
    expired = report.requeue_expired
    click.echo(f"capi-uploader retry: {report.requeued} failed events re-queued"
               + (f", {expired} now too old for Meta and marked expired" if expired else ""))
    click.echo(report.render())
    return report.exit_code()


@cli.command()
@click.option("--dir", "folder", type=click.Path(path_type=Path), default=None,
              help="Where to build the demo (default: a new temporary folder).")
def demo(folder: Path | None) -> int:
    """Build a sample drop folder, start the sandbox, upload to it and show the result."""
    from uploader.demo import run_demo

    return run_demo(folder, echo=click.echo)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8787, show_default=True, type=int)
@click.option("--token", envvar="SANDBOX_TOKEN", default=None, help="Accept only this token (default: any).")
@click.option("--dataset", envvar="SANDBOX_DATASET_ID", default=None, help="Accept only this dataset id.")
@click.option("--delay", type=float, default=0.0, help="Answer every events request this many seconds late.")
@click.option("--reject-lead-id", "reject_lead_ids", multiple=True,
              help="Refuse batches carrying this lead_id, as Meta does for an unknown lead (repeatable).")
def sandbox(host: str, port: int, token: str | None, dataset: str | None, delay: float,
            reject_lead_ids: tuple[str, ...]) -> int:
    """Run the sandbox Graph API: answers like Meta, over plain HTTP on this machine.

    More fault modes (bursts of HTTP 500, throttling, dropped connections) can be
    switched on while it runs: POST /_sandbox/faults.
    """
    from uploader.sandbox.server import serve_forever

    faults = {"delay_seconds": delay, "reject_lead_ids": list(reject_lead_ids)}
    serve_forever(host, port, token, dataset, faults)
    return 0


def main(argv: list[str] | None = None) -> None:
    """Console entry point: known problems print one line each, never a traceback."""
    if argv is None:  # the console script (not a test calling in): imports stay until the process ends,
        gc.freeze()   # and full garbage collections need not walk them each time (a tenth of a run's CPU)
        keep_heap_small()
    try:
        code = cli.main(args=argv, prog_name="capi-uploader", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("capi-uploader: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"capi-uploader: config error: {problem}", err=True)
        sys.exit(exc.exit_code)
    except UploaderError as exc:
        click.echo(f"capi-uploader: {exc}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
