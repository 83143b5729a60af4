"""Search on PostgreSQL: the same queries, filters and results as search.py's on SQLite.

A term of 3+ characters is a case-insensitive substring (``ILIKE``, answered by the ``pg_trgm`` GIN index on
``bodies.text``); a term of 1-2 characters is a gram token (the GIN index on ``string_to_array(grams, ' ')``).
Dates are id ranges, as on SQLite (search.id_bounds); see ``select`` for how a page is found.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..helpers import printable
from . import search
from .postgres import PgConnection

BITMAP_WORK_MEM = "32MB"  # per search while it runs: exact bitmaps of a common gram over a few million records


def _like(term: str) -> str:
    """A user's term as an ILIKE substring pattern: its own %, _ and \\ match themselves."""
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _where(q: str, filters: dict[str, Any]) -> tuple[list[str], list[Any], list[str], list[Any]] | None:
    """The text conditions (on ``bodies b``) and the record conditions (on ``records r``), each with its
    parameters; None if nothing can match."""
    parsed = search.parse_query(q or "")
    if parsed is None:
        return None
    phrases, tokens = parsed
    text: list[str] = []
    text_params: list[Any] = []
    for phrase in phrases:
        text.append("b.text ILIKE ? ESCAPE '\\'")
        text_params.append(_like(phrase))
    if tokens:
        text.append("string_to_array(b.grams, ' ') @> ?::text[]")
        text_params.append(tokens)
    where: list[str] = []
    params: list[Any] = []
    for col in ("engine", "status"):
        if filters.get(col):
            where.append(f"r.{col} = ?")
            params.append(filters[col])
    if filters.get("source"):  # a source ('api', 'microphone'…) or a file name, as on SQLite
        where.append("(r.source = ? OR r.name = ?)")
        params += [filters["source"], filters["source"]]
    speaker = filters.get("speaker")
    if speaker and speaker.strip():
        where.append("EXISTS (SELECT 1 FROM speakers s WHERE s.record_id = r.id AND lower(s.name) = lower(?))")
        params.append(printable(speaker).strip())
    if filters.get("rule"):
        where.append("EXISTS (SELECT 1 FROM qa_hits h WHERE h.record_id = r.id AND h.rule = ?)")
        params.append(filters["rule"])
    elif filters.get("flagged"):
        where.append("EXISTS (SELECT 1 FROM qa_checked c WHERE c.record_id = r.id AND c.hits > 0)")
    return text, text_params, where, params


@contextmanager
def _bitmap_scans(conn: PgConnection) -> Iterator[None]:
    """Text conditions answered from the GIN indexes only (bitmap scans, ANDed with the id range), never by
    reading each row's text in id order: the planner does not know how dear that is (long texts are compressed
    out of line), and would walk a whole window for a rare word. The bitmaps get room to stay exact: a common
    gram matches a quarter of the records, and a bitmap over PostgreSQL's default work_mem (4 MB) turns lossy,
    so every row of its pages is read and checked again (~6× slower at 1M records)."""
    conn.execute("SET LOCAL enable_indexscan = off")
    conn.execute("SET LOCAL enable_seqscan = off")
    conn.execute(f"SET LOCAL work_mem = '{BITMAP_WORK_MEM}'")
    yield  # after an error the transaction ends, and SET LOCAL with it
    conn.execute("RESET enable_indexscan")
    conn.execute("RESET enable_seqscan")
    conn.execute("RESET work_mem")


def select(
    conn: PgConnection, q: str, filters: dict[str, Any], need: int | None, count_cap: int | None = None
) -> tuple[list[int], int, bool]:
    """Matching ids newest first (the first ``need``, or all when None), a total, and whether the total is exact;
    as search.select.

    Without text conditions, one statement on ``records``. With them, id windows are read newest first, each
    four times as wide as the one before (the first PROBE_ROWS ids), until the page and ``count_cap``
    (default COUNT_CAP) matches are known: a common word is done in the first window, a rare one in a few,
    and neither reads more rows than it finds.
    """
    if count_cap is None:
        count_cap = search.COUNT_CAP
    cond = _where(q, filters)
    bounds = None if cond is None else search.id_bounds(conn, filters.get("date_from"), filters.get("date_to"))
    if cond is None or bounds is None:
        return [], 0, True
    text, text_params, where, params = cond
    lo, hi = bounds
    target = None if need is None else max(count_cap, need + 1)
    if not text:
        sql = " AND ".join(["SELECT r.id FROM records r WHERE r.id BETWEEN ? AND ?", *where]) + " ORDER BY r.id DESC"
        args = [lo, hi, *params]
        if target is not None:
            sql += " LIMIT ?"
            args.append(target)
        ids = [r[0] for r in conn.execute(sql, args)]
        exact = target is None or len(ids) < target
        return (ids if need is None else ids[:need]), len(ids), exact
    hi = min(hi, conn.execute("SELECT coalesce(max(id), 0) FROM records").fetchone()[0])
    joined = " JOIN records r ON r.id = b.id" if where else ""
    sql = " AND ".join([f"SELECT b.id FROM bodies b{joined} WHERE b.id BETWEEN ? AND ?", *text, *where])
    sql += " ORDER BY b.id DESC"
    matches: list[int] = []
    width = search.PROBE_ROWS
    with _bitmap_scans(conn):
        while hi >= lo and (target is None or len(matches) < target):
            start = max(lo, hi - width + 1)
            matches += [r[0] for r in conn.execute(sql, [start, hi, *text_params, *params])]
            hi, width = start - 1, width * 4
    return (matches if need is None else matches[:need]), len(matches), hi < lo
