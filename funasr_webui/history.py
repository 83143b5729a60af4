"""Transcription history: the one module that owns the SQLite database (nothing else writes SQL).

Layout (schema version 3, see MIGRATIONS):
- ``records``: one small row per transcription (metadata, status, error). Kept lean so filter scans,
  counts and stats never touch the large text columns. Status is ``done``, ``failed`` or ``interrupted``.
- ``bodies``: the large columns (final text, raw text, segments JSON, and ``grams``), 1:1 with records.
- ``fts_text``: FTS5 trigram index over ``bodies.text`` (substring search for queries of 3+ characters).
- ``fts_grams``: FTS5 unicode61 index over ``bodies.grams``, a stored column holding every distinct
  character and every distinct pair of adjacent characters of each alphanumeric run of the text.
  A 2-character query is one token match, a 1-character query too (the trigram index cannot answer
  those). Both FTS tables use external content and are kept in sync by triggers on ``bodies``.
- ``jobs``: transcriptions in progress, one row each from the moment the audio has decoded until its record
  is written (the job row is deleted in the record's own transaction). A job whose owner process is gone
  (killed, crashed, power cut) becomes an ``interrupted`` record the next time a store opens the file.
  Records never hold a half-done transcription, so searches, lists, stats and exports need no extra filter.

Search: a query is split on whitespace ("double quotes" keep a phrase together); every term must
match. Terms of 3+ characters go to the trigram index as FTS5 phrases, shorter ones to the grams index;
user text is always quoted, so FTS5 syntax in a query is plain text. Each condition (trigram phrases,
grams, engine/source/status filters) is a source of ids; the sparsest one is read newest first in
chunks and the others are checked per chunk. Counting stops at COUNT_CAP matches (Page.total_exact).

Times: ``created_at`` is stored as UTC ISO-8601 text (``2024-05-01T12:34:56.789012Z``) and returned as an
aware UTC ``datetime``. It never decreases with ``id`` (``add`` clamps it to the previous record's
time), so newest-first is ``id DESC`` and a date range is also an id range, which FTS5 can seek to.
Naive datetimes and plain dates given as filters are read as local time; a plain ``date_to`` includes
that whole day.

Concurrency: one connection per thread (and per process: connections inherited through fork are
dropped, never closed). WAL mode, a 30 s busy timeout, and every write in ``BEGIN IMMEDIATE`` (retried
while the database is busy), so writers queue instead of failing with "database is locked".
A job names its owner by pid and a token (boot id + the process's start time from /proc), so a job of
another live process sharing the file is never taken for an interrupted one, even once a pid is reused.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO

from .transcript import Segment, Transcript
from .writers import FORMATS, render

log = logging.getLogger(__name__)

DEFAULT_DB = Path(__file__).resolve().parent.parent / "history.db"
SCHEMA_VERSION = 3
STATUSES = ("done", "failed", "interrupted")
INTERRUPTED_ERROR = "interrupted: the server stopped before this transcription finished"
BUSY_TIMEOUT_S = 30.0
COUNT_CAP = 1000  # search counts matches up to this many; Page.total_exact says whether it was reached
PROBE_ROWS = 2000  # ids read per step of a search (see HistoryStore._select)
SPARSE_SPAN = 200  # ids this far apart on average are checked one by one in FTS5
MAX_QUERY_CHARS = 256
MAX_SOURCE_CHARS = 1000
MAX_ERROR_CHARS = 20000
EXPORT_FORMATS = ("json", "csv", "zip-srt", "zip-txt", "zip-vtt", "zip-json")
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_CHUNK = 500  # ids per statement; far below SQLite's variable limit

# Alphanumeric runs: Unicode letters and digits (CJK included), no underscore.
_RUN_RE = re.compile(r"[^\W_]+")
_BIGRAM_RE = re.compile(r"(?=([^\W_]{2}))")  # every overlapping pair of alphanumeric characters
# Query terms: a "double quoted phrase" or a whitespace-free word.
_TERM_RE = re.compile(r'"([^"]+)"|(\S+)')
_SUFFIX_RE = re.compile(r"\.[a-z0-9]{1,8}")


# --------------------------------------------------------------------------- helpers


def audio_hash(path_or_bytes: str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO) -> str:
    """SHA-256 hex digest of the audio content; files are streamed in 1 MiB blocks."""
    h = hashlib.sha256()
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        h.update(path_or_bytes)
    elif hasattr(path_or_bytes, "read"):
        for block in iter(lambda: path_or_bytes.read(1 << 20), b""):  # type: ignore[union-attr]
            h.update(block)
    else:
        with open(path_or_bytes, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _hotword_list(hotwords: str | Iterable[str] | None) -> list[str]:
    """Hotwords as a clean list; a single string is split on whitespace (FunASR's own convention)."""
    if not hotwords:
        return []
    items = hotwords.split() if isinstance(hotwords, str) else hotwords
    return [_clean(str(w)).strip() for w in items if str(w).strip()]


def settings_key(engine: str, model: str, hotwords: str | Iterable[str] | None, itn: bool, language: str) -> str:
    """Stable key of the settings that change a result. Hotword order and the device do not count."""
    canon = [
        (engine or "").strip(),
        (model or "").strip(),
        sorted(set(_hotword_list(hotwords))),
        bool(itn),
        (language or "").strip().lower(),
    ]
    blob = json.dumps(canon, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def _clean(s: str) -> str:
    """Text SQLite can store: lone surrogates (e.g. undecodable file names) become U+FFFD."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        pass
    try:  # bytes smuggled in by surrogateescape (os.fsdecode of a non-UTF-8 name): one U+FFFD each
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def grams(text: str) -> str:
    """The ``bodies.grams`` value: distinct 1- and 2-character tokens of each alphanumeric run."""
    low = text.lower()
    seen = set(_BIGRAM_RE.findall(low))
    seen.update(c for c in set(low) if c.isalnum())
    return " ".join(sorted(seen))


def _fts_phrase(s: str) -> str:
    """A user string as one FTS5 phrase: inside double quotes nothing is syntax, '"' is doubled."""
    return '"' + s.replace('"', '""') + '"'


def _parse_query(q: str) -> tuple[list[str], list[str]] | None:
    """Split a query into trigram phrases (terms of 3+ characters) and gram tokens (1-2 characters).

    All terms must match (AND). Returns ([], []) for an empty query and None when the query has
    terms but none is searchable (e.g. only "*" or "-"), which matches nothing.
    """
    q = _clean(q).replace("\x00", " ")[:MAX_QUERY_CHARS]
    phrases: list[str] = []
    tokens: list[str] = []
    seen_any = False
    for quoted, bare in _TERM_RE.findall(q):
        term = (quoted or bare).strip()
        if not term:
            continue
        seen_any = True
        if len(term) >= 3:
            if term not in phrases:
                phrases.append(term)
            continue
        for run in _RUN_RE.findall(term.lower()):  # 1-2 characters: one gram per run
            if run not in tokens:
                tokens.append(run)
    if seen_any and not phrases and not tokens:
        return None
    return phrases, tokens


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _ts(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime(_TS_FORMAT)


def _fromiso(s: str) -> datetime:
    return datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith("Z") else s)  # Python 3.10 rejects "Z"


def _parse_ts(s: str) -> datetime:
    dt = _fromiso(s)
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def _bound(value: datetime | date | str | None, *, end: bool) -> str | None:
    """A date filter as a stored timestamp: inclusive lower bound, or exclusive upper bound if ``end``."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        value = date.fromisoformat(text) if len(text) == 10 else _fromiso(text)
    if isinstance(value, datetime):
        dt = value.astimezone() if value.tzinfo is None else value  # naive = local time
        if end:
            dt += timedelta(microseconds=1)
    else:
        dt = datetime(value.year, value.month, value.day).astimezone()  # local midnight
        if end:
            dt += timedelta(days=1)
    return _ts(dt)


def _is_busy(e: sqlite3.OperationalError) -> bool:
    msg = str(e).lower()
    return "locked" in msg or "busy" in msg


def _proc_start(pid: int) -> str | None:
    """A running process's start time (clock ticks after boot) from /proc; None when it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no such process, or no /proc on this system
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # the command name, in parentheses, may hold anything
    if len(fields) < 20 or fields[0] in ("Z", "X"):  # a zombie has finished; only its parent has not noticed
        return None
    return fields[19]


_BOOT_ID: list[str] = []  # read once
_OWNER_TOKENS: dict[int, str] = {}  # pid -> this process's token (a forked child gets its own)


def _boot_id() -> str:
    if not _BOOT_ID:
        try:
            _BOOT_ID.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
        except OSError:
            _BOOT_ID.append("")
    return _BOOT_ID[0]


def _owner() -> tuple[int, str]:
    """This process as a job owner: its pid and a token naming this very process (not a later one with its pid)."""
    pid = os.getpid()
    if pid not in _OWNER_TOKENS:
        start = _proc_start(pid)
        _OWNER_TOKENS[pid] = f"{_boot_id()}/{start}" if start is not None else f"random/{uuid.uuid4().hex}"
    return pid, _OWNER_TOKENS[pid]


def _owner_alive(pid: int, token: str) -> bool:
    """Whether the process that started a job still runs."""
    me, mine = _owner()
    if pid == me:
        return token == mine  # our pid but another token: a process before a restart that reused the pid
    if pid <= 0:
        return False
    if not token.startswith("random/"):
        start = _proc_start(pid)
        return start is not None and token == f"{_boot_id()}/{start}"
    if os.name != "posix":  # no /proc and no harmless signal 0 (Windows): never take another's job for dead
        return True
    try:  # no /proc where it was started (macOS): the pid alone tells
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: a live process of another user
        return True
    return True


def _safe_name(source: str, limit: int = 60) -> str:
    """A file-name-safe rendering of a user-supplied source (for zip entry names only)."""
    base = re.split(r"[\\/]", source)[-1]
    base = re.sub(r"[^\w.\-]+", "_", base).strip("._")
    return base[:limit] or "record"


# --------------------------------------------------------------------------- records


@dataclass
class Record:
    """One stored transcription. ``created_at`` is an aware UTC datetime."""

    id: int
    created_at: datetime
    source: str
    audio_hash: str
    duration: float
    engine: str
    model: str
    device: str
    language: str
    hotwords: list[str]
    itn: bool
    text: str
    raw_text: str
    segments: list[Segment]
    elapsed: float
    rtf: float
    status: str  # "done", "failed" or "interrupted" (its process stopped before it finished)
    error: str
    audio_file: Path | None  # kept copy of the audio, or None
    settings_key: str

    def transcript(self) -> Transcript:
        return Transcript(
            text=self.text,
            raw_text=self.raw_text,
            segments=[Segment(s.start, s.end, s.text) for s in self.segments],
            language=self.language,
            duration=self.duration,
            engine=self.engine,
            model=self.model,
            device=self.device,
            elapsed=self.elapsed,
            hotwords=list(self.hotwords),
            itn=self.itn,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; the audio copy appears by file name only (no local paths in exports)."""
        return {
            "id": self.id,
            "created_at": self.created_at.strftime(_TS_FORMAT),
            "status": self.status,
            "error": self.error,
            "source": self.source,
            "audio_hash": self.audio_hash,
            "duration": self.duration,
            "engine": self.engine,
            "model": self.model,
            "device": self.device,
            "language": self.language,
            "hotwords": list(self.hotwords),
            "itn": self.itn,
            "elapsed": self.elapsed,
            "rtf": self.rtf,
            "settings_key": self.settings_key,
            "audio_file": self.audio_file.name if self.audio_file else None,
            "text": self.text,
            "raw_text": self.raw_text,
            "segments": [{"start": s.start, "end": s.end, "text": s.text} for s in self.segments],
        }


@dataclass
class Interrupted:
    """A transcription a stopped process left unfinished, found when the store opened; now an 'interrupted' record."""

    record_id: int
    source: str
    name: str  # the file's own name: for an API upload (source "api") the name it was uploaded with


@dataclass
class Page:
    """One page of search results, newest first.

    ``total`` is exact when ``total_exact``; otherwise at least that many records match (counting
    stops at COUNT_CAP, or just past the current page, so broad queries stay fast at 1M rows).
    """

    records: list[Record]
    total: int
    limit: int
    offset: int
    total_exact: bool = True

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.records) < self.total


_RECORD_COLS = (
    "r.id, r.created_at, r.status, r.source, r.audio_hash, r.settings_key, r.duration, r.elapsed, r.rtf,"
    " r.engine, r.model, r.device, r.language, r.hotwords, r.itn, r.error, r.audio_file,"
    " b.text, b.raw_text, b.segments"
)
_CSV_COLUMNS = (
    "id",
    "created_at",
    "status",
    "error",
    "source",
    "audio_hash",
    "duration",
    "engine",
    "model",
    "device",
    "language",
    "hotwords",
    "itn",
    "elapsed",
    "rtf",
    "audio_file",
    "text",
    "raw_text",
    "segments",
)


# --------------------------------------------------------------------------- schema

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
    copy, drop, rename), inside the migration's transaction with foreign keys off (see _init_db) so that the
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


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_1, _migrate_2, _migrate_3]
assert len(MIGRATIONS) == SCHEMA_VERSION


