"""The work queue on a real PostgreSQL: `ingest --queue` and three `worker` processes (the embedded Whisper engine)
draining 30 real shared-audio files, one worker SIGKILLed mid-file, SIGTERM giving a job back, a job whose workers
keep dying given up, the queue's tables created once by racing processes, and POST /api/v1/jobs, /health and the
Batch tab of a server started with --queue."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
import requests
import soundfile as sf

from funasr_webui.errors import UserError
from funasr_webui.history import open_store
from funasr_webui.history.work_queue import JobSpec, WorkQueue
from funasr_webui.settings import PROJECT_ROOT, Settings
from funasr_webui.worker import Worker
from tests.test_browser import Session, browser, expect  # noqa: F401  (browser: the module's Chromium fixture)

ENV = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
LEASE_S = 5


def cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "funasr_webui", *argv]


def worker_cmd(url: str, *extra: str) -> list[str]:
    return cli("worker", "--db", url, "--offline", "--engine", "whisper", "--threads", "1",
               "--lease-seconds", str(LEASE_S), "--poll", "0.3", *extra)  # fmt: skip


def rows(url: str, sql: str, *params) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def calls(shared_audio: Path, tmp_path_factory) -> Path:
    """30 recordings of distinct content: the shared clips with 0-3 pads of silence in front, and first (the
    oldest job) one longer call of four clips, so a worker can be caught in the middle of a file."""
    out = tmp_path_factory.mktemp("calls")
    clips = sorted((shared_audio / "tts").glob("d0*.wav"))
    audio = [sf.read(c, dtype="float32") for c in clips]
    rate = audio[0][1]
    sf.write(out / "00-long.wav", np.concatenate([a for a, _ in audio[:4]]), rate)
    n = 0
    for pad in range(4):
        for clip, (samples, r) in zip(clips, audio, strict=True):
            if n == 29:
                break
            n += 1
            sf.write(out / f"{n:02d}-{clip.stem}.wav", np.concatenate([np.zeros(int(pad * 0.2 * r)), samples]), r)
    assert len(list(out.glob("*.wav"))) == 30
    return out


@pytest.fixture(scope="module")
def drained(postgres_server, calls: Path) -> dict:
    """`ingest --queue`, then three workers; the one that takes the long call is SIGKILLed in the middle of it."""
    url = postgres_server.new_database()
    queued = subprocess.run(cli("ingest", str(calls), "--queue", "--db", url, "--engine", "whisper", "--settle", "0"),
                            cwd=PROJECT_ROOT, env=ENV, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert queued.returncode == 0, queued.stderr
    long_job = rows(url, "SELECT id FROM queue_jobs WHERE source = '00-long.wav'")[0][0]
    procs = [subprocess.Popen(worker_cmd(url, "--until-empty"), cwd=PROJECT_ROOT, env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(3)]  # fmt: skip
    by_pid = {p.pid: p for p in procs}
    try:
        deadline = time.monotonic() + 120
        while True:  # the worker doing the long call, caught in the middle of it
            holder = rows(url, "SELECT id, pid FROM queue_workers WHERE current_job = %s", long_job)
            if holder:
                break
            assert time.monotonic() < deadline, "no worker took the long call"
            time.sleep(0.05)
        victim_id, victim_pid = holder[0]
        time.sleep(1.0)  # well into the file (13 s of audio on a shared core)
        victim = by_pid[victim_pid]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        survivors = [p for p in procs if p is not victim]
        codes = [p.wait(timeout=300) for p in survivors]
        outputs = [p.stdout.read() for p in survivors]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
    again = subprocess.run(cli("ingest", str(calls), "--queue", "--db", url, "--engine", "whisper", "--settle", "0"),
                           cwd=PROJECT_ROOT, env=ENV, capture_output=True, text=True, timeout=60)  # fmt: skip
    yield {"url": url, "queued": queued, "again": again, "long_job": long_job, "victim": victim_id,
           "codes": codes, "outputs": outputs}  # fmt: skip
    postgres_server.drop_database(url)


def test_three_workers_transcribe_every_file_exactly_once(drained: dict, calls: Path) -> None:
    url = drained["url"]
    assert "30 queued" in drained["queued"].stdout
    assert drained["codes"] == [0, 0], drained["outputs"]  # --until-empty: both exit once the queue is empty
    records = rows(url, "SELECT source, status, audio_hash FROM records ORDER BY id")
    assert sorted(s for s, _, _ in records) == sorted(p.name for p in calls.glob("*.wav"))  # no loss, no duplicate
    assert {status for _, status, _ in records} == {"done"}  # the kill left no 'interrupted' record either
    assert len({h for _, _, h in records}) == 30
    jobs = rows(url, "SELECT state, record_id FROM queue_jobs")
    assert len(jobs) == 30 and {s for s, _ in jobs} == {"done"}
    assert len({r for _, r in jobs}) == 30
    assert rows(url, "SELECT count(*) FROM jobs") == [(0,)]  # workers never leave a history job behind
    done = rows(url, "SELECT jobs_done FROM queue_workers WHERE id <> %s", drained["victim"])
    assert sum(d for (d,) in done) >= 29 and all(d > 0 for (d,) in done)  # the work was shared
    # the next night's run queues nothing again
    assert "0 queued, 30 skipped" in drained["again"].stdout, drained["again"].stdout


def test_a_killed_workers_file_is_done_by_another(drained: dict) -> None:
    url = drained["url"]
    ((state, attempts, worker, record),) = rows(
        url, "SELECT state, attempts, worker_id, record_id FROM queue_jobs WHERE id = %s", drained["long_job"]
    )
    assert (state, attempts) == ("done", 2)  # taken over once the killed worker's lease expired
    assert worker != drained["victim"]
    assert rows(url, "SELECT source, status FROM records WHERE id = %s", record) == [("00-long.wav", "done")]
    assert rows(url, "SELECT count(*) FROM records WHERE source = '00-long.wav'") == [(1,)]


def test_sigterm_gives_the_job_back_at_once(pg_url: str, shared_audio: Path) -> None:
    queue = WorkQueue(pg_url)
    long_call = shared_audio / "tts" / "dev_long.wav"
    job = queue.enqueue(source=long_call.name, audio_hash="dev-long", spec=JobSpec(), path=str(long_call)).job
    proc = subprocess.Popen(worker_cmd(pg_url), cwd=PROJECT_ROOT, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while queue.get(job.id).state != "running":
            assert time.monotonic() < deadline and proc.poll() is None, "the worker took no job"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    back = queue.get(job.id)
    assert (back.state, back.attempts, back.record_id) == ("queued", 0, None), out  # not counted against the file
    assert "went back to the queue" in out
    assert queue.live_workers() == []  # it signed off
    queue.close()


@pytest.fixture
def queue_service(whisper_pipeline, pg_url: str):
    """A service over the shared Whisper pipeline, its history and work queue on a fresh PostgreSQL database (what
    `serve --db postgresql://… --queue` builds)."""
    from funasr_webui.service import TranscriptionService

    settings = Settings(engine="whisper", offline=True, threads=2, device="cpu", db=pg_url, queue=True)
    history, queue = open_store(pg_url), WorkQueue(pg_url)
    saved = whisper_pipeline.settings
    whisper_pipeline.settings = settings
    try:
        yield TranscriptionService(settings, whisper_pipeline, history, queue)
    finally:
        whisper_pipeline.settings = saved
        queue.close()
        history.close()


def test_a_job_whose_workers_keep_dying_is_given_up(queue_service) -> None:
    queue = queue_service.work_queue
    job = queue.enqueue(source="poison.wav", audio_hash="h", spec=JobSpec(), audio=b"RIFF", max_attempts=1).job
    dead = queue.register("gone", 1, ["whisper"], 0.2)
    assert queue.claim(dead, ["whisper"], 0.2).id == job.id  # ... and that worker never renews its lease
    assert queue.claim(dead, ["whisper"], 0.2) is None  # held until the lease runs out
    time.sleep(0.3)
    worker = Worker(queue_service, queue_service.settings.db, lease_s=LEASE_S, report=lambda _: None)
    worker.run(until_empty=True)
    ended = queue.get(job.id)
    assert ended.state == "failed" and ended.attempts == 2
    record = queue_service.get(ended.record_id)
    assert record.status == "failed" and "given up after 1 attempts" in record.error


def test_options_from_the_command_line_reach_the_worker_as_given(queue_service) -> None:
    from argparse import Namespace

    from funasr_webui.enqueue import spec_from_args
    from funasr_webui.worker import options_of

    args = Namespace(engine="auto", hotwords="达摩院 滨海新区", no_itn=True, language="EN", speakers="auto")
    spec = JobSpec.from_json(spec_from_args(args, queue_service.settings).to_json())  # as stored in the queue
    options = options_of(queue_service, spec)
    # hotwords in a canonical order: the same words are the same job
    assert (sorted(options.hotwords), options.itn, options.language, options.speakers) == (
        sorted(["达摩院", "滨海新区"]),
        False,
        "en",
        0,
    )
    assert options.engine == "whisper"  # no engine asked: the worker's default
    with pytest.raises(UserError) as e:  # checked by the worker, against its engine
        options_of(queue_service, JobSpec(language="xx"))
    assert e.value.key == "bad_language"


def test_ingest_queue_counts_files_the_history_holds_as_skipped(queue_service, shared_audio: Path, tmp_path: Path):
    """Files done (or failed) before by a run without the queue are not queued again, and said so."""
    folder = tmp_path / "calls"
    folder.mkdir()
    for n in ("d01", "d02", "d03"):
        shutil.copyfile(shared_audio / "tts" / f"{n}.wav", folder / f"{n}.wav")
    (folder / "broken.wav").write_text("not a recording")
    options = queue_service.options()
    for n in ("d01.wav", "d02.wav", "broken.wav"):  # what a plain `ingest` or the page did last week
        try:
            queue_service.transcribe_file(folder / n, name=n, source=n, options=options)
        except UserError:
            pass
    url = queue_service.settings.db

    def enqueue(*extra: str) -> str:
        done = subprocess.run(cli("ingest", str(folder), "--queue", "--db", url, "--settle", "0", *extra),
                              cwd=PROJECT_ROOT, env=ENV, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    out = enqueue()
    assert "1 queued, 3 skipped (0 queued before, 3 in the history), 0 failed" in out, out
    assert rows(url, "SELECT source FROM queue_jobs") == [("d03.wav",)]
    out = enqueue("--engine", "whisper")  # the engine that did them, asked for: the same answer
    assert "1 queued, 3 skipped (0 queued before, 3 in the history)" in out, out
    out = enqueue("--engine", "whisper", "--retry-failed")  # the failed one is tried again by the workers
    assert "1 queued, 3 skipped (1 queued before, 2 in the history)" in out, out
    out = enqueue("--hotwords", "天气")  # other options: other work, every file
    assert "4 queued, 0 skipped" in out, out


def test_the_historys_purge_takes_finished_jobs_of_that_age(pg_url: str) -> None:
    queue = WorkQueue(pg_url)
    ids = {n: queue.enqueue(source=f"{n}.wav", audio_hash=n, spec=JobSpec(), path=f"/calls/{n}.wav").job.id
           for n in ("old-done", "old-failed", "new-done", "old-queued")}  # fmt: skip
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for n, state, age in [("old-done", "done", 40), ("old-failed", "failed", 40), ("new-done", "done", 1)]:
            conn.execute("UPDATE queue_jobs SET state = %s, finished_at = now() - make_interval(days => %s)"
                         " WHERE id = %s", (state, age, ids[n]))  # fmt: skip
        old = "UPDATE queue_jobs SET created_at = now() - interval '40 days' WHERE id = %s"
        conn.execute(old, (ids["old-queued"],))
    with open_store(pg_url) as store:  # what --keep-days 30 at start-up, `history purge` and the page call
        assert store.purge(30) == 0  # no records that old: the count is of records, as before
    left = rows(pg_url, "SELECT source, state FROM queue_jobs ORDER BY id")
    assert left == [("new-done.wav", "done"), ("old-queued.wav", "queued")]  # work still to do is never purged
    queue.close()


def test_the_queue_tables_are_made_once_by_racing_processes(pg_url: str) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_queue() -> None:
        start.wait()
        try:
            WorkQueue(pg_url).close()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=open_queue) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert rows(pg_url, "SELECT version FROM queue_schema") == [(1,)]


def test_queue_options_need_postgresql(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    for argv in (
        ["ingest", str(tmp_path / "in"), "--queue", "--db", str(tmp_path / "h.db")],
        ["worker", "--db", str(tmp_path / "h.db")],
    ):
        done = subprocess.run(cli(*argv), cwd=PROJECT_ROOT, env=ENV, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "--db postgresql://" in done.stderr, done.stderr


def test_api_job_done_by_a_worker_and_health_shows_the_queue(queue_service, shared_audio: Path) -> None:
    from funasr_webui.server import create_app
    from tests.helpers import LiveServer

    clip = shared_audio / "tts" / "d01.wav"
    with LiveServer(create_app(queue_service)) as server:
        r = requests.post(server.url + "/api/v1/jobs", files={"file": ("call.wav", clip.read_bytes())},
                          data={"hotwords": "天气"}, timeout=30)  # fmt: skip
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["state"] == "queued" and job["new"] is True and r.headers["location"] == f"/api/v1/jobs/{job['id']}"
        health = requests.get(server.url + "/health", timeout=10).json()["work_queue"]
        assert health["jobs"]["queued"] == 1 and health["workers"] == []
        worker = Worker(queue_service, queue_service.settings.db, lease_s=LEASE_S, report=lambda _: None)
        health = requests.get(server.url + "/health", timeout=10).json()["work_queue"]
        assert [w["engines"] for w in health["workers"]] == ["whisper"]
        worker.run(until_empty=True)
        ended = requests.get(server.url + f"/api/v1/jobs/{job['id']}", timeout=10).json()
        assert ended["state"] == "done" and ended["record_id"], ended
        record = requests.get(server.url + f"/api/v1/history/{ended['record_id']}", timeout=10).json()
        assert (record["source"], record["name"]) == ("api", "call.wav") and record["text"].strip()
        assert record["hotwords"] == ["天气"]
        health = requests.get(server.url + "/health", timeout=10).json()["work_queue"]
        assert health["jobs"]["done"] == 1 and health["workers"] == []  # the worker signed off
        # the same file again is the same job, done already
        r = requests.post(server.url + "/api/v1/jobs", files={"file": ("again.wav", clip.read_bytes())},
                          data={"hotwords": "天气"}, timeout=30)  # fmt: skip
        assert r.status_code == 202 and r.json()["id"] == job["id"] and r.json()["state"] == "done"
        assert requests.get(server.url + "/api/v1/jobs/999999", timeout=10).status_code == 404


def test_jobs_api_without_a_queue_says_how_to_get_one(live_server) -> None:
    r = requests.post(live_server.url + "/api/v1/jobs", files={"file": ("a.wav", b"RIFF")}, timeout=10)
    assert r.status_code == 409
    error = r.json()["error"]
    assert "--queue" in error["message"] and "任务队列" in error["message_zh"]


def test_batch_tab_enqueues_and_shows_the_workers_results(queue_service, shared_audio: Path, tmp_path: Path) -> None:
    from funasr_webui.ui.tabs.batch import BatchCallbacks
    from funasr_webui.ui.tabs.system import SystemCallbacks

    files = [str(shared_audio / "tts" / n) for n in ("d02.wav", "d03.wav")]
    broken = tmp_path / "broken.wav"
    broken.write_text("not a recording")
    files.append(str(broken))
    worker = Worker(queue_service, queue_service.settings.db, lease_s=LEASE_S, poll_s=0.2, report=lambda _: None)
    thread = threading.Thread(target=worker.run, kwargs={"until_empty": True}, daemon=True)
    steps = BatchCallbacks(queue_service).batch_run(files, "", True, "", "txt", "zh", progress=lambda *a, **k: None)
    first = next(steps)
    assert "任务队列" in first[0]
    thread.start()  # once the files are queued: it leaves when they are done
    *_, last = steps
    thread.join(timeout=60)
    status, table, zip_button, results = last
    assert "完成" in status
    assert list(table.iloc[:, 0]) == ["d02.wav", "d03.wav", "broken.wav"]
    assert list(table.iloc[:, 2][:2]) == ["完成", "完成"] and table.iloc[2, 2].startswith("失败")
    assert [n for n, _ in results.done] == ["d02.wav", "d03.wav"] and all(tr.text for _, tr in results.done)
    assert zip_button["interactive"] is True
    line = SystemCallbacks(queue_service).queue_line("en")
    assert line.startswith("0 queued, 0 running, 2 done, 1 failed") and "0 worker(s) live" in line
    page = queue_service.search("", limit=10)
    assert sorted(r.source for r in page.records) == ["broken.wav", "d02.wav", "d03.wav"]


@pytest.mark.browser
def test_batch_tab_of_a_queue_server_in_chromium(browser, queue_service, shared_audio: Path) -> None:  # noqa: F811
    from funasr_webui.server import create_app
    from tests.helpers import LiveServer

    with LiveServer(create_app(queue_service)) as server:
        s = Session(browser, server.url + "/", "zh-CN")
        try:
            s.open()
            page = s.page
            s.tab(1)
            expect(page.locator("#batch-queue-hint")).to_contain_text("任务队列")
            page.locator("#batch-files input[type=file]").set_input_files([str(shared_audio / "tts" / "d04.wav")])
            page.locator("#batch-start").click()
            expect(page.locator("#batch-status")).to_contain_text("没有正在运行的工作进程", timeout=30_000)
            worker = Worker(queue_service, queue_service.settings.db, lease_s=LEASE_S, report=lambda _: None)
            thread = threading.Thread(target=worker.run, kwargs={"until_empty": True}, daemon=True)
            thread.start()
            expect(page.locator("#batch-status")).to_contain_text("1 个完成", timeout=60_000)
            expect(page.locator("#batch-table")).to_contain_text("d04.wav")
            expect(page.locator("#batch-zip")).to_be_enabled()
            thread.join(timeout=30)
            s.shot("batch-queue")
            s.tab(5)
            page.locator("#system-refresh").click()
            expect(page.locator("#system-table")).to_contain_text("完成 1")
        finally:
            s.close()
