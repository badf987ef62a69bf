"""Sources of conversions. ``SOURCE_TYPES`` maps a config ``type`` to its class."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.base import BadLine, RawChunk, Source, SourceState, Unit, Window
from connectors.csv_folder import CsvFolder
from connectors.sql_query import SqlQuery

if TYPE_CHECKING:
    from uploader.settings import SourceSettings

SOURCE_TYPES: dict[str, type] = {"csv": CsvFolder, "sql": SqlQuery}


def open_source(settings: SourceSettings, chunk_size: int, now: float | None = None) -> Source:
    """Build the source a ``[[sources]]`` entry describes (its type was checked on load).
    ``now`` is the run's start: a SQL source reads up to it."""
    return SOURCE_TYPES[settings.type](settings, chunk_size, now=now)


__all__ = ["BadLine", "RawChunk", "Source", "SourceState", "Unit", "Window", "SOURCE_TYPES", "open_source"]
