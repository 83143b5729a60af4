"""What only the PostgreSQL back end has: one database shared by several processes and machines (two app processes,
racing migrations, job leases), its own failure modes (server out of reach, read-only, a newer schema), the same
search results as SQLite's for the same records, and what it leaves to PostgreSQL's own tools (pg_dump).

Everything runs on a real PostgreSQL server (tests/postgres_server.py); test_history.py runs the whole store suite
on both back ends besides.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from funasr_webui.history import SCHEMA_VERSION, HistoryError, HistoryStore, is_postgres_url, open_store
from funasr_webui.history import jobs as history_jobs
from funasr_webui.history.store import default_audio_dir
from funasr_webui.settings import PROJECT_ROOT, Settings
from funasr_webui.transcript import Segment, Transcript
from tests.helpers import LiveServer, _query, free_port, jobs_in
from tests.postgres_server import PostgresServer
from tests.test_history import MIXED, ZH, cli, make

TEXTS = [
    ZH,
    MIXED,
    "客户说发票金额不对，要求重新开具增值税专用发票。",
    "请问您的订单号是多少？我帮您查一下物流信息。",
    "Hello 你好，100% 满意 under_score 和 a\\b 路径。",
    "今天天气很好，我们去滨海新区走走。",
    "",
]


def _run(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "funasr_webui", *argv], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def test_a_url_is_a_postgres_database_and_a_path_a_file(tmp_path: Path) -> None:
    assert is_postgres_url("postgresql://app@db.internal:5433/history") and is_postgres_url("postgres://a@b/c")
    assert not is_postgres_url(str(tmp_path / "history.db")) and not is_postgres_url(tmp_path / "x")
    settings = Settings(db="postgresql://app@db.internal/history")
    assert settings.db == "postgresql://app@db.internal/history"  # never folded into a Path
    assert Settings(db=str(tmp_path / "h.db")).db == tmp_path / "h.db"
    assert default_audio_dir("postgresql://app:pw@db.internal/history") == PROJECT_ROOT / "history_audio"


# --------------------------------------------------------------------------- the same results as SQLite's


def test_search_finds_the_same_records_as_sqlite(tmp_path: Path, pg_url: str) -> None:
    base = datetime(2024, 3, 1, 9, tzinfo=timezone.utc)
    items = [(make(t or "。", engine=("paraformer", "whisper")[i % 2]), f"call{i % 3}.wav", f"h{i}",
              base + timedelta(hours=i)) for i, t in enumerate(TEXTS * 3)]  # fmt: skip
    lite, pg = HistoryStore(tmp_path / "h.db"), open_store(pg_url)
    try:
        for store in (lite, pg):
            ids = store.add_many(items)
            store.add_failure(source="bad.wav", audio_hash="x", error="cannot decode", engine="whisper")
            store.set_speaker_names(ids[0], {"S1": "张经理"})
            store.set_speaker_names(ids[8], {"S2": "张经理", "S1": "Li Gong"})
        queries = ["", "发票", "发", "票", "滨海新区", "天气 滨海", "openai", "WHISPER", "gpu", "PU", "100%", "%",
                   "_", "under_score", "a\\b", "\\", '"FunASR Paraformer"', '"Paraformer FunASR"', "订单号 物流",
                   "您", "火星", "*", "-", "你好", "hello 你好", "的"]  # fmt: skip
        filters = [{}, {"engine": "whisper"}, {"source": "call1.wav"}, {"status": "failed"}, {"speaker": "张经理"},
                   {"speaker": "li gong"}, {"date_from": base + timedelta(hours=5), "date_to": base +
                   timedelta(hours=12)}, {"date_from": "2024-03-01", "date_to": "2024-03-01"}]  # fmt: skip
        for q in queries:
            for f in filters:
                want, got = lite.search(q, limit=7, **f), pg.search(q, limit=7, **f)
                assert [r.id for r in got.records] == [r.id for r in want.records], (q, f)
                assert (got.total, got.total_exact) == (want.total, want.total_exact), (q, f)
                assert pg.search_ids(q, **f) == lite.search_ids(q, **f), (q, f)
        assert pg.speaker_names() == lite.speaker_names() == ["张经理", "Li Gong"]
        exported = [json.loads(store.export_json()) for store in (lite, pg)]
        for record in exported[0] + exported[1]:
            record.pop("created_at") if record["status"] == "failed" else None  # saved "now", in each store
        assert exported[1] == exported[0] and pg.stats()["count"] == lite.stats()["count"] == 22
    finally:
        lite.close()
        pg.close()


# --------------------------------------------------------------------------- several processes, several machines


def test_processes_starting_together_create_the_tables_once(postgres_server: PostgresServer) -> None:
    url = postgres_server.new_database(empty=True)  # not even pg_trgm: the first process creates it
    code = "import sys; from funasr_webui.history import open_store; open_store(sys.argv[1]).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code, url], cwd=PROJECT_ROOT, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]  # fmt: skip
    for p in procs:
        assert p.wait(timeout=60) == 0, p.stderr.read()
        p.stderr.close()
    with open_store(url) as s:
        conn = s._conn()
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert conn.execute("SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'").fetchone() is not None
        assert s.search("发票").records == []
    postgres_server.drop_database(url)


def test_the_database_owner_needs_no_superuser(postgres_server: PostgresServer) -> None:
    """pg_trgm is a trusted extension: a plain role owning the database creates it (README's recipe)."""
    postgres_server._admin("DROP ROLE IF EXISTS webui_owner")
    postgres_server._admin("CREATE ROLE webui_owner LOGIN")
    postgres_server._admin("CREATE DATABASE owned_by_app OWNER webui_owner TEMPLATE template0")
    url = postgres_server.url("owned_by_app", user="webui_owner")
    try:
        with open_store(url) as s:
            assert s._conn().execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (
                False,
            )
            rid = s.add(make(ZH), source="a.wav", audio_hash="1")
            assert [r.id for r in s.search("滨海新区").records] == [rid]
    finally:
        postgres_server.drop_database(url)


def test_another_machines_job_is_interrupted_once_its_lease_runs_out(pg_url: str) -> None:
    with open_store(pg_url) as s:
        mine = s.start_job(source="mine.wav", audio_hash="m", settings_key="k")
        conn = s._conn()
        insert = (
            "INSERT INTO jobs (started_at, owner_pid, owner_token, owner_host, heartbeat_at, source, audio_hash,"
            " settings_key) VALUES ('2024-06-01T00:00:00.000000Z', ?, ?, ?, now() - ?::interval, ?, 'h', 'k')"
        )
        # Other machines' jobs (another boot id): their pids mean nothing here, only their leases count.
        conn.execute(insert, (os.getpid(), "other-boot/1", "gpu-2", "5 seconds", "fresh.wav"))
        conn.execute(insert, (1, "other-boot/2", "gpu-3", f"{history_jobs.LEASE_S + 5} seconds", "stale.wav"))
        conn.execute("UPDATE jobs SET heartbeat_at = now() - interval '30 seconds' WHERE id = ?", (mine,))
        before = conn.execute("SELECT heartbeat_at FROM jobs WHERE id = ?", (mine,)).fetchone()[0]
        s._heartbeat.beat()  # what the heartbeat thread does every HEARTBEAT_S
        after = conn.execute("SELECT heartbeat_at FROM jobs WHERE id = ?", (mine,)).fetchone()[0]
        assert after - before >= timedelta(seconds=29)
        host = conn.execute("SELECT owner_host FROM jobs WHERE id = ?", (mine,)).fetchone()[0]
        assert host and host == os.uname().nodename
    with open_store(pg_url) as s:
        assert [(j.source, s.get(j.record_id).status) for j in s.interrupted] == [("stale.wav", "interrupted")]
        assert jobs_in(pg_url) == ["mine.wav", "fresh.wav"]
        s.add(make(), source="mine.wav", audio_hash="m", job=mine)


def test_add_many_copies_rows_exactly_as_inserts_write_them(postgres_server, pg_url: str, monkeypatch) -> None:
    """The bulk path (COPY) against the row-by-row one, on two fresh databases: every table the same."""
    from funasr_webui.history import records

    def items() -> list[tuple]:
        called = make("张经理说：你好\x00世界。", hotwords=["达摩院", "滨海新区"])
        called.speaker_names = {"S1": "张经理", "S2": ""}
        at = datetime(2024, 6, 1, 8, tzinfo=timezone.utc)
        return [
            (make(ZH), "a.wav", "h1", at),
            (called, "api", "h2", at + timedelta(hours=1), "客户来电.wav"),
            (make(MIXED, engine="whisper", language="en"), "b.wav", "h3", at - timedelta(days=1)),  # raised
        ]

    def dump(url: str) -> list:
        return [
            _query(url, "SELECT * FROM records ORDER BY id"),
            _query(url, "SELECT * FROM bodies ORDER BY id"),
            _query(url, "SELECT * FROM speakers ORDER BY record_id, label"),
        ]

    other = postgres_server.new_database()
    try:

        def row_by_row(conn, floor, rows) -> list[int]:  # what add_many did before COPY
            return [records.insert(conn, floor, **r) for r in rows]

        with open_store(other) as s, monkeypatch.context() as m:
            m.setattr(records, "insert_many_pg", row_by_row)
            by_rows = s.add_many(items())
            by_rows.append(s.add(make("之后。"), source="c.wav", audio_hash="h4"))
        with open_store(pg_url) as s:
            by_copy = s.add_many(items())
            by_copy.append(s.add(make("之后。"), source="c.wav", audio_hash="h4"))  # the identity moved on
            assert [r.id for r in s.search("你好").records] == [by_copy[1]]  # the grams are searchable
        assert by_copy == by_rows == [1, 2, 3, 4]
        copied, inserted = dump(pg_url), dump(other)
        for table in (copied, inserted):
            table[0][3] = table[0][3][:1] + table[0][3][2:]  # add()'s own time is now: set apart
        assert copied == inserted
        assert _query(pg_url, "SELECT name FROM speakers") == [("张经理",)]
    finally:
        postgres_server.drop_database(other)


def test_a_forked_child_renews_the_lease_of_its_own_jobs(pg_url: str, monkeypatch) -> None:
    from funasr_webui.history import heartbeat

    monkeypatch.setattr(heartbeat, "HEARTBEAT_S", 0.2)  # a beat every 0.2 s instead of 10 s
    with open_store(pg_url) as s:
        pid = os.fork()
        if pid == 0:  # the child starts a job of its own and runs with it for a while
            code = 1
            try:
                job = s.start_job(source="child.wav", audio_hash="c", settings_key="k")
                time.sleep(1.5)
                age = s._conn().execute("SELECT now() - heartbeat_at FROM jobs WHERE id = ?", (job,)).fetchone()[0]
                code = 0 if age < timedelta(seconds=0.8) else 3  # renewed by the child's own heartbeat
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the child's job was not renewed"
        assert s._heartbeat._thread.is_alive()  # the parent's heartbeat beats on


def _start_app(url: str, log: Path) -> tuple[subprocess.Popen, str]:
    """`python app.py --db postgresql://...` as an operator starts it on a second machine."""
    port = free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "app.py", "--offline", "--engine", "whisper", "--threads", "1",
                                 "--port", str(port), "--db", url], cwd=PROJECT_ROOT, stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            if requests.get(base + "/health", timeout=2).status_code == 200:
                return proc, base
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise AssertionError("the second app did not start")