# --------------------------------------------------------------------------- store


class _Source:
    """One search condition as a source of record ids (see HistoryStore._select)."""

    def page(self, conn: sqlite3.Connection, lo: int, hi: int, n: int) -> list[int]:
        """Up to ``n`` matching ids in [lo, hi], newest first."""
        raise NotImplementedError

    def check(self, conn: sqlite3.Connection, ids: list[int]) -> set[int]:
        """The ids of ``ids`` (sorted newest first) that match."""
        raise NotImplementedError


class _FtsSource(_Source):
    def __init__(self, table: str, match: str):
        self.table, self.match = table, match

    def _run(self, sql: str, conn: sqlite3.Connection, params: list[Any]) -> list[int]:
        try:
            return [r[0] for r in conn.execute(sql, params)]
        except sqlite3.OperationalError as e:
            # A term FTS5 still rejects (a character SQLite's tokenizer splits differently from
            # Python's isalnum) matches nothing rather than failing the search.
            if "fts5" not in str(e).lower():
                raise
            log.info("search term rejected by FTS5: %s", e)
            return []

    def page(self, conn: sqlite3.Connection, lo: int, hi: int, n: int) -> list[int]:
        t = self.table
        sql = f"SELECT rowid FROM {t} WHERE {t} MATCH ? AND rowid BETWEEN ? AND ? ORDER BY rowid DESC LIMIT ?"
        return self._run(sql, conn, [self.match, lo, hi, n])

    def check(self, conn: sqlite3.Connection, ids: list[int]) -> set[int]:
        t, marks = self.table, ",".join("?" * len(ids))
        if ids[0] - ids[-1] > SPARSE_SPAN * len(ids):
            # Few ids spread widely: one FTS5 lookup per id beats reading the doclist over the span.
            sql = f"SELECT rowid FROM {t} WHERE {t} MATCH ? AND rowid IN ({marks})"
            return set(self._run(sql, conn, [self.match, *ids]))
        # Read the doclist over the ids' span once; '+rowid' keeps the IN list out of the FTS5 lookup.
        sql = f"SELECT rowid FROM {t} WHERE {t} MATCH ? AND rowid BETWEEN ? AND ? AND +rowid IN ({marks})"
        return set(self._run(sql, conn, [self.match, ids[-1], ids[0], *ids]))


