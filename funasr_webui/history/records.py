"""Rows of ``records`` and ``bodies``: writing one transcription, and reading records back by id.

Times: ``created_at`` is stored as UTC ISO-8601 text (``2024-05-01T12:34:56.789012Z``) and returned as an aware
UTC ``datetime``. It never decreases with ``id`` (``insert`` clamps it to the previous record's time), so
newest-first is ``id DESC`` and a date range is also an id range (see search).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ..helpers import printable
from ..transcript import Segment, Transcript
from .audio_copies import copy_path
from .hashing import hotword_list
from .models import Record, parse_ts, ts, utc_now
from .postgres import is_pg

MAX_SOURCE_CHARS = 1000
MAX_ERROR_CHARS = 20000
CHUNK = 500  # ids per statement; far below SQLite's variable limit

_COLS = (
    "r.id, r.created_at, r.status, r.source, r.audio_hash, r.settings_key, r.duration, r.elapsed, r.rtf,"
    " r.engine, r.model, r.device, r.language, r.hotwords, r.itn, r.error, r.error_code, r.audio_file, r.name,"
    " b.text, b.raw_text, b.segments"
)


def created_floor(conn: Any) -> list[str]:
    """The newest record's time, as the floor ``insert`` keeps (a list: each insert raises it)."""
    row = conn.execute("SELECT created_at FROM records ORDER BY id DESC LIMIT 1").fetchone()
    return [row[0] if row else ""]


RECORD_COLUMNS = (
    "created_at, status, source, audio_hash, settings_key, duration, elapsed, rtf, engine, model, device, language,"
    " hotwords, itn, error, error_code, name"
)


def _record_values(
    floor: list[str],
    *,
    status: str,
    source: str,
    audio_hash: str,
    key: str,
    t: Transcript,
    name: str = "",
    error: str = "",
    error_code: str | None = None,
    created_at: datetime | None = None,
) -> tuple:
    """A records row (RECORD_COLUMNS) as it is stored; raises ``floor`` to its time."""
    # Clamp the time so created_at never decreases with id (date ranges become id ranges).
    created = max(ts(created_at or utc_now()), floor[0])
    floor[0] = created
    return (
        created,
        status,
        printable(source)[:MAX_SOURCE_CHARS],
        audio_hash,
        key,
        float(t.duration),
        float(t.elapsed),
        round(t.rtf, 4),
        printable(t.engine),
        printable(t.model),
        printable(t.device),
        printable(t.language),
        json.dumps(hotword_list(t.hotwords), ensure_ascii=False),
        int(bool(t.itn)),
        printable(error)[:MAX_ERROR_CHARS],
        printable(error_code) if error_code else None,  # a code from our own code: short, never user text
        printable(name)[:MAX_SOURCE_CHARS],
    )


def _body_values(rid: int, t: Transcript, gram_text: str) -> tuple:
    segments = json.dumps(
        [replace(s, text=printable(s.text)).to_stored() for s in t.segments],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return (rid, printable(t.text), printable(t.raw_text), segments, gram_text)


def _speaker_values(rid: int, t: Transcript) -> list[tuple]:
    return [(rid, label, printable(name)) for label, name in t.speaker_names.items() if name]


def insert(conn: Any, floor: list[str], *, t: Transcript, gram_text: str, **fields: Any) -> int:
    """Write one record and its body inside the caller's transaction; returns its id. ``fields``: those of
    ``_record_values`` (``name``: what the user calls the audio, '' = only its source names it)."""
    values = _record_values(floor, t=t, **fields)
    marks = ",".join("?" * len(values))
    cur = conn.execute(f"INSERT INTO records ({RECORD_COLUMNS}) VALUES ({marks}) RETURNING id", values)
    rid = int(cur.fetchone()[0])
    conn.execute("INSERT INTO bodies (id, text, raw_text, segments, grams) VALUES (?,?,?,?,?)",
                 _body_values(rid, t, gram_text))  # fmt: skip
    conn.executemany("INSERT INTO speakers (record_id, label, name) VALUES (?,?,?)", _speaker_values(rid, t))
    return rid


def insert_many_pg(conn: Any, floor: list[str], items: list[dict[str, Any]]) -> list[int]:
    """PostgreSQL's bulk path for ``insert`` (each item: its keyword arguments): the ids taken from the records'
    identity in one statement, then every table filled by COPY, rows exactly as ``insert`` writes them. Inside
    the caller's write transaction, whose lock keeps the ids in created_at order."""
    if not items:
        return []
    ids = sorted(
        int(r[0])
        for r in conn.execute(
            "SELECT nextval(pg_get_serial_sequence('records', 'id')) FROM generate_series(1, ?)", (len(items),)
        )
    )
    rows, bodies, speakers = [], [], []
    for rid, item in zip(ids, items, strict=True):
        fields = dict(item)
        t, gram_text = fields.pop("t"), fields.pop("gram_text")
        rows.append((rid, *_record_values(floor, t=t, **fields)))
        bodies.append(_body_values(rid, t, gram_text))
        speakers.extend(_speaker_values(rid, t))
    conn.copy(f"records (id, {RECORD_COLUMNS})", rows)
    conn.copy("bodies (id, text, raw_text, segments, grams)", bodies)
    conn.copy("speakers (record_id, label, name)", speakers)
    return ids


def set_speaker_names(conn: Any, record_id: int, names: dict[str, str]) -> None:
    """Give speakers of a record their display names; an empty name puts the default name back."""
    for label, name in names.items():
        if name:
            conn.execute(
                "INSERT INTO speakers (record_id, label, name) VALUES (?,?,?)"
                " ON CONFLICT (record_id, label) DO UPDATE SET name = excluded.name",
                (record_id, label, printable(name)),
            )
        else:
            conn.execute("DELETE FROM speakers WHERE record_id = ? AND label = ?", (record_id, label))


def speaker_names(conn: Any, limit: int = 200) -> list[str]:
    """The names users gave speakers, most used first (the History search's speaker choices)."""
    same = "lower(name)" if is_pg(conn) else "name COLLATE NOCASE"
    sql = f"SELECT min(name) FROM speakers GROUP BY {same} ORDER BY count(*) DESC, min(name) LIMIT ?"
    return [r[0] for r in conn.execute(sql, (limit,))]


def _record(row: Sequence, audio_dir: Path) -> Record:
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
        error_code,
        audio_file,
        name,
        text,
        raw_text,
        segments,
    ) = row
    return Record(
        id=rid,
        created_at=parse_ts(created),
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
        segments=[Segment.from_stored(item) for item in json.loads(segments or "[]")],
        elapsed=elapsed,
        rtf=rtf,
        status=status,
        error=error,
        audio_file=copy_path(audio_dir, audio_file),
        settings_key=key,
        error_code=error_code,
        name=name,
    )


