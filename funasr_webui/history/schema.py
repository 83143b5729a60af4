"""The database's tables and how a file of any older schema version is brought up to this one.

Layout (schema version 7):
- ``records``: one small row per transcription (metadata, status, error and its code). Kept lean so filter scans,
  counts and stats never touch the large text columns. Status is ``done``, ``failed`` or ``interrupted``.
  ``source`` says where the audio came from (a page upload's file name, 'microphone', 'api', 'websocket'…),
  ``name`` what the user calls it (the upload's file name, a FunASR client's wav_name, an ingested file's
  relative path); '' for rows older than version 7, shown as their source.
- ``bodies``: the large columns (final text, raw text, segments JSON, and ``grams``), 1:1 with records.
  A segment is stored as ``[start, end, text]``, or ``[start, end, text, extras]`` when it has a speaker, tags or
  word times (``Segment.to_stored``); older rows need no migration.
- ``fts_text``: FTS5 trigram index over ``bodies.text`` (substring search for queries of 3+ characters).
- ``fts_grams``: FTS5 unicode61 index over ``bodies.grams``, a stored column holding every distinct
  character and every distinct pair of adjacent characters of each alphanumeric run of the text.
  A 2-character query is one token match, a 1-character query too (the trigram index cannot answer
  those). Both FTS tables use external content and are kept in sync by triggers on ``bodies``.
- ``jobs``: transcriptions in progress, one row each from the moment the audio has decoded until its record
  is written (the job row is deleted in the record's own transaction). A job whose owner process is gone
  (killed, crashed, power cut) becomes an ``interrupted`` record the next time a store opens the file.
  Records never hold a half-done transcription, so searches, lists, stats and exports need no extra filter.
- ``speakers``: the display names users gave the speakers of a record ("S1" -> "张经理"); a speaker without a row
  has its default name (发言人1 / Speaker 1). Indexed by name for the History search's speaker filter.
- ``qa_rules``, ``qa_hits``, ``qa_checked``, ``qa_settings``: quality rules, what they found on each record
  (deleted with it), which records were checked and when, and the QA switches (see qa.py).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

from .connection import retry_busy, write
from .search import grams

log = logging.getLogger(__name__)

SCHEMA_VERSION = 7

# Each migration takes the schema from version i to i + 1 inside one transaction. Append only;
# never edit a released one, never drop user data.

_V1 = [
    """CREATE TABLE records (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, so audio copies named by id stay unique
        created_at TEXT NOT NULL,              -- UTC 'YYYY-MM-DDTHH:MM:SS.ffffffZ', non-decreasing with id
        status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
        source TEXT NOT NULL,                  -- file name, 'microphone' or 'api'; never used as a path
        audio_hash TEXT NOT NULL,              -- sha256 of the audio content
        settings_key TEXT NOT NULL,
        duration REAL NOT NULL DEFAULT 0,
        elapsed REAL NOT NULL DEFAULT 0,
        rtf REAL NOT NULL DEFAULT 0,
        engine TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '',
        device TEXT NOT NULL DEFAULT '',
        language TEXT NOT NULL DEFAULT '',
        hotwords TEXT NOT NULL DEFAULT '[]',   -- JSON list of strings
        itn INTEGER NOT NULL DEFAULT 1,
        error TEXT NOT NULL DEFAULT '',
        audio_file TEXT                        -- name inside the audio folder, NULL when not kept
    )""",
    """CREATE TABLE bodies (
        id INTEGER PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
        text TEXT NOT NULL DEFAULT '',
        raw_text TEXT NOT NULL DEFAULT '',
        segments TEXT NOT NULL DEFAULT '[]'    -- JSON [[start, end, text], ...]
    )""",
    "CREATE INDEX records_created ON records(created_at)",
    "CREATE INDEX records_engine ON records(engine)",
    "CREATE INDEX records_source ON records(source)",
    "CREATE INDEX records_status ON records(status, id, duration)",  # newest first by status; covers stats()
    "CREATE INDEX records_hash ON records(audio_hash, settings_key)",
]

_V2_FTS = [
    # Trigram: substring match for 3+ characters, works for CJK. detail=full is needed for phrases.
    """CREATE VIRTUAL TABLE fts_text USING fts5(
        text, tokenize='trigram', content='bodies', content_rowid='id', columnsize=0)""",
    # Grams: each token is one or two characters; only token membership is needed, so detail=none.
    """CREATE VIRTUAL TABLE fts_grams USING fts5(
        grams, tokenize='unicode61 remove_diacritics 0', content='bodies', content_rowid='id',
        detail='none', columnsize=0)""",
    "INSERT INTO fts_text(fts_text) VALUES ('rebuild')",
    "INSERT INTO fts_grams(fts_grams) VALUES ('rebuild')",
    """CREATE TRIGGER bodies_ai AFTER INSERT ON bodies BEGIN
        INSERT INTO fts_text(rowid, text) VALUES (new.id, new.text);
        INSERT INTO fts_grams(rowid, grams) VALUES (new.id, new.grams);
    END""",
    """CREATE TRIGGER bodies_ad AFTER DELETE ON bodies BEGIN
        INSERT INTO fts_text(fts_text, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO fts_grams(fts_grams, rowid, grams) VALUES ('delete', old.id, old.grams);
    END""",
    """CREATE TRIGGER bodies_au AFTER UPDATE OF text, grams ON bodies BEGIN
        INSERT INTO fts_text(fts_text, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO fts_grams(fts_grams, rowid, grams) VALUES ('delete', old.id, old.grams);
        INSERT INTO fts_text(rowid, text) VALUES (new.id, new.text);
        INSERT INTO fts_grams(rowid, grams) VALUES (new.id, new.grams);
    END""",
]


def _migrate_1(conn: sqlite3.Connection) -> None:
    for sql in _V1:
        conn.execute(sql)


def _migrate_2(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE bodies ADD COLUMN grams TEXT NOT NULL DEFAULT ''")
    last = 0
    while True:  # backfill grams in Python, before the triggers exist
        rows = conn.execute("SELECT id, text FROM bodies WHERE id > ? ORDER BY id LIMIT 1000", (last,)).fetchall()
        if not rows:
            break
        conn.executemany("UPDATE bodies SET grams = ? WHERE id = ?", [(grams(t), i) for i, t in rows])
        last = rows[-1][0]
    for sql in _V2_FTS:
        conn.execute(sql)


_V3_RECORDS = """CREATE TABLE records_v3 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, so audio copies named by id stay unique
    created_at TEXT NOT NULL,              -- UTC 'YYYY-MM-DDTHH:MM:SS.ffffffZ', non-decreasing with id
    status TEXT NOT NULL CHECK (status IN ('done', 'failed', 'interrupted')),
    source TEXT NOT NULL,                  -- file name, 'microphone' or 'api'; never used as a path
    audio_hash TEXT NOT NULL,              -- sha256 of the audio content
    settings_key TEXT NOT NULL,
    duration REAL NOT NULL DEFAULT 0,
    elapsed REAL NOT NULL DEFAULT 0,
    rtf REAL NOT NULL DEFAULT 0,
    engine TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    device TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT '',
    hotwords TEXT NOT NULL DEFAULT '[]',   -- JSON list of strings
    itn INTEGER NOT NULL DEFAULT 1,
    error TEXT NOT NULL DEFAULT '',
    audio_file TEXT                        -- name inside the audio folder, NULL when not kept
)"""
_V3_RECORD_COLUMNS = (
    "id, created_at, status, source, audio_hash, settings_key, duration, elapsed, rtf,"
    " engine, model, device, language, hotwords, itn, error, audio_file"
)
_V3_INDEXES = [
    "CREATE INDEX records_created ON records(created_at)",
    "CREATE INDEX records_engine ON records(engine)",
    "CREATE INDEX records_source ON records(source)",
    "CREATE INDEX records_status ON records(status, id, duration)",
    "CREATE INDEX records_hash ON records(audio_hash, settings_key)",
]
_V3_JOBS = """CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a job id always means the same transcription
    started_at TEXT NOT NULL,              -- UTC, as records.created_at
    owner_pid INTEGER NOT NULL,            -- the process transcribing
    owner_token TEXT NOT NULL,             -- boot id + that process's start time: a reused pid is not the owner
    source TEXT NOT NULL,                  -- the record's source to be
    name TEXT NOT NULL DEFAULT '',         -- the file's own name (an API upload's source is just 'api')
    audio_hash TEXT NOT NULL,
    settings_key TEXT NOT NULL,
    duration REAL NOT NULL DEFAULT 0,
    engine TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    device TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT '',
    hotwords TEXT NOT NULL DEFAULT '[]',
    itn INTEGER NOT NULL DEFAULT 1
)"""


def _migrate_3(conn: sqlite3.Connection) -> None:
    """Status 'interrupted' and the jobs table.

    SQLite cannot change a CHECK constraint, so ``records`` is rebuilt (SQLite's documented recipe: new table,
    copy, drop, rename), inside the migration's transaction with foreign keys off (see init) so that the
    drop does not cascade to ``bodies``. Ids and the AUTOINCREMENT counter are kept; ``bodies``, both FTS
    indexes and their triggers hang on ``bodies`` and are not touched.
    """
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
    conn.execute(_V3_RECORDS)
    conn.execute(f"INSERT INTO records_v3 ({_V3_RECORD_COLUMNS}) SELECT {_V3_RECORD_COLUMNS} FROM records")
    conn.execute("DROP TABLE records")  # its indexes go with it
    conn.execute("ALTER TABLE records_v3 RENAME TO records")
    for sql in _V3_INDEXES:
        conn.execute(sql)
    # The counter as it was (a deleted newest record's id stays used), never below the largest id.
    top = max(row[0] if row else 0, conn.execute("SELECT coalesce(max(id), 0) FROM records").fetchone()[0])
    conn.execute("DELETE FROM sqlite_sequence WHERE name = 'records'")
    if top:
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('records', ?)", (top,))
    conn.execute(_V3_JOBS)


def _migrate_4(conn: sqlite3.Connection) -> None:
    """The code of a failure (e.g. "too_long", "engine_error"), so it can be shown in the reader's language
    without matching its English text. NULL for older records: their code is not known."""
    conn.execute("ALTER TABLE records ADD COLUMN error_code TEXT")


_V5_SPEAKERS = [
    """CREATE TABLE speakers (
        record_id INTEGER NOT NULL REFERENCES records(id) ON DELETE CASCADE,
        label TEXT NOT NULL,                   -- the voice as the record's segments name it: 'S1', 'S2', ...
        name TEXT NOT NULL,                    -- the display name a user gave it
        PRIMARY KEY (record_id, label)
    ) WITHOUT ROWID""",
    "CREATE INDEX speakers_name ON speakers(name COLLATE NOCASE, record_id)",
]


_V6_QA = [
    """CREATE TABLE qa_rules (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('forbidden', 'required')),
        phrases TEXT NOT NULL,                 -- JSON list of strings
        window_from REAL,                      -- within_s; NULL: the whole call
        window_to REAL,
        speaker INTEGER,                       -- speaker position (1 = first voice); NULL: anyone
        enabled INTEGER NOT NULL DEFAULT 1,
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE qa_hits (
        id INTEGER PRIMARY KEY,
        record_id INTEGER NOT NULL REFERENCES records(id) ON DELETE CASCADE,
        rule_id INTEGER,                       -- no foreign key: a deleted rule's hits stay until re-checked
        rule TEXT NOT NULL,                    -- the rule's name when checked
        kind TEXT NOT NULL,                    -- 'forbidden' (a phrase said) or 'missing' (a required one not said)
        phrase TEXT NOT NULL DEFAULT '',
        start_s REAL,
        end_s REAL,
        text TEXT NOT NULL DEFAULT '',         -- the sentence
        segment INTEGER,                       -- its index in the record's segments
        speaker TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX qa_hits_record ON qa_hits(record_id)",
    "CREATE INDEX qa_hits_rule ON qa_hits(rule, record_id)",
    """CREATE TABLE qa_checked (
        record_id INTEGER PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
        checked_at TEXT NOT NULL,
        hits INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE TABLE qa_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
]


def _migrate_5(conn: sqlite3.Connection) -> None:
    """Speaker display names per record. Older records have no speakers: nothing to fill in."""
    for sql in _V5_SPEAKERS:
        conn.execute(sql)


def _migrate_6(conn: sqlite3.Connection) -> None:
    """Quality rules and their hits (call-centre checks). New tables only: existing rows are not touched."""
    for sql in _V6_QA:
        conn.execute(sql)


def _migrate_7(conn: sqlite3.Connection) -> None:
    """The name the user calls the audio by, beside its source: an API upload's source is just 'api', a FunASR
    client's 'websocket'. Older rows get '' (everything that shows a name falls back to the source); the index
    serves the History's file-name filter, which matches a name or a source."""
    conn.execute("ALTER TABLE records ADD COLUMN name TEXT NOT NULL DEFAULT ''")
    conn.execute("CREATE INDEX records_name ON records(name)")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _migrate_1,
    _migrate_2,
    _migrate_3,
    _migrate_4,
    _migrate_5,
    _migrate_6,
    _migrate_7,
]
assert len(MIGRATIONS) == SCHEMA_VERSION


def init(conn: sqlite3.Connection, db_path: Path) -> None:
    """Put the file in WAL mode and bring its schema up to SCHEMA_VERSION (one transaction for all steps)."""
    # Switching to WAL needs a moment of exclusive access; wait for it.
    mode = retry_busy(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
    if mode.lower() != "wal":
        log.warning("history database %s is in %s mode, not WAL", db_path, mode)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise RuntimeError(f"{db_path} has schema version {version}, newer than this program ({SCHEMA_VERSION})")
    if version == SCHEMA_VERSION:
        return
    # Foreign keys off while migrating: a table rebuild drops a parent table, which must not cascade.
    # The pragma is a no-op inside a transaction, so it is set around it, and checked before commit.
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        with write(conn):
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have won
            for v in range(version, SCHEMA_VERSION):
                log.info("migrating history database %s to schema version %d", db_path, v + 1)
                MIGRATIONS[v](conn)
                conn.execute(f"PRAGMA user_version = {v + 1}")
            if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
                raise RuntimeError(f"migrating {db_path} broke a foreign key; nothing was changed")
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
