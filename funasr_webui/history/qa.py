"""Rows of the quality-check tables: rules, the hits found on each record, which records were checked, switches.

Hits are written in the record's own transaction when a transcription is saved (``write_hits``), and replaced
record by record when the rules are applied to the history again (``apply``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from ..qa.matcher import CallText, Checker
from ..qa.rules import Hit, Located, Rule
from ..transcript import Segment
from .models import ts, utc_now

_RULE_COLS = "id, name, kind, phrases, window_from, window_to, speaker, enabled"
_HIT_COLS = "rule_id, rule, kind, phrase, start_s, end_s, text, segment, speaker"
CHUNK = 2000  # records per transaction when applying rules again


# ---- rules


def _rule(row: Sequence) -> Rule:
    rid, name, kind, phrases, lo, hi, speaker, enabled = row
    return Rule(
        name=name,
        kind=kind,
        phrases=json.loads(phrases),
        within_s=(lo, hi) if lo is not None else None,
        speaker=speaker,
        enabled=bool(enabled),
        id=rid,
    )


def list_rules(conn: Any, enabled_only: bool = False) -> list[Rule]:
    where = " WHERE enabled = 1" if enabled_only else ""
    return [_rule(r) for r in conn.execute(f"SELECT {_RULE_COLS} FROM qa_rules{where} ORDER BY id")]


def get_rule(conn: Any, rule_id: int) -> Rule | None:
    row = conn.execute(f"SELECT {_RULE_COLS} FROM qa_rules WHERE id = ?", (rule_id,)).fetchone()
    return _rule(row) if row else None


def rule_id_by_name(conn: Any, name: str) -> int | None:
    row = conn.execute("SELECT id FROM qa_rules WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def _values(rule: Rule) -> tuple:
    lo, hi = rule.within_s if rule.within_s is not None else (None, None)
    phrases = json.dumps(rule.phrases, ensure_ascii=False)
    return (rule.name, rule.kind, phrases, lo, hi, rule.speaker, int(rule.enabled), ts(utc_now()))


def insert_rule(conn: Any, rule: Rule) -> int:
    cur = conn.execute(
        "INSERT INTO qa_rules (name, kind, phrases, window_from, window_to, speaker, enabled, updated_at)"
        " VALUES (?,?,?,?,?,?,?,?) RETURNING id",
        _values(rule),
    )
    return int(cur.fetchone()[0])


def update_rule(conn: Any, rule_id: int, rule: Rule) -> bool:
    sql = (
        "UPDATE qa_rules SET name = ?, kind = ?, phrases = ?, window_from = ?, window_to = ?, speaker = ?,"
        " enabled = ?, updated_at = ? WHERE id = ?"
    )
    return conn.execute(sql, (*_values(rule), rule_id)).rowcount > 0


def delete_rule(conn: Any, rule_id: int) -> bool:
    return conn.execute("DELETE FROM qa_rules WHERE id = ?", (rule_id,)).rowcount > 0


# ---- switches


def get_setting(conn: Any, name: str) -> str | None:
    row = conn.execute("SELECT value FROM qa_settings WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def set_setting(conn: Any, name: str, value: str) -> None:
    conn.execute(
        "INSERT INTO qa_settings (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        (name, value),
    )


# ---- hits


def write_hits(conn: Any, record_id: int, hits: Iterable[Hit]) -> None:
    """The record's hits (replacing any earlier ones), and that it was checked now."""
    rows = [
        (record_id, h.rule_id, h.rule, h.kind, h.phrase, h.start, h.end, h.text, h.segment, h.speaker) for h in hits
    ]
    conn.execute("DELETE FROM qa_hits WHERE record_id = ?", (record_id,))
    conn.executemany(f"INSERT INTO qa_hits (record_id, {_HIT_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    conn.execute(
        "INSERT INTO qa_checked (record_id, checked_at, hits) VALUES (?, ?, ?)"
        " ON CONFLICT(record_id) DO UPDATE SET checked_at = excluded.checked_at, hits = excluded.hits",
        (record_id, ts(utc_now()), len(rows)),
    )


def _hit(row: Sequence) -> Hit:
    rule_id, rule, kind, phrase, start, end, text, segment, speaker = row
    return Hit(rule, kind, phrase, start, end, text, segment, rule_id, speaker)


def hits_of(conn: Any, ids: Sequence[int]) -> dict[int, list[Hit]]:
    """Each record's hits in time order (records without hits are left out)."""
    out: dict[int, list[Hit]] = {}
    for i in range(0, len(ids), 500):
        chunk = list(ids[i : i + 500])
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT record_id, {_HIT_COLS} FROM qa_hits WHERE record_id IN ({marks}) ORDER BY record_id, id"
        for row in conn.execute(sql, chunk):
            out.setdefault(row[0], []).append(_hit(row[1:]))
    return out


def checked(conn: Any, record_id: int) -> bool:
    return conn.execute("SELECT 1 FROM qa_checked WHERE record_id = ?", (record_id,)).fetchone() is not None


