"""Search on PostgreSQL: the same queries, filters and results as search.py's on SQLite, as one SQL statement.

A term of 3+ characters is a case-insensitive substring (``ILIKE``, answered by the ``pg_trgm`` GIN index on
``bodies.text``); a term of 1-2 characters is a gram token (the GIN index on ``string_to_array(grams, ' ')``).
PostgreSQL's planner picks between those indexes and reading ``records`` newest first, so no hand-made planner
is needed; the statement reads up to the page plus COUNT_CAP ids, so a broad query stays cheap at 1M records.
"""

from __future__ import annotations

from typing import Any

from ..helpers import printable
from . import search
from .postgres import PgConnection


def _like(term: str) -> str:
    """A user's term as an ILIKE substring pattern: its own %, _ and \\ match themselves."""
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _where(q: str, filters: dict[str, Any]) -> tuple[list[str], list[Any]] | None:
    """The conditions on ``records r`` (and ``bodies b``) and their parameters; None if nothing can match."""
    parsed = search.parse_query(q or "")
    if parsed is None:
        return None
    phrases, tokens = parsed
    where: list[str] = []
    params: list[Any] = []
    for phrase in phrases:
        where.append("b.text ILIKE ? ESCAPE '\\'")
        params.append(_like(phrase))
    if tokens:
        where.append("string_to_array(b.grams, ' ') @> ?::text[]")
        params.append(tokens)
    for col in ("engine", "source", "status"):
        if filters.get(col):
            where.append(f"r.{col} = ?")
            params.append(filters[col])
    speaker = filters.get("speaker")
    if speaker and speaker.strip():
        where.append("EXISTS (SELECT 1 FROM speakers s WHERE s.record_id = r.id AND lower(s.name) = lower(?))")
        params.append(printable(speaker).strip())
    if filters.get("rule"):
        where.append("EXISTS (SELECT 1 FROM qa_hits h WHERE h.record_id = r.id AND h.rule = ?)")
        params.append(filters["rule"])
    elif filters.get("flagged"):
        where.append("EXISTS (SELECT 1 FROM qa_checked c WHERE c.record_id = r.id AND c.hits > 0)")
    return where, params


def select(
    conn: PgConnection, q: str, filters: dict[str, Any], need: int | None, count_cap: int | None = None
) -> tuple[list[int], int, bool]:
    """Matching ids newest first (the first ``need``, or all when None), a total, and whether the total is exact;
    as search.select."""
    if count_cap is None:
        count_cap = search.COUNT_CAP
    cond = _where(q, filters)
    bounds = None if cond is None else search.id_bounds(conn, filters.get("date_from"), filters.get("date_to"))
    if cond is None or bounds is None:
        return [], 0, True
    where, params = cond
    text = any("b." in w for w in where)
    sql = "SELECT r.id FROM records r" + (" JOIN bodies b ON b.id = r.id" if text else "")
    sql += " WHERE " + " AND ".join(["r.id BETWEEN ? AND ?", *where]) + " ORDER BY r.id DESC"
    params = [*bounds, *params]
    target = None if need is None else max(count_cap, need + 1)
    if target is not None:
        sql += " LIMIT ?"
        params.append(target)
    ids = [r[0] for r in conn.execute(sql, params)]
    exact = target is None or len(ids) < target
    return (ids if need is None else ids[:need]), len(ids), exact
