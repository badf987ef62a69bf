"""The ``capi-uploader`` command line: a thin shell around ``run_once`` and the sandbox.

Exit codes: 0 everything delivered and nothing refused; 1 the run finished but rows
were refused or events are undelivered; 2 the run could not start (configuration,
credentials, unreachable endpoint or ledger).
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

import click

from uploader.errors import ConfigError, UploaderError
from uploader.pipeline import requeue_failed, run_once
from uploader.settings import CONFIG_ENV, DEFAULT_CONFIG, Settings, default_config_path, load_settings

CONFIG_HELP = f"Configuration file (default: ${CONFIG_ENV}, else ./{DEFAULT_CONFIG})."


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None, help=CONFIG_HELP)
@click.option("-v", "--verbose", is_flag=True, help="Log each batch and file.")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: bool) -> None:
    """Send offline and CRM conversions to Meta's Conversions API, each exactly once."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = config_path


def _settings(ctx: click.Context) -> Settings:
    return load_settings(ctx.obj or default_config_path())


@cli.command()
@click.pass_context
def run(ctx: click.Context) -> int:
    """One pass: read, map, validate, record, deliver pending events, print a summary."""
    report = run_once(_settings(ctx))
    click.echo(report.render())
    return report.exit_code()


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
    requeued, expired = requeue_failed(settings)
    click.echo(f"capi-uploader retry: {requeued} failed events re-queued"
               + (f", {expired} now too old for Meta and marked expired" if expired else ""))
    report = run_once(replace(settings, sources=()))
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
