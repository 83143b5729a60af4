"""Transcription history: the one package that owns the SQLite database (nothing else imports sqlite3).

- ``models``: what it hands out (Record, Page, Interrupted) and how text and times are stored
- ``hashing``: audio content hashes and settings keys (how an earlier result is found)
- ``connection``: connections, pragmas, transactions, the busy retry, and HistoryError
- ``schema``: the tables and the migrations that bring an older file up to date
- ``records`` / ``jobs``: rows of the records and jobs tables
- ``audio_copies``: the kept copies of the audio (``keep_audio``), named by record id
- ``search``: query parsing and the FTS planner
- ``export``: JSON, CSV and zip exports (the zip of transcripts also serves the batch page)
- ``ownership``: which process owns a job or a temporary file, and whether it still runs
- ``maintenance``: statistics, online backups, compaction
- ``store``: HistoryStore, the object the service uses
"""

from __future__ import annotations

from .connection import HistoryError
from .export import EXPORT_FORMATS, write_transcripts_zip
from .hashing import audio_hash, settings_key
from .models import INTERRUPTED_ERROR, STATUSES, Interrupted, Page, Record
from .schema import SCHEMA_VERSION
from .search import MAX_QUERY_CHARS, grams
from .store import DEFAULT_DB, HistoryStore

__all__ = [
    "DEFAULT_DB",
    "EXPORT_FORMATS",
    "INTERRUPTED_ERROR",
    "MAX_QUERY_CHARS",
    "SCHEMA_VERSION",
    "STATUSES",
    "HistoryError",
    "HistoryStore",
    "Interrupted",
    "Page",
    "Record",
    "audio_hash",
    "grams",
    "settings_key",
    "write_transcripts_zip",
]
