"""The history store on real SQLite files and a real PostgreSQL server (tests taking ``store`` or ``history_db``
run once per back end): search, filters, exports, migrations, concurrency, crashes."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import zipfile
from contextlib import closing
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from funasr_webui import history_cli
from funasr_webui.history import (
    INTERRUPTED_ERROR,
    SCHEMA_VERSION,
    HistoryError,
    HistoryStore,
    audio_hash,
    grams,
    open_store,
    ownership,
    settings_key,
)
from funasr_webui.qa.rules import Hit
from funasr_webui.settings import PROJECT_ROOT
from funasr_webui.transcript import Segment, Transcript, Word
from tests.helpers import db_ok, job_owner, jobs_in, kill, require

INTERRUPTED = "interrupted: the server stopped before this transcription finished"

ZH = "今天下午我们在滨海新区召开了人工智能大会，讨论了语音识别模型的部署问题。"
MIXED = "我们用 OpenAI Whisper 和 FunASR Paraformer 做了对比，GPU 延迟很低。"
# make(ZH) as subtitles, written out: its two halves, 0-1.25 s and 1.25-2.5 s
ZH_SRT = (
    "1\n00:00:00,000 --> 00:00:01,250\n今天下午我们在滨海新区召开了人工智能\n\n"
    "2\n00:00:01,250 --> 00:00:02,500\n大会，讨论了语音识别模型的部署问题。\n"
)


def make(text: str = ZH, *, engine: str = "paraformer", hotwords: list[str] | None = None, **kw) -> Transcript:
    half = len(text) // 2
    return Transcript(
        text=text,
        raw_text=text.replace("，", "").replace("。", ""),
        segments=[Segment(0.0, 1.25, text[:half]), Segment(1.25, 2.5, text[half:])],
        language=kw.pop("language", "zh"),
        duration=kw.pop("duration", 2.5),
        engine=engine,
        model=kw.pop("model", f"{engine}-large"),
        device=kw.pop("device", "cpu"),
        elapsed=kw.pop("elapsed", 0.5),
        hotwords=hotwords or [],
        itn=kw.pop("itn", True),
    )


@pytest.fixture
def store(history_db: Path | str):
    s = open_store(history_db)
    yield s
    s.close()


def ids_of(page) -> list[int]:
    return [r.id for r in page.records]


def fts_ok(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.execute("INSERT INTO fts_text(fts_text) VALUES ('integrity-check')")  # raises if out of sync
        conn.execute("INSERT INTO fts_grams(fts_grams) VALUES ('integrity-check')")
    finally:
        conn.close()


# --------------------------------------------------------------------------- basics


def test_add_get_roundtrip(store: HistoryStore) -> None:
    t = make(hotwords=["滨海新区", "人工智能"], itn=False)
    rid = store.add(t, source="meeting.wav", audio_hash="ab" * 32)
    rec = store.get(rid)
    assert rec is not None and rec.id == rid
    assert rec.transcript().to_dict() == t.to_dict()
    assert (rec.source, rec.audio_hash, rec.status, rec.error) == ("meeting.wav", "ab" * 32, "done", "")
    assert rec.rtf == pytest.approx(0.2) and rec.itn is False and rec.hotwords == ["滨海新区", "人工智能"]
    assert rec.created_at.tzinfo is not None and abs(datetime.now(timezone.utc) - rec.created_at) < timedelta(minutes=1)
    assert rec.settings_key == settings_key("paraformer", "paraformer-large", ["人工智能", "滨海新区"], False, "zh")
    assert rec.audio_file is None
    assert json.loads(json.dumps(rec.to_dict()))["text"] == ZH
    assert store.get(rid + 1) is None


def test_segment_extras_roundtrip(store: HistoryStore) -> None:
    t = make()
    t.segments[0].speaker = "S2"
    t.segments[0].tags = ["Laughter"]
    t.segments[1].words = [Word(1.25, 1.5, "大会")]
    rid = store.add(t, source="meeting.wav", audio_hash="cd" * 32)
    rec = store.get(rid)
    assert rec is not None and rec.segments == t.segments
    assert rec.to_dict()["segments"][0] == {
        "start": 0.0,
        "end": 1.25,
        "text": t.segments[0].text,
        "speaker": "S2",
        "tags": ["Laughter"],
    }


def test_add_failure(store: HistoryStore) -> None:
    rid = store.add_failure(source="broken.wav", audio_hash="00", error="cannot decode", engine="whisper")
    rec = store.get(rid)
    assert rec is not None and rec.status == "failed" and rec.error == "cannot decode" and rec.text == ""
    assert ids_of(store.search(status="failed")) == [rid]
    assert store.search(status="done").records == []


def test_schema_pragmas(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "history.db")
    conn = sqlite3.connect(tmp_path / "history.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    own = store._conn()
    assert own.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert own.execute("PRAGMA busy_timeout").fetchone()[0] >= 10000
    store.close()


def test_audio_hash_streams_files(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    f = tmp_path / "a.wav"
    f.write_bytes(data)
    assert audio_hash(f) == audio_hash(data) == audio_hash(str(f)) == audio_hash(io.BytesIO(data))
    assert audio_hash(b"x") != audio_hash(b"y")
    assert audio_hash(b"x") == "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"  # SHA-256


def test_database_failures_are_history_errors(tmp_path: Path) -> None:
    """Callers catch HistoryError (with SQLite's own message), never sqlite3.Error. (PostgreSQL: test_history_pg.)"""
    store = HistoryStore(tmp_path / "history.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all\n" * 200)
    with pytest.raises(HistoryError, match="not a database") as opened:
        HistoryStore(junk)
    assert isinstance(opened.value.__cause__, sqlite3.DatabaseError)

    rid = store.add(make(), source="a.wav", audio_hash="1")
    job = store.start_job(source="b.wav", audio_hash="2", settings_key="k")
    store._conn().execute("PRAGMA query_only = ON")  # every write of this thread now fails, as on a read-only file
    writes = [
        lambda: store.add(make(), source="c.wav", audio_hash="3"),
        lambda: store.add_failure(source="d.wav", audio_hash="4", error="e", error_code="not_media"),
        lambda: store.start_job(source="e.wav", audio_hash="5", settings_key="k"),
        lambda: store.cancel_job(job),
        lambda: store.delete([rid]),
        lambda: store.purge(0),
    ]
    for write in writes:
        with pytest.raises(HistoryError, match="readonly") as failed:
            write()
        assert isinstance(failed.value.__cause__, sqlite3.OperationalError)
    assert store.get(rid) is not None and store.stats()["count"] == 1  # reads still work
    store._conn().execute("PRAGMA query_only = OFF")
    store.cancel_job(store.start_job(source="f.wav", audio_hash="6", settings_key="k"))  # drops the stale job too
    assert jobs_in(tmp_path / "history.db") == []
    store.close()


def test_every_public_store_method_raises_history_errors_only() -> None:
    public = [name for name, f in vars(HistoryStore).items() if callable(f) and not name.startswith("_")]
    assert {"add", "add_failure", "search", "export", "stats", "vacuum"} <= set(public)
    assert [name for name in public + ["__init__"] if not hasattr(getattr(HistoryStore, name), "__wrapped__")] == []


@pytest.mark.parametrize("driver", ["sqlite3", "psycopg"])
def test_only_the_history_package_imports_a_database_driver(driver: str) -> None:
    package = PROJECT_ROOT / "funasr_webui"
    importers = [
        str(path.relative_to(package))
        for path in sorted(package.rglob("*.py"))
        if re.search(rf"^\s*(import|from)\s+{driver}\b", path.read_text(encoding="utf-8"), re.M)
    ]
    assert importers and all(name.startswith("history/") for name in importers), importers


# --------------------------------------------------------------------------- search


def test_search_any_three_chars_and_short_words(store: HistoryStore) -> None:
    rid = store.add(make(ZH), source="a.wav", audio_hash="1")
    other = store.add(make("完全不同的一段话。"), source="b.wav", audio_hash="2")
    for i in range(len(ZH) - 2):  # every window of three consecutive characters
        assert rid in ids_of(store.search(ZH[i : i + 3])), ZH[i : i + 3]
    for word in ("滨海", "新区", "模型", "部署", "语音", "识别"):  # two-character words
        assert ids_of(store.search(word)) == [rid], word
    for ch in "滨模署":
        assert ids_of(store.search(ch)) == [rid], ch
    assert ids_of(store.search("的")) == [other, rid]  # newest first
    assert store.search("火星").records == [] and store.search("火星探测器").records == []
    assert ids_of(store.search("滨海 模型")) == [rid]  # several terms: all must match
    assert ids_of(store.search("人工智能大会 部署")) == [rid]  # a long and a short term
    assert store.search("滨海 火星").records == []
    assert ids_of(store.search("  ")) == [other, rid]  # empty query lists everything


def test_search_mixed_language_case_insensitive(store: HistoryStore) -> None:
    rid = store.add(make(MIXED), source="a.wav", audio_hash="1")
    for q in ("openai", "OPENAI", "Whisper", "isper", "funasr para", "GPU", "gpu", "PU", "延迟", "对比", "R P"):
        assert ids_of(store.search(q)) == [rid], q
    assert ids_of(store.search('"FunASR Paraformer"')) == [rid]  # quotes keep a phrase with spaces
    assert store.search('"Paraformer FunASR"').records == []


@pytest.mark.parametrize(
    "q",
    ['"', '""', "*", "a*", "NEAR", "NEAR(a b)", "-", "-滨海", "(", ")", "'", "AND", "OR", "NOT", "a AND b",
     "滨海 OR", "^", ":", "text:滨海", "{}", '"滨海', "滨\x00海", "\ud800滨海", "%", "_", "\\", "[x]", "x" * 500],
)  # fmt: skip
def test_fts_syntax_in_queries_never_raises(store: HistoryStore, q: str) -> None:
    store.add(make(ZH), source="a.wav", audio_hash="1")
    page = store.search(q, engine="paraformer", date_from=date(2000, 1, 1))
    assert page.total == len(page.records)
    store.search_ids(q)


def test_grams_column() -> None:
    g = grams("Hi, 你好吗？").split()
    assert sorted(g) == sorted(["h", "i", "hi", "你", "好", "吗", "你好", "好吗"])


def test_filters_pagination_newest_first(store: HistoryStore) -> None:
    base = datetime(2024, 1, 1, 12, tzinfo=timezone.utc)
    items = []
    for i in range(30):
        engine = ("paraformer", "whisper", "sensevoice")[i % 3]
        items.append(
            (make(f"第{i}号会议讨论语音识别。", engine=engine), f"file{i % 5}.wav", f"h{i}", base + timedelta(days=i))
        )
    ids = store.add_many(items)
    assert ids == sorted(ids)

    page = store.search(limit=7)
    assert ids_of(page) == ids[::-1][:7] and page.total == 30 and page.total_exact and page.has_next
    seen = []
    for offset in range(0, 30, 7):  # pages join up to everything, newest first, no overlap
        seen += ids_of(store.search("语音识别", limit=7, offset=offset))
    assert seen == ids[::-1]
    last = store.search("语音识别", limit=7, offset=28)
    assert len(last.records) == 2 and not last.has_next and last.total == 30

    assert ids_of(store.search(engine="whisper", limit=100)) == ids[1::3][::-1]
    assert ids_of(store.search("会议", source="file2.wav", limit=100)) == [ids[i] for i in (27, 22, 17, 12, 7, 2)]
    assert store.search("会议", engine="whisper", source="file0.wav").total == 2  # i = 10, 25
    # Dates: a plain date is a whole local day; datetimes are instants.
    day5 = (base + timedelta(days=5)).astimezone().date()
    assert ids_of(store.search(date_from=day5, date_to=day5)) == [ids[5]]
    in_range = store.search("会议", date_from=base + timedelta(days=10), date_to=base + timedelta(days=12))
    assert ids_of(in_range) == [ids[12], ids[11], ids[10]]
    assert store.search(date_from=base + timedelta(days=100)).records == []
    assert store.search(date_to=base - timedelta(days=1)).records == []
    assert ids_of(store.search("第3号", date_from="2024-01-01", date_to="2024-12-31")) == [ids[3]]
    assert store.search_ids("会议", engine="sensevoice") == ids[2::3][::-1]


def test_total_is_capped_for_broad_queries(store: HistoryStore, monkeypatch) -> None:
    from funasr_webui.history import search

    monkeypatch.setattr(search, "PROBE_ROWS", 10)
    monkeypatch.setattr(search, "COUNT_CAP", 15)
    ids = store.add_many([(make(f"记录{i}号。"), "a.wav", "h") for i in range(60)])
    page = store.search("记录", limit=5)
    assert ids_of(page) == ids[::-1][:5] and not page.total_exact and 15 <= page.total < 60 and page.has_next
    deep = store.search("记录", limit=5, offset=50)
    assert ids_of(deep) == ids[::-1][50:55]
    assert store.search_ids("记录") == ids[::-1]  # exports see everything
    assert store.search("记录7号").total_exact


def test_created_at_never_decreases(store: HistoryStore) -> None:
    past = datetime(2020, 1, 1, tzinfo=timezone.utc)
    a = store.add(make(), source="a", audio_hash="1")
    (b,) = store.add_many([(make(), "b", "2", past)])  # an import older than what is stored is raised to it
    recs = [store.get(a), store.get(b)]
    assert recs[0].created_at <= recs[1].created_at


# --------------------------------------------------------------------------- delete, export, purge, vacuum, stats


def test_delete_keeps_fts_in_sync(store: HistoryStore) -> None:
    a = store.add(make(ZH), source="a.wav", audio_hash="1")
    b = store.add(make(MIXED), source="b.wav", audio_hash="2")
    c = store.add(make("滨海新区的第二次会议。"), source="c.wav", audio_hash="3")
    assert ids_of(store.search("滨海")) == [c, a]
    assert store.delete([a, 999]) == 1
    assert ids_of(store.search("滨海")) == [c] and ids_of(store.search("人工智能")) == []
    assert store.get(a) is None
    assert store.delete([b, c]) == 2 and store.search().records == []
    db_ok(store)


def test_exports(store: HistoryStore) -> None:
    a = store.add(make(ZH), source="会议.wav", audio_hash="1")
    b = store.add(make(MIXED, engine="whisper"), source="../../etc/passwd.wav", audio_hash="2")
    f = store.add_failure(source="bad.wav", audio_hash="3", error="boom")

    data = json.loads(store.export_json(None))
    assert [d["id"] for d in data] == [a, b, f]
    assert data[0]["text"] == ZH and data[0]["segments"][0]["start"] == 0.0 and data[2]["error"] == "boom"
    assert [d["id"] for d in json.loads(store.export_json([b]))] == [b]

    raw = store.export_csv([a, b])
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: spreadsheets read the Chinese right
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [int(r["id"]) for r in rows] == [a, b] and rows[0]["text"] == ZH and rows[1]["source"].startswith("../")

    with zipfile.ZipFile(io.BytesIO(store.export_zip(None, "srt"))) as zf:
        names = zf.namelist()
        assert len(names) == 2  # the failed record has no transcript
        assert all("/" not in n and "\\" not in n and not n.startswith(".") for n in names)
        assert zf.read(names[0]).decode() == ZH_SRT
    with zipfile.ZipFile(io.BytesIO(store.export("zip-txt", [a]))) as zf:
        assert zf.read(zf.namelist()[0]).decode() == ZH + "\n"
    assert json.loads(store.export("json", store.search_ids("OpenAI")))[0]["id"] == b
    with pytest.raises(ValueError):
        store.export("docx", None)


def test_purge(history_db: Path | str) -> None:
    db = history_db
    with open_store(db) as s:
        now = datetime.now(timezone.utc)
        old = s.add_many([(make(f"旧记录{i}。"), "a", "1", now - timedelta(days=40 - i)) for i in range(3)])
        new = s.add_many([(make("新记录。"), "b", "2", now - timedelta(days=1))])
        assert s.purge(30) == 3
        assert ids_of(s.search(limit=100)) == new and s.search("旧记录").records == []
        assert s.purge(30) == 0
        assert all(s.get(i) is None for i in old)
        with pytest.raises(ValueError):
            s.purge(-1)
    with open_store(db, keep_days=0.5) as s:  # the start-up setting
        assert s.stats()["count"] == 0
        db_ok(s)


def test_vacuum_and_stats(store: HistoryStore) -> None:
    empty = store.stats()
    assert empty["count"] == 0 and empty["audio_hours"] == 0 and empty["db_bytes"] > 0
    ids = store.add_many([(make(ZH * 20, duration=1800), "a", "1") for _ in range(40)])
    store.add_failure(source="x", audio_hash="2", error="e", duration=60)
    st = store.stats()
    assert (st["count"], st["done"], st["failed"]) == (41, 40, 1)
    assert st["audio_hours"] == pytest.approx(40 * 0.5 + 60 / 3600)
    store.delete(ids[:30])
    before = store.stats()["db_bytes"]
    store.vacuum()
    if store.postgres:  # VACUUM (ANALYZE) frees the dead rows for reuse (it need not shrink the files)
        sql = "SELECT count(*) FROM pg_stat_user_tables WHERE last_vacuum IS NOT NULL AND last_analyze IS NOT NULL"
        assert store._conn().execute(sql).fetchone()[0] >= 8  # every table
    else:
        assert store.stats()["db_bytes"] < before
    assert ids_of(store.search("滨海", limit=50)) == ids[30:][::-1]
    db_ok(store)


# --------------------------------------------------------------------------- find_previous, audio copies, hostile input


def test_find_previous(store: HistoryStore) -> None:
    h = audio_hash(b"same audio")
    key = settings_key("paraformer", "paraformer-large", ["b", "a"], True, "zh")
    assert store.find_previous(h, key) is None
    first = store.add(make(hotwords=["a", "b"]), source="x.wav", audio_hash=h)
    second = store.add(make(hotwords=["b", "a"]), source="y.wav", audio_hash=h)
    store.add_failure(source="z.wav", audio_hash=h, error="e", engine="paraformer", model="paraformer-large",
                      hotwords=["a", "b"], language="zh")  # fmt: skip
    assert store.find_previous(h, key).id == second  # newest done; hotword order does not matter
    assert store.find_previous(h, settings_key("paraformer", "paraformer-large", ["a"], True, "zh")) is None
    assert store.find_previous(h, settings_key("paraformer", "paraformer-large", ["a", "b"], False, "zh")) is None
    assert store.find_previous(audio_hash(b"other"), key) is None
    # The caller may store the key of the requested settings (language "auto" -> transcript says "zh").
    auto = settings_key("paraformer", "paraformer-large", [], True, "auto")
    third = store.add(make(), source="w.wav", audio_hash=h, settings_key=auto)
    assert store.find_previous(h, auto).id == third
    assert first < second < third
    assert settings_key("e", "m", "a b", True, "ZH") == settings_key("e", "m", ["b", "a"], True, "zh")


def test_keep_audio_copies_and_delete_removes(tmp_path: Path) -> None:
    src = tmp_path / "in" / "会议 (1).WAV"
    src.parent.mkdir()
    src.write_bytes(b"RIFF" + os.urandom(5000))
    with HistoryStore(tmp_path / "db" / "history.db", keep_audio=True) as s:
        rid = s.add(make(), source=src.name, audio_hash=audio_hash(src), audio_path=src)
        rec = s.get(rid)
        assert rec.audio_file is not None and rec.audio_file.read_bytes() == src.read_bytes()
        assert rec.audio_file.parent == tmp_path / "db" / "history_audio" and rec.audio_file.name == f"{rid}.wav"
        assert s.stats()["audio_bytes"] == src.stat().st_size
        s.delete([rid])
        assert not rec.audio_file.exists()
    with HistoryStore(tmp_path / "db2" / "history.db") as s:  # off by default
        rid = s.add(make(), source="a.wav", audio_hash="1", audio_path=src)
        assert s.get(rid).audio_file is None and not (tmp_path / "db2" / "history_audio").exists()


def test_hostile_source_names(tmp_path: Path) -> None:
    src = tmp_path / "a.wav"
    src.write_bytes(b"RIFFdata")
    with HistoryStore(tmp_path / "history.db", keep_audio=True) as s:
        names = ["../../etc/passwd.wav", "/abs/evil.wav", "x\\..\\y.wav", "bad\udcff.wav", "a;DROP TABLE records;--"]
        ids = [s.add(make(), source=n, audio_hash="1", audio_path=src) for n in names]
        stored = [s.get(i).source for i in ids]
        assert stored[:3] == names[:3] and stored[4] == names[4] and stored[3] == "bad\ufffd.wav"
        assert ids_of(s.search(source="../../etc/passwd.wav")) == [ids[0]]
        files = sorted(p.name for p in (tmp_path / "history_audio").iterdir())
        assert files == sorted(f"{i}.wav" for i in ids)  # named by id, nothing else written anywhere
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "history.db", "history.db-shm",
                                                                "history.db-wal", "history_audio"]  # fmt: skip


