"""Every error the uploader raises, grouped by what the caller should do about it.

| class                 | what the caller does                                   | exit code |
|-----------------------|--------------------------------------------------------|-----------|
| ConfigError           | stop before anything runs; the operator fixes a setting | 2         |
| CredentialsError      | stop sending at once; new token or dataset access      | 2         |
| EndpointUnreachable   | stop; nothing was sent, events stay pending            | 2         |
| SourceError           | skip that file or source, go on with the others        | 1         |
| FileNotSettled        | leave the file for the next run (still being written)  | -         |
| FileNotMoved          | name it in the summary: done, but processed/ refused it | 1         |
| RunLocked             | do nothing, exit at once: another run holds the lock    | 3         |

Refused rows are not exceptions: they are data (see ``uploader.validation``),
because one bad row must never stop the others. Likewise a batch Meta did not take
is an answer, not an exception: ``uploader.delivery.classify`` says whether to retry,
stop (raising CredentialsError) or isolate a bad event.
"""

from __future__ import annotations


class UploaderError(Exception):
    """Root of every error the uploader raises on purpose."""

    exit_code: int = 1


class ConfigError(UploaderError):
    """The configuration or environment is wrong; nothing has been done yet.

    Carries every problem found, each already phrased as ``setting: what is wrong``.
    """

    exit_code = 2

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class StopRun(UploaderError):
    """The run cannot go on; the message tells the operator what to do."""

    exit_code = 2


class CredentialsError(StopRun):
    """Meta refused the token or the dataset (Graph codes 190, 102, 10, 200-299)."""


class EndpointUnreachable(StopRun):
    """The Graph endpoint could not be reached at all."""


class SourceError(UploaderError):
    """A source or one of its files cannot be read; the others go on."""


class FileNotSettled(SourceError):
    """A file is still being written (its size or time changed, or changed too recently).

    Not a failure: the file is left where it is and read by a later run.
    """


class FileNotMoved(SourceError):
    """A file was read and recorded, but could not be moved to processed/ (the folder is read-only,
    say). Nothing is lost or sent twice: the ledger knows the file. Each run names it until it is fixed.
    """


class RunLocked(UploaderError):
    """Another run (cron, the scheduler, a backfill) holds the ledger's run lock.

    Nothing was read or sent; the caller exits at once and the next run tries again.
    """

    exit_code = 3
