"""Looking after the database file: statistics, online backups, compaction."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from . import audio_copies
from .connection import read, retry_busy, write


def stats(conn: sqlite3.Connection, db_path: Path, audio_dir: Path) -> dict[str, Any]:
    """count, done, failed, interrupted, audio_hours, db_bytes (database + WAL), audio_bytes (kept copies).

    Transcriptions still running are jobs, not records: they are not counted."""
    with read(conn):
        sql = "SELECT status, count(*), sum(duration) FROM records GROUP BY status"
        by_status = {s: (n, d or 0.0) for s, n, d in conn.execute(sql)}
        page_count = conn.execute("PRAGMA page_count").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    wal = db_path.with_name(db_path.name + "-wal")
    return {
        "count": sum(n for n, _ in by_status.values()),
        "done": by_status.get("done", (0, 0.0))[0],
        "failed": by_status.get("failed", (0, 0.0))[0],
        "interrupted": by_status.get("interrupted", (0, 0.0))[0],
        "audio_hours": sum(d for _, d in by_status.values()) / 3600.0,
        "db_bytes": page_count * page_size + (wal.stat().st_size if wal.exists() else 0),
        "audio_bytes": audio_copies.total_bytes(audio_dir),
    }


def backup(conn: sqlite3.Connection, db_path: Path, target: str | os.PathLike[str]) -> Path:
    """A consistent copy of the database through SQLite's online backup API (safe while others write)."""
    target = Path(target)
    if target.resolve() == db_path.resolve():
        raise ValueError("the backup target is the database itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    dest = sqlite3.connect(target)
    try:
        conn.backup(dest)
    finally:
        dest.close()
    return target


def vacuum(conn: sqlite3.Connection) -> None:
    """Merge FTS segments, rebuild the file compactly, and truncate the WAL."""
    with write(conn):
        conn.execute("INSERT INTO fts_text(fts_text) VALUES ('optimize')")
        conn.execute("INSERT INTO fts_grams(fts_grams) VALUES ('optimize')")
    retry_busy(lambda: conn.execute("VACUUM"), pause=0.1)  # needs the file to itself for a moment
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
