"""Sources of conversions. ``SOURCE_TYPES`` maps a config ``type`` to the module and class that read it.

A source's module is imported when a source of its type is opened: a mapping worker process,
which only parses CSV blocks, then never loads SQLAlchemy (15 MB of its memory).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from connectors.base import BadLine, RawChunk, Source, SourceState, Unit, Window

if TYPE_CHECKING:
    from uploader.settings import SourceSettings

SOURCE_TYPES: dict[str, str] = {"csv": "connectors.csv_folder:CsvFolder", "sql": "connectors.sql_query:SqlQuery"}


def source_class(kind: str) -> type:
    """The class reading sources of this ``type``."""
    module, name = SOURCE_TYPES[kind].split(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def open_source(settings: SourceSettings, chunk_size: int, now: float | None = None) -> Source:
    """Build the source a ``[[sources]]`` entry describes (its type was checked on load).
    ``now`` is the run's start: a SQL source reads up to it."""
    return source_class(settings.type)(settings, chunk_size, now=now)  # type: ignore[no-any-return]


__all__ = ["BadLine", "RawChunk", "Source", "SourceState", "Unit", "Window", "SOURCE_TYPES", "open_source",
           "source_class"]
