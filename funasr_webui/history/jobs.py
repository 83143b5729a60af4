"""Rows of ``jobs``: transcriptions in progress, and the 'interrupted' records of those whose process is gone.

A job lives from the moment a transcription's audio has decoded until its record is written; the job row is
deleted in the record's own transaction, so records never hold a half-done transcription.

On PostgreSQL, processes on several machines share the jobs table: a job is its owner's while the owner renews
its lease (heartbeat.py); a job of this machine whose process is gone is taken at once, as on SQLite.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable
from typing import Any

from ..helpers import printable
from ..transcript import Transcript
from . import records
from .hashing import hotword_list
from .models import INTERRUPTED_ERROR, Interrupted, parse_ts, ts, utc_now
from .ownership import boot_id, owner, owner_alive
from .postgres import is_pg

LEASE_S = 60  # PostgreSQL: a job whose owner has not renewed it for this long is interrupted

_COLS = (
    "id, started_at, owner_pid, owner_token, source, name, audio_hash, settings_key, duration, engine, model,"
    " device, language, hotwords, itn"
)


def insert(
    conn: Any,
    *,
    source: str,
    name: str,
    audio_hash: str,
    settings_key: str,
    duration: float,
    engine: str,
    model: str,
    device: str,
    hotwords: str | Iterable[str],
    itn: bool,
    language: str,
) -> int:
    """A job owned by this process, inside the caller's transaction; returns its id."""
    pid, token = owner()
    host = ", owner_host" if is_pg(conn) else ""
    cur = conn.execute(
        "INSERT INTO jobs (started_at, owner_pid, owner_token, source, name, audio_hash, settings_key,"
        f" duration, engine, model, device, language, hotwords, itn{host})"
        f" VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?{',?' if host else ''}) RETURNING id",
        (
            ts(utc_now()),
            pid,
            token,
            printable(source)[: records.MAX_SOURCE_CHARS],
            printable(name or source)[: records.MAX_SOURCE_CHARS],
            audio_hash,
            settings_key,
            float(duration),
            printable(engine),
            printable(model),
            printable(device),
            printable(language),
            json.dumps(hotword_list(hotwords), ensure_ascii=False),
            int(bool(itn)),
            *([socket.gethostname()] if host else []),
        ),
    )
    return int(cur.fetchone()[0])


def end(conn: Any, job: int | None) -> None:
    if job is not None:
        conn.execute("DELETE FROM jobs WHERE id = ?", (int(job),))


def _alive(pid: int, token: str, expired: bool | None) -> bool:
    """Whether a job's owner runs. SQLite (``expired`` None): its process, on this machine. PostgreSQL: its lease
    is fresh and, when the job is this machine's (its token names this boot), its process runs too."""
    if expired is None:
        return owner_alive(pid, token)
    return not expired and (not token.startswith(boot_id() + "/") or owner_alive(pid, token))


def _owners(conn: Any, cols: str) -> list[tuple]:
    """Each job's ``cols`` and whether its lease ran out (the last column; NULL on SQLite), oldest job first."""
    expired = f"heartbeat_at < now() - interval '{LEASE_S} seconds'" if is_pg(conn) else "NULL"
    return conn.execute(f"SELECT {cols}, {expired} FROM jobs ORDER BY id").fetchall()


def any_orphaned(conn: Any) -> bool:
    """Whether some job's process is gone (a cheap read before taking the write lock)."""
    return not all(_alive(pid, token, exp) for pid, token, exp in _owners(conn, "owner_pid, owner_token"))


def reap(conn: Any) -> list[Interrupted]:
    """Turn the jobs of processes that are gone into 'interrupted' records, inside the caller's write transaction."""
    floor = records.created_floor(conn)
    found = []
    names = [c.strip() for c in _COLS.split(",")]
    for row in _owners(conn, _COLS):
        job = dict(zip(names, row[:-1], strict=True))
        if _alive(job["owner_pid"], job["owner_token"], row[-1]):
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
        rid = records.insert(
            conn,
            floor,
            status="interrupted",
            source=job["source"],
            audio_hash=job["audio_hash"],
            key=job["settings_key"],
            t=t,
            error=INTERRUPTED_ERROR,
            gram_text="",
            name=job["name"],
            created_at=parse_ts(job["started_at"]),
        )
        end(conn, job["id"])
        found.append(Interrupted(rid, job["source"], job["name"]))
    return found