def test_two_app_processes_on_one_database_see_each_others_records(
    whisper_pipeline, pg_url: str, shared_audio: Path, tmp_path: Path
) -> None:
    from funasr_webui.server import create_app
    from funasr_webui.service import TranscriptionService

    settings = Settings(engine="whisper", offline=True, threads=2, device="cpu", db=pg_url)
    history = open_store(pg_url)
    saved = whisper_pipeline.settings
    whisper_pipeline.settings = settings
    other, other_url = _start_app(pg_url, tmp_path / "other.log")
    try:
        with LiveServer(create_app(TranscriptionService(settings, whisper_pipeline, history))) as here:
            audio = (shared_audio / "zh" / "asr_example.wav").read_bytes()
            r = requests.post(here.url + "/api/v1/transcriptions", files={"file": ("here.wav", audio)}, timeout=120)
            assert r.status_code == 200, r.text
            mine = r.json()["id"]
            word = r.json()["text"][2:5]  # three characters of what was said, searched for on the other app
            seen = requests.get(other_url + "/api/v1/history", params={"q": word}, timeout=10).json()
            assert [i["id"] for i in seen["items"]] == [mine], word  # at once: no copy, no sync
            r = requests.post(other_url + "/api/v1/transcriptions", files={"file": ("there.wav", audio)}, timeout=120)
            assert r.status_code == 200, r.text
            theirs = r.json()["id"]
            page = requests.get(here.url + "/api/v1/history", timeout=10).json()
            assert [i["id"] for i in page["items"]] == [theirs, mine]
            assert requests.get(f"{here.url}/api/v1/history/{theirs}", timeout=10).json()["text"] == r.json()["text"]
        listed = _run("history", "--db", pg_url, "list", "--format", "json")  # a third process, the CLI
        assert listed.returncode == 0, listed.stderr
        assert [r["id"] for r in json.loads(listed.stdout)] == [theirs, mine]
    finally:
        other.terminate()
        other.wait(timeout=30)
        whisper_pipeline.settings = saved
        history.close()


