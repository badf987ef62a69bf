"""Logging for every command: a level, text or JSON lines, and redaction everywhere.

The redaction filter sits on the handler, so it sees every record that is
written, the uploader's and the libraries' alike (APScheduler, httpx,
SQLAlchemy), message, arguments and traceback. It replaces the access token and
anything that looks like an email address or a phone number.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

EMAIL = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+")
# Candidates only; _phone() decides. Digits with spaces, dots, dashes or parentheses between them.
PHONE_CANDIDATE = re.compile(r"(?<![\w.:/-])\+?\(?\d[\d ().-]{5,}\d(?![\w:/])")
TOKEN_FIELD = re.compile(r"(access_token[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,}]+")
NOT_PHONES = (
    re.compile(r"\d{4}-\d{2}-\d{2}.*"),        # dates (and a date followed by an hour)
    re.compile(r"\d{1,3}(?:\.\d{1,3}){3}"),    # IPv4 addresses
    re.compile(r"\d+(?:\.\d+)?"),              # plain numbers: counts, ids, timestamps, durations
)


class Redactor:
    """Replaces secrets, email addresses and phone numbers in a text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[token]")
        text = TOKEN_FIELD.sub(r"\1[token]", text)
        text = EMAIL.sub("[email]", text)
        return PHONE_CANDIDATE.sub(_phone, text)


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(ch.isdigit() for ch in text)
    if not 7 <= digits <= 15 or any(p.fullmatch(text) for p in NOT_PHONES):
        return text
    return "[phone]"


class RedactingFilter(logging.Filter):
    """Rewrites each record's message and traceback through a :class:`Redactor`."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now, so a progress display that redirects it
    keeps log lines above the bar."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure_logging(level: str = "WARNING", fmt: str = "text", secrets: Iterable[str] = (),
                      file: Path | None = None) -> logging.Handler:
    """Send every log record through redaction to stderr (or ``file``), as text or JSON lines.

    Replaces the handler a previous call installed, so the CLI can configure early
    (from its flags) and again once the configuration file is read.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "capi_uploader", False)]:
        root.removeHandler(old)
        old.close()
    handler: logging.Handler
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.WatchedFileHandler(file, encoding="utf-8")  # logrotate-friendly
    else:
        handler = _StderrHandler()
    setattr(handler, "capi_uploader", True)  # marks the handlers a later call replaces
    handler.addFilter(RedactingFilter(Redactor(secrets)))
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    # Their INFO lines repeat what ours say (one per HTTP request); keep them for DEBUG.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    return handler
