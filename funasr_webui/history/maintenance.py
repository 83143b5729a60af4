"""Looking after the database: statistics, online backups, compaction.

On PostgreSQL a backup is ``pg_dump``'s job (it copies one consistent snapshot while others write, and restores
on any server version): ``backup`` says so instead of writing a file of its own format. ``vacuum`` runs
``VACUUM (ANALYZE)``, which frees dead rows for reuse without locking writers out (autovacuum does the same on
its own); the database's size is PostgreSQL's (``pg_database_size``).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from . import audio_copies
from .connection import read, retry_busy, write
from .postgres import is_pg

PG_BACKUP_HINT = "use pg_dump for a PostgreSQL history (e.g. pg_dump -Fc -f history.dump DBNAME)"


def _db_bytes(conn: Any, db_path: Path | str) -> int:
    if is_pg(conn):
        return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])
    page_count = conn.execute("PRAGMA page_count").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    wal = Path(db_path).with_name(Path(db_path).name + "-wal")
    return page_count * page_size + (wal.stat().st_size if wal.exists() else 0)


def stats(conn: Any, db_path: Path | str, audio_dir: Path) -> dict[str, Any]:
    """count, done, failed, interrupted, audio_hours, db_bytes (database + WAL), audio_bytes (kept copies).

    Transcriptions still running are jobs, not records: they are not counted."""
    with read(conn):
        sql = "SELECT status, count(*), sum(duration) FROM records GROUP BY status"
        by_status = {s: (n, d or 0.0) for s, n, d in conn.execute(sql)}
        db_bytes = _db_bytes(conn, db_path)
    return {
        "count": sum(n for n, _ in by_status.values()),
        "done": by_status.get("done", (0, 0.0))[0],
        "failed": by_status.get("failed", (0, 0.0))[0],
        "interrupted": by_status.get("interrupted", (0, 0.0))[0],
        "audio_hours": sum(d for _, d in by_status.values()) / 3600.0,
        "db_bytes": db_bytes,
        "audio_bytes": audio_copies.total_bytes(audio_dir),
    }


def backup(conn: Any, db_path: Path | str, target: str | os.PathLike[str]) -> Path:
    """A consistent copy of the database through SQLite's online backup API (safe while others write).
    ValueError for a PostgreSQL database (PG_BACKUP_HINT)."""
    if is_pg(conn):
        raise ValueError(PG_BACKUP_HINT)
    target = Path(target)
    if target.resolve() == Path(db_path).resolve():
        raise ValueError("the backup target is the database itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    dest = sqlite3.connect(target)
    try:
        conn.backup(dest)
    finally:
        dest.close()
    return target


def vacuum(conn: Any) -> None:
    """Merge FTS segments, rebuild the file compactly, and truncate the WAL (PostgreSQL: VACUUM (ANALYZE))."""
    if is_pg(conn):
        conn.execute("VACUUM (ANALYZE)")  # autocommit: VACUUM cannot run inside a transaction
        return
    with write(conn):
        conn.execute("INSERT INTO fts_text(fts_text) VALUES ('optimize')")
        conn.execute("INSERT INTO fts_grams(fts_grams) VALUES ('optimize')")
    retry_busy(lambda: conn.execute("VACUUM"), pause=0.1)  # needs the file to itself for a moment
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