# --------------------------------------------------------------------------- failures


def test_a_server_out_of_reach_fails_at_once_with_one_clear_line() -> None:
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/history"
    t0 = time.monotonic()
    with pytest.raises(HistoryError, match="Connection refused") as e:
        open_store(url)
    assert "\n" not in str(e.value) and time.monotonic() - t0 < 10
    served = _run("serve", "--offline", "--engine", "whisper", "--db", url, timeout=60)
    assert served.returncode == 1 and "Traceback" not in served.stderr
    assert f"error: cannot open the history database {url}: " in served.stderr
    assert f"错误：无法打开历史数据库 {url}：" in served.stderr
    listed = _run("history", "--db", url.replace("nobody@", "nobody:secret@"), "list", timeout=60)
    assert listed.returncode == 1 and "cannot open history database" in listed.stderr
    assert "secret" not in listed.stderr and "Traceback" not in listed.stderr  # the password is never shown


def test_database_failures_are_history_errors(pg_url: str) -> None:
    import psycopg

    with open_store(pg_url) as store:
        rid = store.add(make(), source="a.wav", audio_hash="1")
        job = store.start_job(source="b.wav", audio_hash="2", settings_key="k")
        store._conn().execute("SET default_transaction_read_only = on")  # as on a read-only replica
        for write in [
            lambda: store.add(make(), source="c.wav", audio_hash="3"),
            lambda: store.add_failure(source="d.wav", audio_hash="4", error="e", error_code="not_media"),
            lambda: store.cancel_job(job),
            lambda: store.delete([rid]),
            lambda: store.set_speaker_names(rid, {"S1": "张经理"}),
        ]:
            with pytest.raises(HistoryError, match="read-only transaction") as failed:
                write()
            assert isinstance(failed.value.__cause__, psycopg.Error)
        assert store.get(rid) is not None and store.stats()["count"] == 1  # reads still work
        store._conn().execute("SET default_transaction_read_only = off")
        store.cancel_job(store.start_job(source="f.wav", audio_hash="6", settings_key="k"))  # drops the stale job
        assert jobs_in(pg_url) == []


