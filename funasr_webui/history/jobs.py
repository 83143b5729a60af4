"""Rows of ``jobs``: transcriptions in progress, and the 'interrupted' records of those whose process is gone.

A job lives from the moment a transcription's audio has decoded until its record is written; the job row is
deleted in the record's own transaction, so records never hold a half-done transcription.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from ..helpers import printable
from ..transcript import Transcript
from . import records
from .hashing import hotword_list
from .models import INTERRUPTED_ERROR, Interrupted, parse_ts, ts, utc_now
from .ownership import owner, owner_alive


def insert(
    conn: sqlite3.Connection,
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
    cur = conn.execute(
        "INSERT INTO jobs (started_at, owner_pid, owner_token, source, name, audio_hash, settings_key,"
        " duration, engine, model, device, language, hotwords, itn) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
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
        ),
    )
    return int(cur.lastrowid or 0)


def end(conn: sqlite3.Connection, job: int | None) -> None:
    if job is not None:
        conn.execute("DELETE FROM jobs WHERE id = ?", (int(job),))


def any_orphaned(conn: sqlite3.Connection) -> bool:
    """Whether some job's process is gone (a cheap read before taking the write lock)."""
    return not all(owner_alive(pid, token) for pid, token in conn.execute("SELECT owner_pid, owner_token FROM jobs"))


def reap(conn: sqlite3.Connection) -> list[Interrupted]:
    """Turn the jobs of processes that are gone into 'interrupted' records, inside the caller's write transaction."""
    floor = records.created_floor(conn)
    found = []
    cur = conn.cursor()
    cur.row_factory = sqlite3.Row
    for job in cur.execute("SELECT * FROM jobs ORDER BY id").fetchall():
        if owner_alive(job["owner_pid"], job["owner_token"]):
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