# --------------------------------------------------------------------------- migrations

V1_SCHEMA = """
CREATE TABLE records (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')), source TEXT NOT NULL, audio_hash TEXT NOT NULL,
    settings_key TEXT NOT NULL, duration REAL NOT NULL DEFAULT 0, elapsed REAL NOT NULL DEFAULT 0,
    rtf REAL NOT NULL DEFAULT 0, engine TEXT NOT NULL DEFAULT '', model TEXT NOT NULL DEFAULT '',
    device TEXT NOT NULL DEFAULT '', language TEXT NOT NULL DEFAULT '', hotwords TEXT NOT NULL DEFAULT '[]',
    itn INTEGER NOT NULL DEFAULT 1, error TEXT NOT NULL DEFAULT '', audio_file TEXT);
CREATE TABLE bodies (
    id INTEGER PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE, text TEXT NOT NULL DEFAULT '',
    raw_text TEXT NOT NULL DEFAULT '', segments TEXT NOT NULL DEFAULT '[]');
CREATE INDEX records_created ON records(created_at);
CREATE INDEX records_engine ON records(engine);
CREATE INDEX records_source ON records(source);
CREATE INDEX records_status ON records(status, id, duration);
CREATE INDEX records_hash ON records(audio_hash, settings_key);
PRAGMA user_version = 1;
"""


