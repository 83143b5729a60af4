"""Search: query parsing, the grams index's tokens, and the planner that finds matching ids newest first.

A query is split on whitespace ("double quotes" keep a phrase together); every term must match. Terms of
3+ characters go to the trigram index as FTS5 phrases, shorter ones to the grams index; user text is always
quoted, so FTS5 syntax in a query is plain text. Each condition (trigram phrases, grams, engine/source/status
filters) is a source of ids; the sparsest one is read newest first in chunks and the others are checked per
chunk. Counting stops at COUNT_CAP matches (Page.total_exact).

Dates: ``created_at`` never decreases with ``id``, so newest-first is ``id DESC`` and a date range is also an
id range, which FTS5 can seek to. Naive datetimes and plain dates given as filters are read as local time;
a plain ``date_to`` includes that whole day.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from datetime import date, datetime, timedelta
from typing import Any

from ..helpers import parse_date_or_datetime, printable
from .models import ts

log = logging.getLogger(__name__)

COUNT_CAP = 1000  # search counts matches up to this many; Page.total_exact says whether it was reached
PROBE_ROWS = 2000  # ids read per step of a search (see select)
SPARSE_SPAN = 200  # ids this far apart on average are checked one by one in FTS5
MAX_QUERY_CHARS = 256

# Alphanumeric runs: Unicode letters and digits (CJK included), no underscore.
_RUN_RE = re.compile(r"[^\W_]+")
_BIGRAM_RE = re.compile(r"(?=([^\W_]{2}))")  # every overlapping pair of alphanumeric characters
# Query terms: a "double quoted phrase" or a whitespace-free word.
_TERM_RE = re.compile(r'"([^"]+)"|(\S+)')


def grams(text: str) -> str:
    """The ``bodies.grams`` value: distinct 1- and 2-character tokens of each alphanumeric run."""
    low = text.lower()
    seen = set(_BIGRAM_RE.findall(low))
    seen.update(c for c in set(low) if c.isalnum())
    return " ".join(sorted(seen))


def _fts_phrase(s: str) -> str:
    """A user string as one FTS5 phrase: inside double quotes nothing is syntax, '"' is doubled."""
    return '"' + s.replace('"', '""') + '"'


def parse_query(q: str) -> tuple[list[str], list[str]] | None:
    """Split a query into trigram phrases (terms of 3+ characters) and gram tokens (1-2 characters).

    All terms must match (AND). Returns ([], []) for an empty query and None when the query has
    terms but none is searchable (e.g. only "*" or "-"), which matches nothing.
    """
    q = printable(q).replace("\x00", " ")[:MAX_QUERY_CHARS]
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


def _bound(value: datetime | date | str | None, *, end: bool) -> str | None:
    """A date filter as a stored timestamp: inclusive lower bound, or exclusive upper bound if ``end``."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = parse_date_or_datetime(value)
    if isinstance(value, datetime):
        dt = value.astimezone() if value.tzinfo is None else value  # naive = local time
        if end:
            dt += timedelta(microseconds=1)
    else:
        dt = datetime(value.year, value.month, value.day).astimezone()  # local midnight
        if end:
            dt += timedelta(days=1)
    return ts(dt)


class _Source:
    """One search condition as a source of record ids (see select)."""

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


def id_bounds(conn: sqlite3.Connection, date_from: Any, date_to: Any) -> tuple[int, int] | None:
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


class _SpeakerSource(_Source):
    """Records with a speaker of this name (any case), read from the speakers table's name index."""

    def __init__(self, name: str):
        self.name = name

    def page(self, conn: sqlite3.Connection, lo: int, hi: int, n: int) -> list[int]:
        sql = (
            "SELECT DISTINCT record_id FROM speakers WHERE name = ? COLLATE NOCASE AND record_id BETWEEN ? AND ?"
            " ORDER BY record_id DESC LIMIT ?"
        )
        return [r[0] for r in conn.execute(sql, [self.name, lo, hi, n])]

    def check(self, conn: sqlite3.Connection, ids: list[int]) -> set[int]:
        marks = ",".join("?" * len(ids))
        sql = f"SELECT record_id FROM speakers WHERE name = ? COLLATE NOCASE AND record_id IN ({marks})"
        return {r[0] for r in conn.execute(sql, [self.name, *ids])}


def _sources(
    q: str,
    engine: str | None,
    source: str | None,
    status: str | None,
    speaker: str | None = None,
    flagged: bool = False,
    rule: str | None = None,
) -> list[_Source] | None:
    """What a search must satisfy, as independent id sources; None if nothing can match."""
    parsed = parse_query(q or "")
    if parsed is None:
        return None
    phrases, tokens = parsed
    sources: list[_Source] = []
    if phrases:
        sources.append(_FtsSource("fts_text", " AND ".join(_fts_phrase(p) for p in phrases)))
    if tokens:
        sources.append(_FtsSource("fts_grams", " AND ".join(_fts_phrase(t) for t in tokens)))
    where, params = [], []
    for col, value in (("engine", engine), ("status", status)):
        if value:
            where.append(f"{col} = ?")
            params.append(value)
    if source:  # 'api', 'microphone'… or a file name: an upload's name is its source only on the page
        where.append("(source = ? OR name = ?)")
        params += [source, source]
    if speaker and speaker.strip():
        sources.append(_SpeakerSource(printable(speaker).strip()))
    if rule:  # a quality rule's hits (qa_hits_rule index), or any hit
        where.append("id IN (SELECT record_id FROM qa_hits WHERE rule = ?)")
        params.append(rule)
    elif flagged:
        where.append("id IN (SELECT record_id FROM qa_checked WHERE hits > 0)")
    if where or not sources:
        sources.append(_RecordsSource(" AND ".join(where), params))
    return sources


def select(
    conn: sqlite3.Connection, q: str, filters: dict[str, Any], need: int | None, count_cap: int | None = None
) -> tuple[list[int], int, bool]:
    """Matching ids newest first (the first ``need``, or all when None), a total, and whether the total is exact.

    Each condition (trigram phrases, gram tokens, record filters) is a source of ids. The sparsest
    source drives: it is read newest first in chunks of PROBE_ROWS ids, and each chunk is checked
    against the other sources with one query each (FTS5 seeks to the chunk's id range). Reading
    stops once the page is full and ``count_cap`` (default COUNT_CAP) matches are known, so a broad
    query costs about one chunk even at 1M records.
    """
    if count_cap is None:
        count_cap = COUNT_CAP
    sources = _sources(
        q,
        filters.get("engine"),
        filters.get("source"),
        filters.get("status"),
        filters.get("speaker"),
        bool(filters.get("flagged")),
        filters.get("rule"),
    )
    bounds = None if sources is None else id_bounds(conn, filters.get("date_from"), filters.get("date_to"))
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