class _RecordsSource(_Source):
    def __init__(self, where: str, params: list[Any]):
        self.where, self.params = (f" AND {where}" if where else ""), params

    def page(self, conn: sqlite3.Connection, lo: int, hi: int, n: int) -> list[int]:
        sql = f"SELECT id FROM records WHERE id BETWEEN ? AND ?{self.where} ORDER BY id DESC LIMIT ?"
        return [r[0] for r in conn.execute(sql, [lo, hi, *self.params, n])]

    def check(self, conn: sqlite3.Connection, ids: list[int]) -> set[int]:
        sql = f"SELECT id FROM records WHERE id IN ({','.join('?' * len(ids))}){self.where}"
        return {r[0] for r in conn.execute(sql, [*ids, *self.params])}


# What makes a spreadsheet read a cell as a formula or a command (DDE), in ASCII and fullwidth forms.
_FORMULA_STARTS = frozenset("=+-@|\uff1d\uff0b\uff0d\uff20")


def _csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe. Spreadsheets skip leading
    whitespace (a no-break space too) before they look, so the check does as well."""
    if value is None:
        return ""
    if isinstance(value, str) and (value[:1] in ("\t", "\r") or value.lstrip()[:1] in _FORMULA_STARTS):
        return "'" + value
    return value


class HistoryStore:
    """The transcription history database. Safe to share between threads; several processes may open
    the same file."""

    def __init__(self, db_path: str | os.PathLike[str], keep_audio: bool = False, keep_days: float | None = None):
        self.db_path = Path(db_path)
        self.keep_audio = keep_audio
        # "history.db" -> "history_audio/"; named after the database so two databases never share it.
        self.audio_dir = self.db_path.with_name(self.db_path.stem + "_audio")
        self._local = threading.local()
        self._conns: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False
        self._stale_jobs: set[int] = set()  # jobs whose cancel failed (e.g. a full disk); dropped by the next job
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._init_db()
        except BaseException:
            self.close()
            raise
        # Transcriptions a stopped process left unfinished, now 'interrupted' records (for the start-up report).
        self.interrupted: list[Interrupted] = []
        try:
            self.interrupted = self.reap_interrupted()
        except sqlite3.Error as e:  # a read-only or full database still opens; a later open reports them
            log.warning("could not mark interrupted transcriptions in %s: %s", self.db_path, e)
        if keep_days is not None and keep_days > 0:
            self.purge(keep_days)

    # ---- connections and transactions

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )  # autocommit mode: every transaction below is explicit
        for pragma in (
            f"busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}",
            "foreign_keys = ON",
            "synchronous = NORMAL",  # WAL + NORMAL: a killed process loses nothing committed
            "journal_size_limit = 67108864",  # truncate a large WAL back to 64 MiB after checkpoints
            "cache_size = -32768",  # 32 MiB per connection
            "temp_store = MEMORY",
        ):
            conn.execute("PRAGMA " + pragma)
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("HistoryStore is closed")
        if os.getpid() != self._pid:
            # Forked child: the parent's connections must not be used or closed here (closing could
            # checkpoint or delete the parent's WAL); forget them and open fresh ones.
            self._pid = os.getpid()
            self._local = threading.local()
            self._conns = []
            self._lock = threading.Lock()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                alive = []
                for thread, c in self._conns:
                    if thread.is_alive():
                        alive.append((thread, c))
                    else:
                        c.close()  # its thread has ended, nothing else uses it
                alive.append((threading.current_thread(), conn))
                self._conns = alive
        return conn

    def _begin_immediate(self, conn: sqlite3.Connection) -> None:
        # busy_timeout already waits; this loop covers the rare busy errors SQLite returns without
        # calling the busy handler (e.g. during WAL recovery by another process).
        deadline = time.monotonic() + 2 * BUSY_TIMEOUT_S
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as e:
                if not _is_busy(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        self._begin_immediate(conn)
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction, so multi-statement reads see one snapshot."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    def _init_db(self) -> None:
        conn = self._conn()
        deadline = time.monotonic() + 2 * BUSY_TIMEOUT_S
        while True:  # switching to WAL needs a moment of exclusive access; wait for it
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as e:
                if not _is_busy(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        if mode.lower() != "wal":
            log.warning("history database %s is in %s mode, not WAL", self.db_path, mode)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.db_path} has schema version {version}, newer than this program ({SCHEMA_VERSION})"
            )
        if version == SCHEMA_VERSION:
            return
        # Foreign keys off while migrating: a table rebuild drops a parent table, which must not cascade.
        # The pragma is a no-op inside a transaction, so it is set around it, and checked before commit.
        conn.execute("PRAGMA foreign_keys = OFF")
        try:
            with self._write() as conn:
                version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have won
                for v in range(version, SCHEMA_VERSION):
                    log.info("migrating history database %s to schema version %d", self.db_path, v + 1)
                    MIGRATIONS[v](conn)
                    conn.execute(f"PRAGMA user_version = {v + 1}")
                if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
                    raise RuntimeError(f"migrating {self.db_path} broke a foreign key; nothing was changed")
        finally:
            conn.execute("PRAGMA foreign_keys = ON")

    def close(self) -> None:
        with self._lock:
            if os.getpid() == self._pid:
                for _, c in self._conns:
                    c.close()
            self._conns = []
            self._local = threading.local()
            self._closed = True

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- writing

    def _insert(
        self,
        conn: sqlite3.Connection,
        created_floor: list[str],
        *,
        status: str,
        source: str,
        audio_hash: str,
        key: str,
        t: Transcript,
        error: str = "",
        gram_text: str,
        created_at: datetime | None = None,
    ) -> int:
        # Clamp the time so created_at never decreases with id (date ranges become id ranges).
        created = max(_ts(created_at or _utc_now()), created_floor[0])
        created_floor[0] = created
        cur = conn.execute(
            "INSERT INTO records (created_at, status, source, audio_hash, settings_key, duration, elapsed, rtf,"
            " engine, model, device, language, hotwords, itn, error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                created,
                status,
                _clean(source)[:MAX_SOURCE_CHARS],
                audio_hash,
                key,
                float(t.duration),
                float(t.elapsed),
                round(t.rtf, 4),
                _clean(t.engine),
                _clean(t.model),
                _clean(t.device),
                _clean(t.language),
                json.dumps(_hotword_list(t.hotwords), ensure_ascii=False),
                int(bool(t.itn)),
                _clean(error)[:MAX_ERROR_CHARS],
            ),
        )
        rid = int(cur.lastrowid or 0)
        segments = json.dumps(
            [[round(s.start, 3), round(s.end, 3), _clean(s.text)] for s in t.segments],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        conn.execute(
            "INSERT INTO bodies (id, text, raw_text, segments, grams) VALUES (?,?,?,?,?)",
            (rid, _clean(t.text), _clean(t.raw_text), segments, gram_text),
        )
        return rid

    @staticmethod
    def _created_floor(conn: sqlite3.Connection) -> list[str]:
        row = conn.execute("SELECT created_at FROM records ORDER BY id DESC LIMIT 1").fetchone()
        return [row[0] if row else ""]

    def add(
        self,
        transcript: Transcript,
        *,
        source: str,
        audio_hash: str,
        audio_path: str | os.PathLike[str] | None = None,
        settings_key: str | None = None,
        job: int | None = None,
    ) -> int:
        """Save a finished transcription; returns its id. With keep_audio, copies ``audio_path``.

        ``settings_key`` defaults to the key of the transcript's own settings; pass the key of the
        requested settings when they differ (e.g. language "auto" but the transcript says "zh").
        ``job``: the job (see start_job) this record ends, deleted in the same transaction.
        """
        t = transcript
        key = settings_key or _key_of(t)
        gram_text = grams(_clean(t.text))  # CPU work outside the write lock
        with self._write() as conn:
            self._end_job(conn, job)
            rid = self._insert(
                conn,
                self._created_floor(conn),
                status="done",
                source=source,
                audio_hash=audio_hash,
                key=key,
                t=t,
                gram_text=gram_text,
            )
        if self.keep_audio and audio_path is not None:
            self._keep_audio_copy(rid, Path(audio_path))
        return rid

    def add_many(
        self, items: Iterable[tuple[Transcript, str, str] | tuple[Transcript, str, str, datetime]]
    ) -> list[int]:
        """Save many finished transcriptions in one transaction (imports, benchmarks); no audio copies.

        Each item is ``(transcript, source, audio_hash)`` or ``(transcript, source, audio_hash, created_at)``;
        a created_at earlier than the newest record's is raised to it (created_at never decreases with id).
        """
        prepared = [(item, grams(_clean(item[0].text))) for item in items]  # CPU work outside the write lock
        ids = []
        with self._write() as conn:
            floor = self._created_floor(conn)
            for item, gram_text in prepared:
                t, source, ahash = item[0], item[1], item[2]
                created = item[3] if len(item) > 3 else None
                rid = self._insert(
                    conn,
                    floor,
                    status="done",
                    source=source,
                    audio_hash=ahash,
                    key=_key_of(t),
                    t=t,
                    gram_text=gram_text,
                    created_at=created,
                )
                ids.append(rid)
        return ids

    def add_failure(
        self,
        *,
        source: str,
        audio_hash: str,
        error: str,
        engine: str = "",
        model: str = "",
        device: str = "",
        hotwords: str | Iterable[str] = (),
        itn: bool = True,
        language: str = "",
        duration: float = 0.0,
        elapsed: float = 0.0,
        job: int | None = None,
    ) -> int:
        """Save a failed transcription with its error; returns its id. ``job``: as for ``add``."""
        t = Transcript(
            text="",
            raw_text="",
            language=language,
            duration=duration,
            engine=engine,
            model=model,
            device=device,
            elapsed=elapsed,
            hotwords=_hotword_list(hotwords),
            itn=itn,
        )
        with self._write() as conn:
            self._end_job(conn, job)
            return self._insert(
                conn,
                self._created_floor(conn),
                status="failed",
                source=source,
                audio_hash=audio_hash,
                key=_key_of(t),
                t=t,
                error=error,
                gram_text="",
            )

    # ---- jobs: transcriptions in progress

    def start_job(
        self,
        *,
        source: str,
        audio_hash: str,
        settings_key: str,
        name: str = "",
        engine: str = "",
        model: str = "",
        device: str = "",
        hotwords: str | Iterable[str] = (),
        itn: bool = True,
        language: str = "",
        duration: float = 0.0,
    ) -> int:
        """Note a transcription that has begun; returns its job id. ``name``: the file's name when the
        source is not (an API upload), so that a report of it can name the file.

        ``add``/``add_failure`` with ``job=`` turn it into its record; ``cancel_job`` drops it. A job left
        behind by a process that died becomes an 'interrupted' record when a store next opens the file.
        """
        pid, token = _owner()
        stale = sorted(self._stale_jobs)
        with self._write() as conn:
            for job in stale:
                self._end_job(conn, job)
            cur = conn.execute(
                "INSERT INTO jobs (started_at, owner_pid, owner_token, source, name, audio_hash, settings_key,"
                " duration, engine, model, device, language, hotwords, itn) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    _ts(_utc_now()),
                    pid,
                    token,
                    _clean(source)[:MAX_SOURCE_CHARS],
                    _clean(name or source)[:MAX_SOURCE_CHARS],
                    audio_hash,
                    settings_key,
                    float(duration),
                    _clean(engine),
                    _clean(model),
                    _clean(device),
                    _clean(language),
                    json.dumps(_hotword_list(hotwords), ensure_ascii=False),
                    int(bool(itn)),
                ),
            )
        self._stale_jobs.difference_update(stale)
        return int(cur.lastrowid or 0)

    def cancel_job(self, job: int) -> None:
        """Drop a job without a record (input refused, nothing said, or its record could not be saved)."""
        try:
            with self._write() as conn:
                self._end_job(conn, job)
        except sqlite3.Error:
            self._stale_jobs.add(job)  # a job of a live process is never reaped: the next start_job drops it
            raise

    @staticmethod
    def _end_job(conn: sqlite3.Connection, job: int | None) -> None:
        if job is not None:
            conn.execute("DELETE FROM jobs WHERE id = ?", (int(job),))

    def reap_interrupted(self) -> list[Interrupted]:
        """Turn the jobs of processes that are gone into 'interrupted' records; returns what was turned.

        Called when the store opens. Jobs of live processes (this one, or another server or CLI sharing the
        file) are left alone. Writes nothing when there is nothing to reap, so a read-only file still opens.
        """
        with self._read() as conn:
            if all(_owner_alive(pid, token) for pid, token in conn.execute("SELECT owner_pid, owner_token FROM jobs")):
                return []
        found = []
        with self._write() as conn:  # read again under the write lock: another process may have reaped them
            floor = self._created_floor(conn)
            cur = conn.cursor()
            cur.row_factory = sqlite3.Row
            for job in cur.execute("SELECT * FROM jobs ORDER BY id").fetchall():
                if _owner_alive(job["owner_pid"], job["owner_token"]):
                    continue
                t = Transcript(
                    text="",
                    raw_text="",
                    language=job["language"],
                    duration=job["duration"],
                    engine=job["engine"],
                    model=job["model"],
                    device=job["device"],
                    hotwords=json.loads(job["hotwords"] or "[]"),
                    itn=bool(job["itn"]),
                )
                rid = self._insert(
                    conn,
                    floor,
                    status="interrupted",
                    source=job["source"],
                    audio_hash=job["audio_hash"],
                    key=job["settings_key"],
                    t=t,
                    # an upload's own name is kept in the error: its source says only "api"
                    error=INTERRUPTED_ERROR + (f" ({job['name']})" if job["name"] != job["source"] else ""),
                    gram_text="",
                    created_at=_parse_ts(job["started_at"]),
                )
                self._end_job(conn, job["id"])
                found.append(Interrupted(rid, job["source"], job["name"]))
        return found

    def _keep_audio_copy(self, rid: int, src: Path) -> None:
        # Named by id only: the user's file name never becomes part of a path.
        suffix = src.suffix.lower()
        name = f"{rid}{suffix if _SUFFIX_RE.fullmatch(suffix) else '.bin'}"
        tmp = self.audio_dir / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            self.audio_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, tmp)
            os.replace(tmp, self.audio_dir / name)
        except OSError as e:  # the transcript is saved; only the playback copy is missing
            log.warning("could not keep a copy of the audio for record %d: %s", rid, e)
            tmp.unlink(missing_ok=True)
            return
        with self._write() as conn:
            n = conn.execute("UPDATE records SET audio_file = ? WHERE id = ?", (name, rid)).rowcount
        if n == 0:  # deleted meanwhile
            (self.audio_dir / name).unlink(missing_ok=True)

    def _audio_path(self, name: str | None) -> Path | None:
        return self.audio_dir / Path(name).name if name else None

    def delete(self, ids: Iterable[int]) -> int:
        """Delete records (and their audio copies); returns how many existed."""
        id_list = sorted({int(i) for i in ids})
        deleted = 0
        files: list[str] = []
        with self._write() as conn:
            for i in range(0, len(id_list), _CHUNK):
                chunk = id_list[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                files += [
                    r[0]
                    for r in conn.execute(
                        f"SELECT audio_file FROM records WHERE id IN ({marks}) AND audio_file IS NOT NULL", chunk
                    )
                ]
                conn.execute(f"DELETE FROM bodies WHERE id IN ({marks})", chunk)  # triggers update FTS
                deleted += conn.execute(f"DELETE FROM records WHERE id IN ({marks})", chunk).rowcount
        self._unlink_audio(files)
        return deleted

    def _unlink_audio(self, names: Iterable[str]) -> None:
        for name in names:
            path = self._audio_path(name)
            if path is not None:
                try:
                    path.unlink(missing_ok=True)
                except OSError as e:
                    log.warning("could not delete %s: %s", path, e)

    def purge(self, older_than_days: float) -> int:
        """Delete records created more than ``older_than_days`` days ago; returns how many."""
        if older_than_days < 0:
            raise ValueError("older_than_days must be >= 0")
        cutoff = _ts(_utc_now() - timedelta(days=older_than_days))
        total = 0
        while True:  # small transactions: other writers are never blocked for long, the WAL stays small
            with self._read() as conn:
                ids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT id FROM records WHERE created_at < ? ORDER BY created_at LIMIT ?", (cutoff, _CHUNK)
                    )
                ]
            if not ids:
                return total
            total += self.delete(ids)

    def backup(self, target: str | os.PathLike[str]) -> Path:
        """A consistent copy of the database through SQLite's online backup API (safe while others write)."""
        target = Path(target)
        if target.resolve() == self.db_path.resolve():
            raise ValueError("the backup target is the database itself")
        target.parent.mkdir(parents=True, exist_ok=True)
        dest = sqlite3.connect(target)
        try:
            self._conn().backup(dest)
        finally:
            dest.close()
        return target

    def vacuum(self) -> None:
        """Merge FTS segments, rebuild the file compactly, and truncate the WAL."""
        with self._write() as conn:
            conn.execute("INSERT INTO fts_text(fts_text) VALUES ('optimize')")
            conn.execute("INSERT INTO fts_grams(fts_grams) VALUES ('optimize')")
        conn = self._conn()
        deadline = time.monotonic() + 2 * BUSY_TIMEOUT_S
        while True:
            try:
                conn.execute("VACUUM")
                break
            except sqlite3.OperationalError as e:
                if not _is_busy(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # ---- reading

    def _row_to_record(self, row: Sequence[Any]) -> Record:
        (
            rid,
            created,
            status,
            source,
            ahash,
            key,
            duration,
            elapsed,
            rtf,
            engine,
            model,
            device,
            language,
            hotwords,
            itn,
            error,
            audio_file,
            text,
            raw_text,
            segments,
        ) = row
        return Record(
            id=rid,
            created_at=_parse_ts(created),
            source=source,
            audio_hash=ahash,
            duration=duration,
            engine=engine,
            model=model,
            device=device,
            language=language,
            hotwords=json.loads(hotwords or "[]"),
            itn=bool(itn),
            text=text,
            raw_text=raw_text,
            segments=[Segment(float(s), float(e), str(x)) for s, e, x in json.loads(segments or "[]")],
            elapsed=elapsed,
            rtf=rtf,
            status=status,
            error=error,
            audio_file=self._audio_path(audio_file),
            settings_key=key,
        )

    def _fetch(self, conn: sqlite3.Connection, ids: Sequence[int]) -> list[Record]:
        """Records for ``ids``, in the order given."""
        found: dict[int, Record] = {}
        for i in range(0, len(ids), _CHUNK):
            chunk = list(ids[i : i + _CHUNK])
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {_RECORD_COLS} FROM records r JOIN bodies b ON b.id = r.id WHERE r.id IN ({marks})"
            for row in conn.execute(sql, chunk):
                found[row[0]] = self._row_to_record(row)
        return [found[i] for i in ids if i in found]

    def get(self, record_id: int) -> Record | None:
        with self._read() as conn:
            recs = self._fetch(conn, [int(record_id)])
        return recs[0] if recs else None

    def find_previous(self, audio_hash: str, key: str) -> Record | None:
        """The newest successful record of the same audio content with the same settings key."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT id FROM records WHERE audio_hash = ? AND settings_key = ? AND status = 'done'"
                " ORDER BY id DESC LIMIT 1",
                (audio_hash, key),
            ).fetchone()
            return self._fetch(conn, [row[0]])[0] if row else None

    def _id_bounds(self, conn: sqlite3.Connection, date_from: Any, date_to: Any) -> tuple[int, int] | None:
        """The id range of a date range (created_at never decreases with id); None if it is empty."""
        lo_ts, hi_ts = _bound(date_from, end=False), _bound(date_to, end=True)
        lo, hi = 0, 1 << 62
        if lo_ts is not None:
            row = conn.execute(
                "SELECT id FROM records WHERE created_at >= ? ORDER BY created_at, id LIMIT 1", (lo_ts,)
            ).fetchone()
            if row is None:
                return None
            lo = row[0]
        if hi_ts is not None:
            row = conn.execute(
                "SELECT id FROM records WHERE created_at < ? ORDER BY created_at DESC, id DESC LIMIT 1", (hi_ts,)
            ).fetchone()
            if row is None:
                return None
            hi = row[0]
        return (lo, hi) if lo <= hi else None

    def _sources(self, q: str, engine: str | None, source: str | None, status: str | None) -> list[_Source] | None:
        """What a search must satisfy, as independent id sources; None if nothing can match."""
        parsed = _parse_query(q or "")
        if parsed is None:
            return None
        phrases, tokens = parsed
        sources: list[_Source] = []
        if phrases:
            sources.append(_FtsSource("fts_text", " AND ".join(_fts_phrase(p) for p in phrases)))
        if tokens:
            sources.append(_FtsSource("fts_grams", " AND ".join(_fts_phrase(t) for t in tokens)))
        where, params = [], []
        for col, value in (("engine", engine), ("source", source), ("status", status)):
            if value:
                where.append(f"{col} = ?")
                params.append(value)
        if where or not sources:
            sources.append(_RecordsSource(" AND ".join(where), params))
        return sources

    def _select(
        self, conn: sqlite3.Connection, q: str, filters: dict[str, Any], need: int | None, count_cap: int
    ) -> tuple[list[int], int, bool]:
        """Matching ids newest first (the first ``need``, or all when None), a total, and whether the
        total is exact.

        Each condition (trigram phrases, gram tokens, record filters) is a source of ids. The sparsest
        source drives: it is read newest first in chunks of PROBE_ROWS ids, and each chunk is checked
        against the other sources with one query each (FTS5 seeks to the chunk's id range). Reading
        stops once the page is full and ``count_cap`` matches are known, so a broad query costs about
        one chunk even at 1M records.
        """
        sources = self._sources(q, filters.get("engine"), filters.get("source"), filters.get("status"))
        bounds = None if sources is None else self._id_bounds(conn, filters.get("date_from"), filters.get("date_to"))
        if sources is None or bounds is None:
            return [], 0, True
        lo, hi = bounds
        target = None if need is None else max(count_cap, need + 1)
        # One source: read just what the page and the count need. Several: probe each once; the driver
        # has the fewest ids or, for as many, the widest id span (the sparsest).
        step = PROBE_ROWS if len(sources) > 1 or target is None else min(PROBE_ROWS, target)
        probes = [(src, src.page(conn, lo, hi, step)) for src in sources]
        driver, chunk = min(probes, key=lambda p: (len(p[1]), -(p[1][0] - p[1][-1]) if p[1] else 0))
        others = [src for src in sources if src is not driver]
        matches: list[int] = []
        while chunk:
            found = chunk
            for src in others:
                if found:
                    ok = src.check(conn, found)
                    found = [i for i in found if i in ok]
            matches.extend(found)
            if len(chunk) < step or (target is not None and len(matches) >= target):
                break
            chunk = driver.page(conn, lo, chunk[-1] - 1, step)
        exact = len(chunk) < step  # the driver ran out, so every match was seen
        return (matches if need is None else matches[:need]), len(matches), exact

    def search(
        self,
        q: str = "",
        *,
        date_from: datetime | date | str | None = None,
        date_to: datetime | date | str | None = None,
        engine: str | None = None,
        source: str | None = None,
        status: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> Page:
        """Records matching every term of ``q`` and every filter, newest first.

        A term of 3+ characters matches as a case-insensitive substring; a term of 1-2 characters
        matches a character or a pair of adjacent characters within a run of letters/digits (so
        punctuation-only short terms are ignored). "double quotes" group words into one term.
        ``total`` counts up to about COUNT_CAP matches (see Page.total_exact).
        """
        limit = max(1, int(limit))
        offset = max(0, int(offset))
        filters = {"date_from": date_from, "date_to": date_to, "engine": engine, "source": source, "status": status}
        with self._read() as conn:
            ids, total, exact = self._select(conn, q, filters, offset + limit, COUNT_CAP)
            return Page(self._fetch(conn, ids[offset:]), total, limit, offset, exact)

    def search_ids(
        self,
        q: str = "",
        *,
        date_from: datetime | date | str | None = None,
        date_to: datetime | date | str | None = None,
        engine: str | None = None,
        source: str | None = None,
        status: str | None = None,
    ) -> list[int]:
        """Every id matching ``search``'s query and filters, newest first (for the exports)."""
        filters = {"date_from": date_from, "date_to": date_to, "engine": engine, "source": source, "status": status}
        with self._read() as conn:
            return self._select(conn, q, filters, None, 0)[0]

    def _iter_records(self, ids: Iterable[int] | None) -> Iterator[Record]:
        """Records in ascending id order, a chunk at a time (all of them when ``ids`` is None).

        No transaction stays open across a yield, so the consumer may use the store meanwhile.
        """
        id_list = None if ids is None else sorted({int(i) for i in ids})
        last, pos = 0, 0
        while True:
            with self._read() as conn:
                if id_list is None:
                    sql = "SELECT id FROM records WHERE id > ? ORDER BY id LIMIT ?"
                    chunk = [r[0] for r in conn.execute(sql, (last, _CHUNK))]
                else:
                    chunk, pos = id_list[pos : pos + _CHUNK], pos + _CHUNK
                recs = self._fetch(conn, chunk)
            if not chunk:
                return
            yield from recs
            last = chunk[-1]

    # ---- export

    def export_json(self, ids: Iterable[int] | None = None) -> bytes:
        """A JSON array of records (oldest first); ``ids=None`` exports everything."""
        out = io.StringIO()
        out.write("[")
        for n, rec in enumerate(self._iter_records(ids)):
            out.write(",\n" if n else "\n")
            out.write(json.dumps(rec.to_dict(), ensure_ascii=False))
        out.write("\n]\n")
        return out.getvalue().encode("utf-8")

    def export_csv(self, ids: Iterable[int] | None = None) -> bytes:
        """CSV with a header row, UTF-8 with BOM so spreadsheet programs read Chinese correctly."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(_CSV_COLUMNS)
        for rec in self._iter_records(ids):
            d = rec.to_dict()
            d["hotwords"] = " ".join(rec.hotwords)
            d["itn"] = int(rec.itn)
            d["segments"] = json.dumps(d["segments"], ensure_ascii=False)
            writer.writerow([_csv_cell(d[c]) for c in _CSV_COLUMNS])
        return out.getvalue().encode("utf-8-sig")

    def export_zip(self, ids: Iterable[int] | None = None, fmt: str = "srt") -> bytes:
        """A zip with one ``<id>_<source>.<fmt>`` file per successful record."""
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for rec in self._iter_records(ids):
                if rec.status != "done":
                    continue
                stem = Path(_safe_name(rec.source)).stem or "record"
                zf.writestr(f"{rec.id:06d}_{stem}.{fmt}", render(rec.transcript(), fmt))
        return buf.getvalue()

    def export(self, fmt: str, ids: Iterable[int] | None = None) -> bytes:
        """Export by format name: json, csv, zip-srt, zip-txt, zip-vtt, zip-json."""
        if fmt == "json":
            return self.export_json(ids)
        if fmt == "csv":
            return self.export_csv(ids)
        if fmt.startswith("zip-"):
            return self.export_zip(ids, fmt[4:])
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")

    # ---- maintenance

    def stats(self) -> dict[str, Any]:
        """count, done, failed, interrupted, audio_hours, db_bytes (database + WAL), audio_bytes (kept copies).

        Transcriptions still running are jobs, not records: they are not counted."""
        with self._read() as conn:
            by_status = {
                s: (n, d or 0.0)
                for s, n, d in conn.execute("SELECT status, count(*), sum(duration) FROM records GROUP BY status")
            }
            page_count = conn.execute("PRAGMA page_count").fetchone()[0]
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        wal = self.db_path.with_name(self.db_path.name + "-wal")
        audio_bytes = 0
        if self.audio_dir.is_dir():
            audio_bytes = sum(p.stat().st_size for p in self.audio_dir.iterdir() if p.is_file())
        return {
            "count": sum(n for n, _ in by_status.values()),
            "done": by_status.get("done", (0, 0.0))[0],
            "failed": by_status.get("failed", (0, 0.0))[0],
            "interrupted": by_status.get("interrupted", (0, 0.0))[0],
            "audio_hours": sum(d for _, d in by_status.values()) / 3600.0,
            "db_bytes": page_count * page_size + (wal.stat().st_size if wal.exists() else 0),
            "audio_bytes": audio_bytes,
        }


def _key_of(t: Transcript) -> str:
    return settings_key(t.engine, t.model, t.hotwords, t.itn, t.language)


__all__ = [
    "DEFAULT_DB",
    "EXPORT_FORMATS",
    "INTERRUPTED_ERROR",
    "STATUSES",
    "HistoryStore",
    "Interrupted",
    "Page",
    "Record",
    "audio_hash",
    "grams",
    "settings_key",
]