def fetch(conn: Any, ids: Sequence[int], audio_dir: Path) -> list[Record]:
    """Records for ``ids``, in the order given (ids that do not exist are left out)."""
    found: dict[int, Record] = {}
    for i in range(0, len(ids), CHUNK):
        chunk = list(ids[i : i + CHUNK])
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT {_COLS} FROM records r JOIN bodies b ON b.id = r.id WHERE r.id IN ({marks})"
        for row in conn.execute(sql, chunk):
            found[row[0]] = _record(row, audio_dir)
        sql = f"SELECT record_id, label, name FROM speakers WHERE record_id IN ({marks})"
        for rid, label, name in conn.execute(sql, chunk):
            found[rid].speaker_names[label] = name
    return [found[i] for i in ids if i in found]


def ids_after(conn: Any, last: int, n: int = CHUNK) -> list[int]:
    """Up to ``n`` record ids above ``last``, ascending."""
    return [r[0] for r in conn.execute("SELECT id FROM records WHERE id > ? ORDER BY id LIMIT ?", (last, n))]


def ids_before(conn: Any, cutoff: str, n: int = CHUNK) -> list[int]:
    """Up to ``n`` ids of records created before the stored time ``cutoff``, oldest first."""
    sql = "SELECT id FROM records WHERE created_at < ? ORDER BY created_at LIMIT ?"
    return [r[0] for r in conn.execute(sql, (cutoff, n))]


def newest_done(conn: Any, audio_hash: str, key: str) -> int | None:
    """The id of the newest successful record of this audio content and settings key."""
    row = conn.execute(
        "SELECT id FROM records WHERE audio_hash = ? AND settings_key = ? AND status = 'done' ORDER BY id DESC LIMIT 1",
        (audio_hash, key),
    ).fetchone()
    return row[0] if row else None


def results_of(conn: Any, audio_hash: str) -> list[tuple[str, str, str, str]]:
    """(status, engine, model, settings_key) of every finished record of this audio content, newest first."""
    rows = conn.execute(
        "SELECT status, engine, model, settings_key FROM records WHERE audio_hash = ?"
        " AND status IN ('done', 'failed') ORDER BY id DESC",
        (audio_hash,),
    ).fetchall()
    return [tuple(r) for r in rows]


def newest_status(conn: Any, audio_hash: str, key: str) -> str | None:
    """The status of the newest record of this audio content and settings key (None: there is none)."""
    row = conn.execute(
        "SELECT status FROM records WHERE audio_hash = ? AND settings_key = ? ORDER BY id DESC LIMIT 1",
        (audio_hash, key),
    ).fetchone()
    return row[0] if row else None


def delete(conn: Any, ids: Sequence[int]) -> tuple[int, list[str]]:
    """Delete records and their bodies (triggers update FTS); returns how many existed and their audio copies."""
    deleted = 0
    files: list[str] = []
    for i in range(0, len(ids), CHUNK):
        chunk = list(ids[i : i + CHUNK])
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT audio_file FROM records WHERE id IN ({marks}) AND audio_file IS NOT NULL"
        files += [r[0] for r in conn.execute(sql, chunk)]
        conn.execute(f"DELETE FROM speakers WHERE record_id IN ({marks})", chunk)
        conn.execute(f"DELETE FROM bodies WHERE id IN ({marks})", chunk)
        deleted += conn.execute(f"DELETE FROM records WHERE id IN ({marks})", chunk).rowcount
    return deleted, files
