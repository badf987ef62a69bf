"""``capi-uploader`` (and ``python -m uploader``): the command line, imported only when it runs.

A mapping worker is a spawned process, and a spawned process first runs the script its parent
was started from, without calling it. The ``capi-uploader`` script imports this module alone,
so a worker does not load what only the command line needs (SQLAlchemy, httpx, rich, click:
about 20 MB of the worker's memory).
"""

from __future__ import annotations


def main() -> None:
    """Run the command line (``uploader.cli.main``)."""
    from uploader.cli import main as run_cli

    run_cli()


if __name__ == "__main__":
    main()