# ---- applying the rules to stored records


def calls_in(conn: Any, lo: int, hi: int, after: int, n: int = CHUNK) -> list[tuple]:
    """Finished records with ids in [lo, hi] above ``after``: (id, raw_text, segments JSON, duration, itn)."""
    sql = (
        "SELECT r.id, b.raw_text, b.segments, r.duration, r.itn FROM records r JOIN bodies b ON b.id = r.id"
        " WHERE r.id > ? AND r.id BETWEEN ? AND ? AND r.status = 'done' ORDER BY r.id LIMIT ?"
    )
    return conn.execute(sql, (after, lo, hi, n)).fetchall()


def check_rows(rows: Sequence[tuple], checker: Checker) -> list[tuple[int, list[Hit]]]:
    """The hits of each row of ``calls_in`` (pure CPU: run outside any transaction)."""
    out = []
    for rid, raw_text, segments, duration, itn in rows:
        segs = [Segment.from_stored(item) for item in json.loads(segments or "[]")]
        out.append((rid, checker.check(CallText(segs, raw_text, duration), bool(itn))))
    return out


def write_many(conn: Any, results: Sequence[tuple[int, list[Hit]]]) -> None:
    """Replace the hits of many records in one statement per table."""
    ids = [rid for rid, _ in results]
    now = ts(utc_now())
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        conn.execute(f"DELETE FROM qa_hits WHERE record_id IN ({','.join('?' * len(chunk))})", chunk)
    conn.executemany(
        f"INSERT INTO qa_hits (record_id, {_HIT_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
        [
            (rid, h.rule_id, h.rule, h.kind, h.phrase, h.start, h.end, h.text, h.segment, h.speaker)
            for rid, hits in results
            for h in hits
        ],
    )
    conn.executemany(
        "INSERT INTO qa_checked (record_id, checked_at, hits) VALUES (?, ?, ?)"
        " ON CONFLICT(record_id) DO UPDATE SET checked_at = excluded.checked_at, hits = excluded.hits",
        [(rid, now, len(hits)) for rid, hits in results],
    )


# ---- reading for the QA tab, the report and the History filters


def report(conn: Any, lo: int, hi: int, rule: str | None = None, limit: int | None = None) -> list:
    """Every hit of records in [lo, hi], oldest record first, with the record's id, name and time."""
    where, params = "h.record_id BETWEEN ? AND ?", [lo, hi]
    if rule:
        where += " AND h.rule = ?"
        params.append(rule)
    hit_cols = ", ".join("h." + c for c in _HIT_COLS.split(", "))
    sql = (
        f"SELECT h.record_id, coalesce(nullif(r.name, ''), r.source), r.created_at, {hit_cols}"
        f" FROM qa_hits h JOIN records r ON r.id = h.record_id WHERE {where} ORDER BY h.record_id, h.id"
    )
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [Located(row[0], row[1], row[2], _hit(row[3:])) for row in conn.execute(sql, params)]


def summary(conn: Any, lo: int, hi: int) -> dict[str, Any]:
    """Calls checked and flagged in the id range [lo, hi], and hits and calls per rule."""
    checked_n = conn.execute(
        "SELECT count(*), coalesce(sum(CASE WHEN hits > 0 THEN 1 ELSE 0 END), 0) FROM qa_checked"
        " WHERE record_id BETWEEN ? AND ?",
        (lo, hi),
    ).fetchone()
    per_rule = conn.execute(
        "SELECT rule, count(*), count(DISTINCT record_id) FROM qa_hits WHERE record_id BETWEEN ? AND ?"
        " GROUP BY rule ORDER BY count(*) DESC, rule",
        (lo, hi),
    ).fetchall()
    return {
        "checked": checked_n[0],
        "flagged": checked_n[1],
        "rules": [{"rule": r, "hits": n, "calls": c} for r, n, c in per_rule],
    }


def flagged(conn: Any, lo: int, hi: int, rule: str | None, limit: int) -> list[tuple[int, int]]:
    """Flagged records in [lo, hi], newest first: (record id, hits)."""
    if rule:
        sql = (
            "SELECT record_id, count(*) FROM qa_hits WHERE rule = ? AND record_id BETWEEN ? AND ?"
            " GROUP BY record_id ORDER BY record_id DESC LIMIT ?"
        )
        return conn.execute(sql, (rule, lo, hi, limit)).fetchall()
    sql = (
        "SELECT record_id, hits FROM qa_checked WHERE hits > 0 AND record_id BETWEEN ? AND ?"
        " ORDER BY record_id DESC LIMIT ?"
    )
    return conn.execute(sql, (lo, hi, limit)).fetchall()


def hit_rules(conn: Any) -> list[str]:
    """Every rule name that has hits (for the History filter), besides the rules that exist now."""
    return [r[0] for r in conn.execute("SELECT DISTINCT rule FROM qa_hits ORDER BY rule")]
