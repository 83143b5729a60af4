"""Transcription history: the one package that owns the database, a SQLite file or a PostgreSQL server (nothing
else imports sqlite3 or psycopg). ``open_store(db)`` opens either: a path, or a ``postgresql://`` URL.

- ``models``: what it hands out (Record, Page, Interrupted) and how text and times are stored
- ``hashing``: audio content hashes and settings keys (how an earlier result is found)
- ``target``: whether ``--db`` names a file or a PostgreSQL URL
- ``connection``: connections, pragmas, transactions, the busy retry, and HistoryError
- ``postgres``: PostgreSQL connections shaped like SQLite's (placeholders, autocommit, advisory lock keys)
- ``schema`` / ``schema_pg``: the tables and the migrations that bring an older database up to date
- ``records`` / ``jobs``: rows of the records and jobs tables
- ``audio_copies``: the kept copies of the audio (``keep_audio``), named by record id
- ``search``: query parsing and the FTS planner; ``search_pg``: the same search on PostgreSQL (pg_trgm)
- ``export``: JSON, CSV and zip exports (the zip of transcripts also serves the batch page)
- ``ownership``: which process owns a job or a temporary file, and whether it still runs
- ``heartbeat``: the lease on this process's jobs in a shared PostgreSQL database
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
from .store import DEFAULT_DB, HistoryStore, open_store
from .target import db_target, is_postgres_url

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
    "db_target",
    "grams",
    "is_postgres_url",
    "open_store",
    "settings_key",
    "write_transcripts_zip",
]