def test_migration_from_v1_keeps_data(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.executescript(V1_SCHEMA)
    for i, text in enumerate([ZH, MIXED, "旧版本的第三条记录。"], start=1):
        conn.execute(
            "INSERT INTO records (id, created_at, status, source, audio_hash, settings_key, duration, engine)"
            " VALUES (?, ?, 'done', ?, ?, 'k', 2.5, 'paraformer')",
            (i, f"2023-0{i}-01T00:00:00.000000Z", f"old{i}.wav", f"h{i}"),
        )
        conn.execute("INSERT INTO bodies (id, text, segments) VALUES (?, ?, '[[0, 1.5, \"x\"]]')", (i, text))
    conn.commit()
    conn.close()

    with HistoryStore(db) as s:
        assert s._conn().execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert [s.get(i).text for i in (1, 2, 3)] == [ZH, MIXED, "旧版本的第三条记录。"]
        assert s.get(1).created_at == datetime(2023, 1, 1, tzinfo=timezone.utc)
        assert s.get(1).segments == [Segment(0.0, 1.5, "x")]
        assert ids_of(s.search("滨海新")) == [1] and ids_of(s.search("模型")) == [1] and ids_of(s.search("gpu")) == [2]
        assert ids_of(s.search(date_to=date(2023, 2, 15))) == [2, 1]
        new = s.add(make("迁移之后的新记录。"), source="new.wav", audio_hash="n")
        assert new == 4 and ids_of(s.search("记录")) == [4, 3]
    fts_ok(db)
    with HistoryStore(db) as s:  # opening again migrates nothing
        assert s.stats()["count"] == 4


# What migration 2 added, as released (the FTS indexes and their triggers).
V2_ADDITIONS = """
ALTER TABLE bodies ADD COLUMN grams TEXT NOT NULL DEFAULT '';
CREATE VIRTUAL TABLE fts_text USING fts5(
    text, tokenize='trigram', content='bodies', content_rowid='id', columnsize=0);
CREATE VIRTUAL TABLE fts_grams USING fts5(
    grams, tokenize='unicode61 remove_diacritics 0', content='bodies', content_rowid='id',
    detail='none', columnsize=0);
CREATE TRIGGER bodies_ai AFTER INSERT ON bodies BEGIN
    INSERT INTO fts_text(rowid, text) VALUES (new.id, new.text);
    INSERT INTO fts_grams(rowid, grams) VALUES (new.id, new.grams);
END;
CREATE TRIGGER bodies_ad AFTER DELETE ON bodies BEGIN
    INSERT INTO fts_text(fts_text, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO fts_grams(fts_grams, rowid, grams) VALUES ('delete', old.id, old.grams);
END;
CREATE TRIGGER bodies_au AFTER UPDATE OF text, grams ON bodies BEGIN
    INSERT INTO fts_text(fts_text, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO fts_grams(fts_grams, rowid, grams) VALUES ('delete', old.id, old.grams);
    INSERT INTO fts_text(rowid, text) VALUES (new.id, new.text);
    INSERT INTO fts_grams(rowid, grams) VALUES (new.id, new.grams);
END;
PRAGMA user_version = 2;
"""


QA_INDEXES = ["qa_hits_record", "qa_hits_rule"]  # added with the quality-check tables


def schema_names(conn: sqlite3.Connection, kind: str) -> list[str]:
    sql = "SELECT name FROM sqlite_master WHERE type = ? AND name NOT LIKE 'sqlite_%' ORDER BY name"
    return [r[0] for r in conn.execute(sql, (kind,))]


def test_migration_from_v2_keeps_every_record_ids_and_search(tmp_path: Path) -> None:
    db = tmp_path / "v2.db"
    conn = sqlite3.connect(db)
    conn.executescript(V1_SCHEMA + V2_ADDITIONS)
    texts = [ZH, MIXED, "", "第四条记录，已经删除。", "第五条。"]
    for i, text in enumerate(texts, start=1):
        status, error = ("failed", "cannot decode") if not text else ("done", "")
        conn.execute(
            "INSERT INTO records (created_at, status, source, audio_hash, settings_key, duration, elapsed, rtf,"
            " engine, model, hotwords, itn, error, audio_file) VALUES (?, ?, ?, ?, 'k', 2.5, 0.5, 0.2, 'paraformer',"
            " 'paraformer-large', '[\"滨海\"]', 0, ?, ?)",
            (f"2024-0{i}-01T00:00:00.000000Z", status, f"v2-{i}.wav", f"h{i}", error, f"{i}.wav" if i == 2 else None),
        )
        conn.execute(
            "INSERT INTO bodies (id, text, raw_text, segments, grams) VALUES (?, ?, ?, '[[0,1.5,\"x\"]]', ?)",
            (i, text, text, grams(text)),
        )
    conn.execute("DELETE FROM bodies WHERE id = 5")  # the newest is deleted: its id must stay used
    conn.execute("DELETE FROM records WHERE id = 5")
    conn.commit()
    records_before = conn.execute("SELECT * FROM records ORDER BY id").fetchall()
    bodies_before = conn.execute("SELECT * FROM bodies ORDER BY id").fetchall()
    indexes_before, triggers_before = schema_names(conn, "index"), schema_names(conn, "trigger")
    conn.close()
    fts_ok(db)

    with HistoryStore(db) as s:
        conn = s._conn()
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        # Every column as it was; migration 4 appends error_code, unknown (NULL) for these records, 7 an empty name.
        assert conn.execute("SELECT * FROM records ORDER BY id").fetchall() == [(*r, None, "") for r in records_before]
        assert conn.execute("SELECT * FROM bodies ORDER BY id").fetchall() == bodies_before
        assert schema_names(conn, "index") == sorted(
            [*indexes_before, "speakers_name", *QA_INDEXES, "records_name"]
        )  # v5, v6 and v7 add these
        assert schema_names(conn, "trigger") == triggers_before
        assert conn.execute("PRAGMA foreign_key_list(bodies)").fetchone()[2] == "records"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1  # back on after the rebuild
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert ids_of(s.search("滨海新")) == [1] and ids_of(s.search("gpu")) == [2] and ids_of(s.search("条")) == [4]
        assert ids_of(s.search(status="failed")) == [3] and ids_of(s.search(date_to=date(2024, 2, 15))) == [2, 1]
        assert s.get(2).audio_file.name == "2.wav" and s.get(1).hotwords == ["滨海"] and s.get(1).itn is False
        assert s.add(make("迁移之后。"), source="new.wav", audio_hash="n") == 6  # 5 is never reused
        job = s.start_job(source="x.wav", audio_hash="x", settings_key="k")  # the new table works
        s.cancel_job(job)
    fts_ok(db)
    with closing(sqlite3.connect(db)) as conn:  # the new status passes the rebuilt CHECK
        conn.execute("UPDATE records SET status = 'interrupted' WHERE id = 3")
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE records SET status = 'running' WHERE id = 3")


# Schema version 3 as released: migration 3 rebuilt records (status 'interrupted' allowed) and added jobs.
V3_CHANGES = """
CREATE TABLE records_v3 (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed', 'interrupted')), source TEXT NOT NULL,
    audio_hash TEXT NOT NULL, settings_key TEXT NOT NULL, duration REAL NOT NULL DEFAULT 0,
    elapsed REAL NOT NULL DEFAULT 0, rtf REAL NOT NULL DEFAULT 0, engine TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '', device TEXT NOT NULL DEFAULT '', language TEXT NOT NULL DEFAULT '',
    hotwords TEXT NOT NULL DEFAULT '[]', itn INTEGER NOT NULL DEFAULT 1, error TEXT NOT NULL DEFAULT '',
    audio_file TEXT);
INSERT INTO records_v3 SELECT * FROM records;
DROP TABLE records;
ALTER TABLE records_v3 RENAME TO records;
CREATE INDEX records_created ON records(created_at);
CREATE INDEX records_engine ON records(engine);
CREATE INDEX records_source ON records(source);
CREATE INDEX records_status ON records(status, id, duration);
CREATE INDEX records_hash ON records(audio_hash, settings_key);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, owner_pid INTEGER NOT NULL,
    owner_token TEXT NOT NULL, source TEXT NOT NULL, name TEXT NOT NULL DEFAULT '', audio_hash TEXT NOT NULL,
    settings_key TEXT NOT NULL, duration REAL NOT NULL DEFAULT 0, engine TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '', device TEXT NOT NULL DEFAULT '', language TEXT NOT NULL DEFAULT '',
    hotwords TEXT NOT NULL DEFAULT '[]', itn INTEGER NOT NULL DEFAULT 1);
PRAGMA user_version = 3;
"""


def test_migration_from_v3_adds_error_codes_and_keeps_every_record(tmp_path: Path) -> None:
    db = tmp_path / "v3.db"
    conn = sqlite3.connect(db)
    conn.executescript(V1_SCHEMA + V2_ADDITIONS + V3_CHANGES)
    rows = [
        ("done", ZH, ""),
        ("done", MIXED, ""),
        ("failed", "", "bad.wav: the file is too long (20.0 s; the limit is 10.0 s)"),
        ("interrupted", "", INTERRUPTED_ERROR),
        ("done", "第五条，已经删除。", ""),
    ]
    for i, (status, text, error) in enumerate(rows, start=1):
        conn.execute(
            "INSERT INTO records (created_at, status, source, audio_hash, settings_key, duration, engine, error)"
            " VALUES (?, ?, ?, ?, 'k', 2.5, 'paraformer', ?)",
            (f"2024-0{i}-01T00:00:00.000000Z", status, f"v3-{i}.wav", f"h{i}", error),
        )
        conn.execute("INSERT INTO bodies (id, text, grams) VALUES (?, ?, ?)", (i, text, grams(text)))
    conn.execute("DELETE FROM bodies WHERE id = 5")  # the newest is deleted: its id must stay used
    conn.execute("DELETE FROM records WHERE id = 5")
    pid, token = ownership.owner()  # a job of this live process, running across the upgrade
    conn.execute(
        "INSERT INTO jobs (started_at, owner_pid, owner_token, source, audio_hash, settings_key)"
        " VALUES ('2024-06-01T00:00:00.000000Z', ?, ?, 'running.wav', 'r', 'k')",
        (pid, token),
    )
    conn.commit()
    records_before = conn.execute("SELECT * FROM records ORDER BY id").fetchall()
    bodies_before = conn.execute("SELECT * FROM bodies ORDER BY id").fetchall()
    indexes_before, triggers_before = schema_names(conn, "index"), schema_names(conn, "trigger")
    conn.close()
    fts_ok(db)

    with HistoryStore(db) as s:
        conn = s._conn()
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT * FROM records ORDER BY id").fetchall() == [(*r, None, "") for r in records_before]
        assert conn.execute("SELECT * FROM bodies ORDER BY id").fetchall() == bodies_before
        assert schema_names(conn, "index") == sorted(
            [*indexes_before, "speakers_name", *QA_INDEXES, "records_name"]
        )  # v5, v6 and v7 add these
        assert schema_names(conn, "trigger") == triggers_before
        column = [c for c in conn.execute("PRAGMA table_info(records)") if c[1] == "error_code"]
        assert [(c[2], c[3], c[4]) for c in column] == [("TEXT", 0, None)]  # nullable, no default
        assert s.interrupted == [] and jobs_in(db) == ["running.wav"]  # a live process's job is left alone
        assert ids_of(s.search("滨海新")) == [1] and ids_of(s.search("gpu")) == [2] and ids_of(s.search("模型")) == [1]
        assert s.search("第五条").records == [] and ids_of(s.search(status="failed")) == [3]
        old_failure, old_interrupted = s.get(3), s.get(4)
        assert (old_failure.status, old_failure.error_code) == ("failed", None)
        assert old_failure.error == rows[2][2] and old_failure.to_dict()["error_code"] is None
        assert (old_interrupted.status, old_interrupted.error_code) == ("interrupted", None)
        assert s.get(1).error_code is None and s.get(1).to_dict()["error_code"] is None

        new = s.add_failure(source="new.wav", audio_hash="n", error="new.wav: too long", error_code="too_long")
        assert new == 6  # 5 is never reused
        assert s.get(new).error_code == "too_long" and s.get(new).to_dict()["error_code"] == "too_long"
        assert ids_of(s.search(status="failed")) == [new, 3]
        assert s.get(s.add(make("迁移之后。"), source="ok.wav", audio_hash="o")).error_code is None
        assert [d["error_code"] for d in json.loads(s.export_json([3, new]))] == [None, "too_long"]
        csv_rows = list(csv.DictReader(io.StringIO(s.export_csv([3, new]).decode("utf-8-sig"))))
        assert [r["error_code"] for r in csv_rows] == ["", "too_long"]
    fts_ok(db)
    with HistoryStore(db) as s:  # opening again migrates nothing
        assert s.stats()["count"] == 6 and s.get(new).error_code == "too_long"


def v6_file(db: Path) -> Path:
    """Schema version 6 as released: what a file from before records had names holds (made by this version, then
    the name column taken away)."""
    with HistoryStore(db) as s:
        s.add(make(ZH), source="周会.wav", audio_hash="h1")
        s.add(make(MIXED), source="api", audio_hash="h2")  # an API upload: only "api" was kept
        s.add_failure(source="bad.wav", audio_hash="h3", error="bad.wav: cannot decode", error_code="decode_failed")
        s.save_hits(2, [Hit("banned", "forbidden", "GPU", 0.0, 1.25, MIXED[:10], 0)])
    with closing(sqlite3.connect(db)) as conn:
        conn.executescript("DROP INDEX records_name; ALTER TABLE records DROP COLUMN name; PRAGMA user_version = 6;")
    return db


def test_migration_from_v6_adds_names_and_old_records_show_their_source(tmp_path: Path) -> None:
    db = v6_file(tmp_path / "v6.db")
    with closing(sqlite3.connect(db)) as conn:
        records_before = conn.execute("SELECT * FROM records ORDER BY id").fetchall()
        bodies_before = conn.execute("SELECT * FROM bodies ORDER BY id").fetchall()
        indexes_before = schema_names(conn, "index")
    with job_owner(db, "api", "night.wav") as owner:  # an upload running when the old version was killed
        kill(owner)
    with HistoryStore(db) as s:
        conn = s._conn()
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 7
        assert conn.execute("SELECT * FROM records WHERE id <= 3 ORDER BY id").fetchall() == [
            (*r, "") for r in records_before
        ]
        assert conn.execute("SELECT * FROM bodies WHERE id <= 3 ORDER BY id").fetchall() == bodies_before
        assert schema_names(conn, "index") == sorted([*indexes_before, "records_name"])
        old = s.get(2)
        assert (old.name, old.source, old.title, old.to_dict()["name"]) == ("", "api", "api", "api")
        assert [x.name for x in s.qa_report()] == ["api"]  # what there is to show
        (job,) = s.interrupted  # the job's name (kept since version 3) becomes the record's
        assert (s.get(job.record_id).name, s.get(job.record_id).source) == ("night.wav", "api")

        new = s.add(make("新记录，有名字。"), source="api", name="客户来电.wav", audio_hash="h4")
        s.save_hits(new, [Hit("banned", "forbidden", "名字", 0.0, 1.25, "新记录，有名字。", 0)])
        failed = s.add_failure(source="api", name="坏文件.mp3", audio_hash="h5", error="cannot decode")
        (many,) = s.add_many([(make("导入。"), "import", "h6", None, "导入/第一段.wav")])
        assert [(s.get(i).name, s.get(i).source) for i in (new, failed, many)] == [
            ("客户来电.wav", "api"), ("坏文件.mp3", "api"), ("导入/第一段.wav", "import")]  # fmt: skip
        # the file-name filter matches a name or a source; "api" finds old and new uploads
        assert ids_of(s.search(source="客户来电.wav")) == [new] and ids_of(s.search(source="周会.wav")) == [1]
        assert ids_of(s.search(source="api")) == [failed, new, job.record_id, 2]
        assert [x.name for x in s.qa_report()] == ["api", "客户来电.wav"]
        exported = {d["id"]: d["name"] for d in json.loads(s.export_json([1, 2, new]))}
        assert exported == {1: "周会.wav", 2: "api", new: "客户来电.wav"}
        rows = list(csv.DictReader(io.StringIO(s.export_csv([2, new]).decode("utf-8-sig"))))
        assert [(r["source"], r["name"]) for r in rows] == [("api", "api"), ("api", "客户来电.wav")]
        with zipfile.ZipFile(io.BytesIO(s.export_zip([1, 2, new], "json"))) as zf:
            assert zf.namelist() == ["000001_周会.json", "000002_api.json", f"{new:06d}_客户来电.json"]
            assert json.loads(zf.read(f"{new:06d}_客户来电.json"))["name"] == "客户来电.wav"
    with HistoryStore(db) as s:  # opening again migrates nothing
        assert s.get(new).name == "客户来电.wav" and s.stats()["count"] == 7


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "future.db"
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        HistoryStore(db)


# --------------------------------------------------------------------------- concurrency and crashes

WRITER = """
import sys
from pathlib import Path
from funasr_webui.history import open_store
from funasr_webui.transcript import Transcript, Segment
db, tag, n, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
store = open_store(db)
text = "进程写入测试，" * 40
def item(i):
    t = Transcript(text=f"{tag}-{i} " + text, raw_text=text, segments=[Segment(0, 1, text)], duration=1.0)
    return t, f"{tag}-{i}.wav", f"{tag}{i}"
for i in range(0, n, batch):
    if batch == 1:
        t, source, h = item(i)
        ids = [store.add(t, source=source, audio_hash=h)]
    else:  # one transaction of `batch` records, so a kill lands inside a transaction
        ids = store.add_many([item(j) for j in range(i, i + batch)])
    print(" ".join(map(str, ids)), flush=True)  # only after the commit returned
"""


def _writer(db: Path | str, tag: str, n: int, batch: int = 1) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen([sys.executable, "-c", WRITER, str(db), tag, str(n), str(batch)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip


def test_concurrent_threads_lose_nothing(store: HistoryStore) -> None:
    errors: list[BaseException] = []
    ids: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(10)

    def writer(w: int) -> None:
        try:
            start.wait()
            for i in range(50):
                rid = store.add(make(f"线程{w}第{i}条记录。"), source=f"t{w}-{i}.wav", audio_hash=f"{w}-{i}")
                with lock:
                    ids.append(rid)
        except BaseException as e:
            errors.append(e)

    def reader() -> None:
        try:
            start.wait()
            for _ in range(60):
                store.search("记录", limit=5)
                store.search("线程")
                store.stats()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(ids)) == 400 and store.stats()["count"] == 400
    for w in range(8):
        assert store.search(f"线程{w}第", limit=1).total == 50
    db_ok(store)


def test_concurrent_processes_lose_nothing(history_db: Path | str) -> None:
    db = history_db  # not created yet: the processes also race to create and migrate it
    procs = [_writer(db, f"p{k}", 50) for k in range(4)]
    with open_store(db) as mine:  # and this process writes at the same time
        mine_ids = [mine.add(make(f"主进程第{i}条。"), source="main.wav", audio_hash=str(i)) for i in range(50)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "locked" not in err
    child_ids = [int(x) for out, _ in outs for x in out.split()]
    assert len(child_ids) == 200 and len(set(child_ids + mine_ids)) == 250
    with open_store(db) as s:
        assert s.stats()["count"] == 250
        for k in range(4):
            assert len(s.search_ids(f"p{k}-")) == 50
        db_ok(s)


def test_sigkill_mid_write_leaves_a_sound_database(history_db: Path | str) -> None:
    db = history_db
    open_store(db).close()
    committed: list[int] = []
    for round_ in range(3):
        proc = _writer(db, f"k{round_}", 100000, batch=1 if round_ == 0 else 25)
        got = 0
        deadline = time.monotonic() + 30
        while got < 20 + 7 * round_ and time.monotonic() < deadline:  # kill at a different point each round
            ids = [int(x) for x in proc.stdout.readline().split()]
            committed += ids
            got += len(ids)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        assert got >= 20
    with open_store(db) as s:
        db_ok(s)
        for rid in committed:
            rec = s.get(rid)
            assert rec is not None and rec.text.split(" ")[0] == rec.source[: -len(".wav")]
        assert s.stats()["count"] >= len(committed)
        assert set(committed) <= set(s.search_ids("进程写入测试"))
        for round_ in (1, 2):  # a batch is one transaction: all of it or none of it
            assert len(s.search_ids(f"k{round_}-")) % 25 == 0
        s.add(make(), source="after.wav", audio_hash="x")  # still writable


def test_store_survives_fork(store: HistoryStore) -> None:
    require(hasattr(os, "fork"), "os.fork is not available on this platform")
    a = store.add(make("分叉之前。"), source="a", audio_hash="1")
    pid = os.fork()
    if pid == 0:  # child: the inherited connection is dropped, a fresh one is opened
        code = 1
        try:
            store.add(make("子进程写的。"), source="child", audio_hash="2")
            code = 0 if store.get(a) is not None else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [r.source for r in store.search(limit=5).records] == ["child", "a"]  # the parent's connection still works
    store.add(make("分叉之后。"), source="b", audio_hash="3")


# --------------------------------------------------------------------------- jobs: running and interrupted


def test_running_job_is_invisible_until_it_becomes_its_record(store: HistoryStore, history_db: Path | str) -> None:
    db = history_db
    h = audio_hash(b"meeting")
    key = settings_key("paraformer", "paraformer-large", [], True, "zh")
    job = store.start_job(source="a.wav", audio_hash=h, settings_key=key, engine="paraformer", duration=2.5)
    assert jobs_in(db) == ["a.wav"]
    assert store.search().records == [] and store.search_ids() == [] and store.search(status="done").total == 0
    assert store.find_previous(h, key) is None and store.stats()["count"] == 0
    assert json.loads(store.export_json()) == []
    rid = store.add(make(ZH), source="a.wav", audio_hash=h, job=job)  # the job ends in its record's transaction
    assert store.find_previous(h, key).id == rid and jobs_in(db) == []

    failing = store.start_job(source="b.wav", audio_hash="b", settings_key="k")
    failed = store.add_failure(source="b.wav", audio_hash="b", error="RuntimeError: CUDA", job=failing)
    store.cancel_job(store.start_job(source="c.wav", audio_hash="c", settings_key="k"))  # refused: no record
    assert jobs_in(db) == [] and ids_of(store.search()) == [failed, rid]
    st = store.stats()
    assert (st["count"], st["done"], st["failed"], st["interrupted"]) == (2, 1, 1, 0)
    with open_store(db) as again:
        assert again.interrupted == []


def test_killed_process_job_becomes_interrupted_on_open_but_live_ones_do_not(history_db: Path | str) -> None:
    db = history_db
    with open_store(db) as s:
        done = s.add(make(ZH), source="done.wav", audio_hash="d")
        mine = s.start_job(source="mine.wav", audio_hash="m", settings_key="k")  # this live process's job
    with job_owner(db, "alive.wav"), job_owner(db, "killed.wav") as killed:
        kill(killed)
        with open_store(db) as s:
            (job,) = s.interrupted
            rec = s.get(job.record_id)
            assert (job.source, job.name) == ("killed.wav", "killed.wav")
            assert (rec.status, rec.source, rec.audio_hash, rec.settings_key) == ("interrupted", "killed.wav",
                                                                                  "h-killed.wav", "k")  # fmt: skip
            assert rec.error == INTERRUPTED and rec.text == "" and rec.segments == []
            assert (rec.engine, rec.model, rec.device, rec.language) == ("whisper", "whisper-base", "cpu", "zh")
            assert (rec.hotwords, rec.itn, rec.duration) == (["夜班", "night"], False, 12.5)
            assert rec.id > done and rec.created_at >= s.get(done).created_at
            assert ids_of(s.search()) == [rec.id, done] and ids_of(s.search(status="interrupted")) == [rec.id]
            assert s.search(status="failed").records == [] and s.find_previous("h-killed.wav", "k") is None
            st = s.stats()
            assert (st["count"], st["done"], st["failed"], st["interrupted"]) == (2, 1, 0, 1)
            with zipfile.ZipFile(io.BytesIO(s.export_zip(None, "txt"))) as zf:
                assert len(zf.namelist()) == 1  # no transcript to export
            assert json.loads(s.export_json([rec.id]))[0]["status"] == "interrupted"
        assert jobs_in(db) == ["mine.wav", "alive.wav"]
        with open_store(db) as s:  # reported once
            assert s.interrupted == []
    with open_store(db) as s:  # job_owner killed the other one on the way out
        assert [job.source for job in s.interrupted] == ["alive.wav"]
        assert jobs_in(db) == ["mine.wav"]
        s.add(make(), source="mine.wav", audio_hash="m", job=mine)
    assert jobs_in(db) == []


def test_job_owner_is_the_process_not_just_its_pid(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    HistoryStore(db).close()
    with job_owner(db, "a.wav"):
        with closing(sqlite3.connect(db)) as conn:
            pid, token = conn.execute("SELECT owner_pid, owner_token FROM jobs").fetchone()
        assert ownership.owner_alive(pid, token)
        assert not ownership.owner_alive(pid, token + "0")  # the pid reused by a later process is not the owner
    assert not ownership.owner_alive(pid, token)
    me, mine = ownership.owner()
    assert me == os.getpid() and ownership.owner_alive(me, mine)
    assert not ownership.owner_alive(me, "a process before a restart that had this pid")


def test_cli_lists_interrupted_records(history_db: Path | str) -> None:
    db = history_db
    with open_store(db) as s:
        s.add(make(ZH), source="done.wav", audio_hash="d")
    with job_owner(db, "api", "night-shift.wav") as owner:  # an API upload: the source is only "api"
        kill(owner)
    code, out = cli(db, "list")
    assert code == 0 and "[interrupted] the server stopped before" in out
    code, out = cli(db, "list", "--status", "interrupted")
    assert code == 0 and " night-shift.wav " in out and "done.wav" not in out  # its name, not just "api"
    rid = out.split()[out.split().index("text") + 1]
    code, out = cli(db, "show", rid)
    assert "status: interrupted: the server stopped before this transcription finished\n" in out
    assert "      name: night-shift.wav\n" in out and "    source: api\n" in out
    assert "2 (1 done, 0 failed, 1 interrupted)" in cli(db, "stats")[1]


# --------------------------------------------------------------------------- CLI


def cli(db: Path | str, *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    history_cli.register(parser.add_subparsers(dest="command"))
    out = io.StringIO()
    code = history_cli.run(parser.parse_args(["history", "--db", str(db), *argv]), out)
    return code, out.getvalue()


def test_cli_verbs(history_db: Path | str, tmp_path: Path, capsys) -> None:
    db = history_db
    with open_store(db) as s:
        a = s.add(make(ZH), source="会议记录.wav", audio_hash="1")
        b = s.add(make(MIXED, engine="whisper"), source="b.wav", audio_hash="2")

    code, out = cli(db, "list")
    assert code == 0 and "会议记录.wav" in out and "b.wav" in out and out.index("b.wav") < out.index("会议记录")
    code, out = cli(db, "search", "滨海新区")
    assert code == 0 and "会议记录.wav" in out and "b.wav" not in out
    assert "no records" in cli(db, "search", "火星")[1]
    assert (
        "whisper" in cli(db, "list", "--engine", "whisper")[1]
        and "会议" not in cli(db, "list", "--engine", "whisper")[1]
    )
    code, out = cli(db, "show", str(a))
    assert code == 0 and ZH in out and "paraformer" in out
    assert cli(db, "show", str(a), "--format", "srt")[1] == ZH_SRT
    assert cli(db, "show", "999")[0] == 1
    code, out = cli(db, "export", "--format", "json")
    assert code == 0 and [d["id"] for d in json.loads(out)] == [a, b]
    code, out = cli(db, "export", "OpenAI", "--format", "csv")
    assert code == 0 and "OpenAI" in out and "滨海" not in out
    assert cli(db, "export", "--format", "zip-srt")[0] == 2  # zip needs --out
    zpath = tmp_path / "out.zip"
    assert cli(db, "export", "--format", "zip-txt", "--out", str(zpath))[0] == 0
    assert len(zipfile.ZipFile(zpath).namelist()) == 2
    code, out = cli(db, "stats")
    assert code == 0 and "2 (2 done, 0 failed)" in out
    assert cli(db, "list", "--from", "not-a-date")[0] == 2
    assert cli(db, "delete", str(b)) == (0, "deleted 1 of 1 records\n")
    code, out = cli(db, "purge", "--older-than-days", "0")
    assert code == 0 and "purged 1" in out
    assert cli(tmp_path / "missing.db", "list")[0] == 1 and not (tmp_path / "missing.db").exists()
    capsys.readouterr()


def test_backup_is_a_complete_copy_and_csv_cells_cannot_run_formulas(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.db")
    t = Transcript(text='=HYPERLINK("http://x")欢迎大家', raw_text="", segments=[Segment(0, 1, "欢迎大家")])
    rid = store.add(t, source="@evil.wav", audio_hash="h1")
    copy = store.backup(tmp_path / "backup" / "copy.db")
    store.close()
    restored = HistoryStore(copy)
    assert restored.get(rid).text == t.text
    assert restored.search("欢迎大家").total == 1
    rows = list(csv.reader(io.StringIO(restored.export_csv().decode("utf-8-sig"))))
    header, row = rows[0], rows[1]
    assert row[header.index("text")].startswith("'=HYPERLINK")
    assert row[header.index("source")] == "'@evil.wav"
    restored.close()