def test_a_newer_schema_is_refused(pg_url: str) -> None:
    open_store(pg_url).close()
    with open_store(pg_url) as s:
        s._conn().execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(RuntimeError, match="newer"):  # as for a newer SQLite file
        open_store(pg_url)


def test_backup_is_left_to_pg_dump_and_text_keeps_every_character(pg_url: str, tmp_path: Path) -> None:
    with open_store(pg_url) as s:
        t = Transcript(text="空字符\x00之后", raw_text="", segments=[Segment(0, 1, "空字符\x00之后")])
        rid = s.add(t, source="nul\x00.wav", audio_hash="h")
        assert s.get(rid).text == "空字符\ufffd之后"  # PostgreSQL's text cannot hold NUL
        with pytest.raises(ValueError, match="pg_dump"):
            s.backup(tmp_path / "copy.db")
    assert cli(pg_url, "backup", str(tmp_path / "copy.db"))[0] == 2 and not (tmp_path / "copy.db").exists()


def test_a_connection_the_server_dropped_is_opened_again(pg_url: str, postgres_server: PostgresServer) -> None:
    """A restarted or failed-over server: the call that finds the connection gone fails, the next one reconnects."""
    with open_store(pg_url) as s:
        rid = s.add(make(ZH), source="a.wav", audio_hash="1")
        backend = s._conn().execute("SELECT pg_backend_pid()").fetchone()[0]
        postgres_server._admin(f"SELECT pg_terminate_backend({int(backend)})")
        with pytest.raises(HistoryError, match="terminat"):
            s.get(rid)
        assert s.get(rid).text == ZH and s._conn().execute("SELECT pg_backend_pid()").fetchone()[0] != backend


def test_a_version_6_database_is_upgraded_and_keeps_its_records(pg_url: str) -> None:
    with open_store(pg_url) as s:
        rid = s.add(make(ZH), source="api", audio_hash="1", name="周会.wav")
        conn = s._conn()  # the database as schema version 6 left it (before records.name)
        conn.execute("DROP INDEX records_name")
        conn.execute("ALTER TABLE records DROP COLUMN name")
        conn.execute("UPDATE schema_version SET version = 6")
    with open_store(pg_url) as s:
        conn = s._conn()
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)] == [(7,)]
        assert s.get(rid).text == ZH and s.get(rid).name == ""  # older rows: the source names them
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'records_name'").fetchone() == (1,)
        new = s.add(make(MIXED), source="api", audio_hash="2", name="周会.wav")
        assert [r.id for r in s.search(source="周会.wav").records] == [new]
        assert [r.id for r in s.search(source="api").records] == [new, rid]
