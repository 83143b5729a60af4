"""Reliability: concurrent clients through the API and the page's queue, a full queue, SIGKILL mid-batch, a model
error on one file, a read-only database and a full disk; and a Hypothesis fuzz of the history search.

Real transcriptions cost seconds each on this CPU, so the load uses short unique clips: silent ones (the VAD finds
nothing, the engine answers in milliseconds) and one second of real speech for two of the clients.
"""

from __future__ import annotations

import gc
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from gradio_client import Client, handle_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funasr_webui.history import MAX_QUERY_CHARS, HistoryStore
from funasr_webui.service import TranscriptionService
from funasr_webui.settings import PROJECT_ROOT, Settings
from funasr_webui.transcript import Segment, Transcript
from tests import media_samples as ms
from tests.helpers import LiveServer, assert_healthy, fast_shutdown, free_port, require

HTTP_TIMEOUT_S = 120

# Output positions of the page's single-file callback (see funasr_webui/ui/tabs/single.py).
STATUS, TEXT, DL_JSON = 0, 1, 7


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def api_post(url: str, name: str, content: bytes, hotwords: str = "", session: Any = requests) -> requests.Response:
    data = {"hotwords": hotwords} if hotwords else {}
    return session.post(
        url + "/api/v1/transcriptions", files={"file": (name, content)}, data=data, timeout=HTTP_TIMEOUT_S
    )


def assert_clean_503(r: requests.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "queue_full"
    assert int(r.headers["retry-after"]) > 0


def with_settings(service: TranscriptionService, **overrides: Any) -> TranscriptionService:
    """The same pipeline and history under changed settings (e.g. a smaller queue)."""
    return TranscriptionService(service.settings.model_copy(update=overrides), service.pipeline, service.history)


# --------------------------------------------------------------------------- load: API and page clients at once

CLIENTS = 8
REQUESTS_PER_CLIENT = 25
PAGE_CLIENTS = (6, 7)  # through the page's own queue (gradio_client); the others through the REST API
SPEECH_CLIENTS = (0, 6)  # their request SPEECH_AT is a second of real speech (one API, one page client)
SPEECH_AT = 12
RSS_GROWTH_LIMIT_MB = 100


@dataclass
class Sent:
    """One request of the load: unique bytes, a unique name and duration, and its client's own hotwords."""

    client: int
    index: int
    name: str
    content: bytes
    hotwords: list[str]
    duration: float
    speech: bool


@dataclass
class Answer:
    sent: Sent
    status: int
    record_id: int | None = None  # API answers carry it; page records are found by their unique source name
    text: str = ""
    hotwords: list[str] | None = None
    duration: float | None = None


def client_hotwords(client: int) -> list[str]:
    return [f"alpha{client}", f"客户{client}"]


def load_request(client: int, index: int) -> Sent:
    tag = client * REQUESTS_PER_CLIENT + index
    speech = client in SPEECH_CLIENTS and index == SPEECH_AT
    samples = ms.speech_clip(extra_ms=tag) if speech else ms.silent_clip(tag)
    return Sent(
        client=client,
        index=index,
        name=f"load-c{client}-r{index:02d}.wav",
        content=ms.wav_bytes(samples),
        hotwords=client_hotwords(client),
        duration=ms.duration_of(len(samples)),
        speech=speech,
    )


def run_api_client(url: str, client: int) -> list[Answer]:
    answers = []
    with requests.Session() as session:
        for index in range(REQUESTS_PER_CLIENT):
            sent = load_request(client, index)
            r = api_post(url, sent.name, sent.content, " ".join(sent.hotwords), session)
            if r.status_code == 503:
                assert_clean_503(r)
                answers.append(Answer(sent, 503))
                continue
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["name"] == sent.name
            answers.append(Answer(sent, 200, body["id"], body["text"], body["hotwords"], body["duration"]))
    return answers


def run_page_client(url: str, client: int, folder: Path) -> list[Answer]:
    page = Client(url, verbose=False, download_files=False)
    answers = []
    try:
        for index in range(REQUESTS_PER_CLIENT):
            sent = load_request(client, index)
            path = folder / sent.name
            path.write_bytes(sent.content)
            out = page.predict(
                handle_file(str(path)), "\n".join(sent.hotwords), True, "auto", "en", api_name="/single_start"
            )
            assert out[STATUS].startswith(("✔", "ℹ")), out[STATUS]
            saved = requests.get(out[DL_JSON]["value"]["url"], timeout=HTTP_TIMEOUT_S).json()  # the JSON download
            assert saved["text"] == out[TEXT]
            answers.append(Answer(sent, 200, None, out[TEXT], saved["hotwords"], saved["duration"]))
    finally:
        page.close()
    return answers


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def test_concurrent_api_and_page_clients_each_get_their_own_result_saved_once(
    live_server: LiveServer, service: TranscriptionService, tmp_path: Path
) -> None:
    fast_shutdown(live_server)
    # Warm up every path (first speech decode, first page event) before the memory baseline.
    warm = api_post(live_server.url, "warm.wav", ms.wav_bytes(ms.speech_clip(extra_ms=999)))
    assert warm.status_code == 200 and ms.SPEECH_MARK in warm.json()["text"], warm.text
    warm_page = Client(live_server.url, verbose=False, download_files=False)
    (tmp_path / "warm.wav").write_bytes(ms.wav_bytes(ms.silent_clip(999)))
    warm_page.predict(handle_file(str(tmp_path / "warm.wav")), "", True, "auto", "en", api_name="/single_start")
    warm_page.close()
    before_ids = set(service.history.search_ids())
    rss_before = rss_mb()

    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [
            pool.submit(run_page_client, live_server.url, c, tmp_path)
            if c in PAGE_CLIENTS
            else pool.submit(run_api_client, live_server.url, c)
            for c in range(CLIENTS)
        ]
        answers = [a for f in futures for a in f.result(timeout=600)]
    elapsed = time.monotonic() - started
    rss_after = rss_mb()

    ok = [a for a in answers if a.status == 200]
    assert len(answers) == CLIENTS * REQUESTS_PER_CLIENT
    assert len(ok) + sum(a.status == 503 for a in answers) == len(answers)
    for a in ok:  # each answer is its own request's: hotwords, audio length, and text
        assert a.hotwords == a.sent.hotwords, (a.sent.name, a.hotwords)
        assert a.duration == a.sent.duration, (a.sent.name, a.duration)
        assert (ms.SPEECH_MARK in a.text) if a.sent.speech else (a.text == ""), (a.sent.name, a.text)

    records = {}
    for a in ok:
        if a.record_id is not None:
            rec = service.history.get(a.record_id)
            assert rec is not None and rec.source == "api", a.sent.name
        else:
            found = service.history.search(source=a.sent.name, limit=5).records
            assert len(found) == 1, (a.sent.name, [r.id for r in found])
            rec = found[0]
        assert rec.status == "done" and rec.audio_hash == sha256(a.sent.content), a.sent.name
        assert (rec.hotwords, rec.duration, rec.text) == (a.sent.hotwords, a.sent.duration, a.text), a.sent.name
        records[rec.id] = a
    new_ids = set(service.history.search_ids()) - before_ids
    assert new_ids == set(records) and len(records) == len(ok), "a success is missing from History or saved twice"
    assert_healthy(live_server.url)
    growth = rss_after - rss_before
    print(f"\n{len(answers)} requests in {elapsed:.1f} s; RSS {rss_before:.0f} -> {rss_after:.0f} MB")
    assert growth < RSS_GROWTH_LIMIT_MB, f"resident memory grew by {growth:.0f} MB over {len(answers)} requests"


# --------------------------------------------------------------------------- a full queue under concurrent load


class HeldUpload:
    """A whole API upload on its own connection, its answer read on release: while the test holds the recognizer
    (the pipeline's lock) it waits in the queue, holding a slot (a slot is taken only once the upload is complete)."""

    def __init__(self, url: str, name: str, content: bytes) -> None:
        boundary = uuid.uuid4().hex
        self.body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                "Content-Type: audio/wav\r\n\r\n"
            ).encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=HTTP_TIMEOUT_S)
        self.conn.putrequest("POST", "/api/v1/transcriptions")
        self.conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        self.conn.putheader("Content-Length", str(len(self.body)))
        self.conn.endheaders()
        self.conn.send(self.body)

    def release(self) -> tuple[int, dict[str, Any]]:
        resp = self.conn.getresponse()
        return resp.status, json.loads(resp.read())

    def close(self) -> None:
        self.conn.close()


def wait_in_flight(url: str, count: int, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while requests.get(url + "/health", timeout=10).json()["queue"]["in_flight"] != count:
        assert time.monotonic() < deadline, f"in_flight never reached {count}"
        time.sleep(0.05)


def test_full_queue_refuses_concurrent_clients_cleanly_and_saves_only_what_it_served(
    service: TranscriptionService,
) -> None:
    from funasr_webui.server import create_app

    small_queue = with_settings(service, max_queue=1)  # one running + one waiting; a third is refused
    with LiveServer(create_app(small_queue)) as server:
        recognizer = service.pipeline.lock
        recognizer.acquire()  # busy: the two held requests wait in the queue
        held = [HeldUpload(server.url, f"held{i}.wav", ms.wav_bytes(ms.silent_clip(900 + i))) for i in range(2)]
        try:
            wait_in_flight(server.url, 2)
            with ThreadPoolExecutor(8) as pool:
                refused = list(
                    pool.map(lambda i: api_post(server.url, f"burst{i}.wav", ms.wav_bytes(ms.silent_clip(i))), range(8))
                )
            for r in refused:
                assert_clean_503(r)
        finally:
            recognizer.release()
        try:
            served = [h.release() for h in held]
        finally:
            for h in held:
                h.close()
        assert [status for status, _ in served] == [200, 200], served
        wait_in_flight(server.url, 0)
        assert sorted(service.history.search_ids()) == sorted(body["id"] for _, body in served)
        after = api_post(server.url, "after.wav", ms.wav_bytes(ms.silent_clip(910)))
        assert after.status_code == 200 and after.json()["id"] is not None


# --------------------------------------------------------------------------- a model error fails that file only

FAILING_TAG = 77  # the silent clip whose length makes the injected engine failure fire


@pytest.fixture
def engine_fails_on_one_clip(service: TranscriptionService, monkeypatch: pytest.MonkeyPatch) -> str:
    """Fault injection: the engine raises for exactly one input (by its sample count), as a CUDA fault would."""
    engine = service.pipeline.engine
    real = engine.transcribe
    message = "injected engine fault: CUDA error: an illegal memory access was encountered"

    def transcribe(audio: Any, options: Any) -> Any:
        if audio.size == ms.silent_samples(FAILING_TAG):
            raise RuntimeError(message)
        return real(audio, options)

    monkeypatch.setattr(engine, "transcribe", transcribe)
    return message


def test_model_error_fails_that_api_request_only(
    live_server: LiveServer, service: TranscriptionService, engine_fails_on_one_clip: str
) -> None:
    files = [("first.wav", 1), ("broken.wav", FAILING_TAG), ("third.wav", 3)]
    answers = [api_post(live_server.url, name, ms.wav_bytes(ms.silent_clip(tag))) for name, tag in files]
    assert [r.status_code for r in answers] == [200, 500, 200], [r.text for r in answers]
    err = answers[1].json()["error"]
    assert err["code"] == "engine_error" and "broken.wav" in err["message"] and "RuntimeError" in err["message"]
    assert_healthy(live_server.url)
    recs = sorted(service.history.search(limit=10).records, key=lambda r: r.id)
    assert [r.status for r in recs] == ["done", "failed", "done"]
    assert [r.id for r in recs][::2] == [answers[0].json()["id"], answers[2].json()["id"]]
    assert engine_fails_on_one_clip in recs[1].error and recs[1].text == ""
    assert recs[1].error_code == "engine_error"
    assert recs[1].audio_hash == sha256(ms.wav_bytes(ms.silent_clip(FAILING_TAG)))


def test_model_error_fails_that_file_only_in_a_page_batch(
    live_server: LiveServer, service: TranscriptionService, engine_fails_on_one_clip: str, tmp_path: Path
) -> None:
    fast_shutdown(live_server)
    paths = []
    for name, tag in [("one.wav", 4), ("two.wav", FAILING_TAG), ("three.wav", 5)]:
        paths.append(tmp_path / name)
        paths[-1].write_bytes(ms.wav_bytes(ms.silent_clip(tag)))
    page = Client(live_server.url, verbose=False, download_files=False)
    try:
        status, table, _zip = page.predict(
            [handle_file(str(p)) for p in paths], "", True, "auto", "txt", "en", api_name="/batch_run"
        )
    finally:
        page.close()
    assert "2 done, 1 failed" in status, status
    rows = {row[0]: row[2] for row in table["data"]}
    assert rows["one.wav"] == "done" and rows["three.wav"] == "done"
    assert "RuntimeError" in rows["two.wav"], rows
    by_source = {r.source: r for r in service.history.search(limit=10).records}
    assert sorted(by_source) == ["one.wav", "three.wav", "two.wav"]
    assert by_source["two.wav"].status == "failed" and engine_fails_on_one_clip in by_source["two.wav"].error
    assert by_source["two.wav"].error_code == "engine_error"
    assert by_source["one.wav"].status == by_source["three.wav"].status == "done"
    assert_healthy(live_server.url)


# --------------------------------------------------------------------------- history that cannot be written


@contextmanager
def serve_on(db: Path, settings: Settings, whisper_pipeline: Any) -> Iterator[tuple[LiveServer, HistoryStore]]:
    from funasr_webui.server import create_app

    history = HistoryStore(db)
    saved, whisper_pipeline.settings = whisper_pipeline.settings, settings
    try:
        with fast_shutdown(LiveServer(create_app(TranscriptionService(settings, whisper_pipeline, history)))) as server:
            yield server, history
    finally:
        whisper_pipeline.settings = saved
        history.close()


@pytest.fixture
def read_only_db(tmp_path: Path) -> Iterator[Path]:
    """A history database the server can only open read-only: the file is immutable (root ignores mode bits)."""
    db = tmp_path / "ro" / "history.db"
    HistoryStore(db).close()
    immutable = shutil.which("chattr") and not subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode
    require(immutable, "chattr +i is not available here (needs root and a file system with the immutable flag)")
    try:
        yield db
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs for the history database, to be filled up by the test."""
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    require(mounted.returncode == 0, "cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb") as f:
        try:
            for _ in range(10_000):  # 640 MiB at most: far more than the tmpfs holds
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            return filler
    raise AssertionError("the disk never filled up")


def test_read_only_database_still_returns_the_transcript(
    read_only_db: Path, settings: Settings, whisper_pipeline: Any, tmp_path: Path
) -> None:
    with serve_on(read_only_db, settings, whisper_pipeline) as (server, history):
        r = api_post(server.url, "call.wav", ms.wav_bytes(ms.speech_clip()))
        assert r.status_code == 200, r.text
        body = r.json()
        assert ms.SPEECH_MARK in body["text"] and body["id"] is None
        assert "not saved to history" in body["warning"] and "readonly" in body["warning"], body["warning"]
        bad = api_post(server.url, "notes.txt", b"not audio at all\n" * 10)
        assert bad.status_code == 415 and bad.json()["error"]["code"] == "not_media", bad.text
        path = tmp_path / "page.wav"
        path.write_bytes(ms.wav_bytes(ms.silent_clip(31)))
        page = Client(server.url, verbose=False, download_files=False)
        out = page.predict(handle_file(str(path)), "", True, "auto", "en", api_name="/single_start")
        page.close()
        assert out[STATUS].startswith("⚠") and "not saved to history" in out[STATUS], out[STATUS]
        assert requests.get(server.url + "/api/v1/history", timeout=10).json()["total"] == 0
        assert_healthy(server.url)
        assert history.search_ids() == []


def test_full_disk_still_returns_the_transcript_and_saves_again_once_space_is_free(
    full_disk: Path, settings: Settings, whisper_pipeline: Any
) -> None:
    db = full_disk / "history.db"
    with serve_on(db, settings, whisper_pipeline) as (server, history):
        filler = fill(full_disk)
        r = api_post(server.url, "call.wav", ms.wav_bytes(ms.speech_clip()))
        assert r.status_code == 200, r.text
        body = r.json()
        assert ms.SPEECH_MARK in body["text"] and body["id"] is None
        assert "not saved to history" in body["warning"] and "full" in body["warning"], body["warning"]
        bad = api_post(server.url, "notes.txt", b"not audio at all\n" * 10)
        assert bad.status_code == 415, bad.text
        assert_healthy(server.url)
        filler.unlink()
        again = api_post(server.url, "later.wav", ms.wav_bytes(ms.silent_clip(32)))
        assert again.status_code == 200 and again.json()["warning"] is None, again.text
        assert history.search_ids() == [again.json()["id"]]
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# --------------------------------------------------------------------------- SIGKILL mid-batch, then restart

SERVER_START_TIMEOUT_S = 240
BATCH_HOTWORDS = "night shift"


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    url: str


def start_server(db: Path, log: Path) -> ServerProcess:
    """`python app.py --offline` as an operator starts it, on a free port, logging to ``log``."""
    port = free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py", "--offline", "--engine", "whisper", "--threads", "2"]
            + ["--port", str(port), "--db", str(db)],
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TMPDIR": str(log.parent)},
        )
    server = ServerProcess(proc, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"the server exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}"
            )
        try:
            if requests.get(server.url + "/health", timeout=2).status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    stop(server)
    raise AssertionError(f"the server did not start in {SERVER_START_TIMEOUT_S} s")


def stop(server: ServerProcess) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(timeout=30)


@dataclass
class KilledRun:
    """Shared by the tests below, which only read it; a test that writes takes its own copy of ``crashed``."""

    db: Path  # the database the killed server left, since opened by the restarted server
    crashed: Path  # a folder holding the database's files as the kill left them (copied before the restart)
    log: Path
    finished: list[tuple[Sent, dict[str, Any]]]  # the files answered 200 before the kill, with their answers
    interrupted: Sent  # the file being recognized when the server was killed
    interrupted_error: BaseException | None
    restarted: ServerProcess


def batch_file(index: int, speech: bool = False) -> Sent:
    samples = ms.speech_clip(extra_ms=500 + index) if speech else ms.silent_clip(500 + index)
    duration = ms.duration_of(len(samples))
    return Sent(0, index, f"batch-{index:02d}.wav", ms.wav_bytes(samples), BATCH_HOTWORDS.split(), duration, speech)


def wait_for_job(db: Path, digest: str, poster: threading.Thread, timeout_s: float = HTTP_TIMEOUT_S) -> None:
    """Until the server has started the transcription job of the upload with this audio hash: the upload is in and
    decoded, and the engine is at work on it (the job row is written right before the engine is called)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with closing(sqlite3.connect(db, timeout=30)) as conn:
            if conn.execute("SELECT 1 FROM jobs WHERE audio_hash = ?", (digest,)).fetchone():
                return
        assert poster.is_alive(), "the request was answered before its job was seen"
        assert time.monotonic() < deadline, f"no job for the upload within {timeout_s} s"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KilledRun]:
    """A client posts a batch one file after another; the server is SIGKILLed while recognizing the 11th file,
    then started again on the same database."""
    folder = tmp_path_factory.mktemp("sigkill")
    crashed = folder / "crashed"
    db, log = folder / "history.db", folder / "server.log"
    first = start_server(db, log)
    finished = []
    try:
        for index in range(10):
            sent = batch_file(index, speech=index == 4)
            r = api_post(first.url, sent.name, sent.content, BATCH_HOTWORDS)
            assert r.status_code == 200, r.text
            finished.append((sent, r.json()))
        # Long enough to be mid-recognition at the kill on any CPU: Whisper needs seconds for 30 s of speech.
        content = ms.wav_bytes(ms.long_speech(30.0))
        interrupted = Sent(0, 10, "batch-10.wav", content, BATCH_HOTWORDS.split(), 30.0, True)
        outcome: dict[str, BaseException | None] = {"error": None}

        def post_interrupted() -> None:
            try:
                api_post(first.url, interrupted.name, interrupted.content, BATCH_HOTWORDS)
            except requests.RequestException as e:
                outcome["error"] = e

        poster = threading.Thread(target=post_interrupted)
        poster.start()
        wait_for_job(db, sha256(content), poster)  # past the upload and the decoding: inside the engine
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=30)
        poster.join(timeout=HTTP_TIMEOUT_S)
    finally:
        stop(first)
    crashed.mkdir()
    for name in ("history.db", "history.db-wal", "history.db-shm"):
        if (db.parent / name).exists():
            shutil.copy2(db.parent / name, crashed / name)
    restarted = start_server(db, log)
    try:
        yield KilledRun(db, crashed, log, finished, interrupted, outcome["error"], restarted)
    finally:
        stop(restarted)


def test_sigkill_mid_batch_leaves_a_database_that_passes_integrity_check(killed_run: KilledRun) -> None:
    assert killed_run.interrupted_error is not None, "the interrupted request was answered: the kill came too late"
    with closing(sqlite3.connect(killed_run.db, timeout=30)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        for table in ("fts_text", "fts_grams"):  # raises if an index disagrees with its content
            conn.execute(f"INSERT INTO {table}({table}) VALUES ('integrity-check')")


def test_sigkill_mid_batch_keeps_every_finished_file(killed_run: KilledRun) -> None:
    url = killed_run.restarted.url
    assert_healthy(url)
    for sent, answer in killed_run.finished:
        r = requests.get(f"{url}/api/v1/history/{answer['id']}", timeout=10)
        assert r.status_code == 200, (sent.name, r.text)
        rec = r.json()
        assert rec["status"] == "done" and rec["audio_hash"] == sha256(sent.content), sent.name
        assert answer["duration"] == rec["duration"] == sent.duration, sent.name
        assert (rec["text"], rec["hotwords"]) == (answer["text"], sent.hotwords), sent.name
    assert ms.SPEECH_MARK in killed_run.finished[4][1]["text"]
    listing = requests.get(f"{url}/api/v1/history?status=done&limit=100", timeout=10).json()
    assert sorted(item["id"] for item in listing["items"]) == sorted(a["id"] for _, a in killed_run.finished)


def test_server_restarted_after_sigkill_serves_and_saves(killed_run: KilledRun, tmp_path: Path) -> None:
    # This test writes: it restarts a server of its own on its own copy of the database the kill left.
    for f in killed_run.crashed.iterdir():
        shutil.copy2(f, tmp_path / f.name)
    server = start_server(tmp_path / "history.db", tmp_path / "server.log")
    try:
        sent = batch_file(11)
        r = api_post(server.url, sent.name, sent.content, BATCH_HOTWORDS)
        assert r.status_code == 200 and r.json()["id"] > max(a["id"] for _, a in killed_run.finished), r.text
        rec = requests.get(f"{server.url}/api/v1/history/{r.json()['id']}", timeout=10).json()
        assert rec["status"] == "done" and rec["audio_hash"] == sha256(sent.content), rec
        listing = requests.get(f"{server.url}/api/v1/history?status=done&limit=100", timeout=10).json()
        expected = [*(a["id"] for _, a in killed_run.finished), r.json()["id"]]
        assert sorted(item["id"] for item in listing["items"]) == sorted(expected)
        interrupted = requests.get(f"{server.url}/api/v1/history?status=interrupted", timeout=10).json()
        assert interrupted["total"] == 1  # this restart, too, reported the file the kill cut short
    finally:
        stop(server)


def test_sigkill_mid_batch_reports_the_interrupted_file_after_restart(killed_run: KilledRun) -> None:
    sent = killed_run.interrupted
    with closing(sqlite3.connect(killed_run.db, timeout=30)) as conn:
        rows = conn.execute("SELECT id, status FROM records WHERE audio_hash = ?", (sha256(sent.content),)).fetchall()
        assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (0,)  # nothing left running
    assert [status for _, status in rows] == ["interrupted"], "the interrupted file is not reported"
    rid = rows[0][0]
    url = killed_run.restarted.url
    listing = requests.get(f"{url}/api/v1/history", params={"status": "interrupted"}, timeout=10).json()
    assert [item["id"] for item in listing["items"]] == [rid]
    everything = {item["id"] for item in requests.get(f"{url}/api/v1/history?limit=100", timeout=10).json()["items"]}
    assert {rid, *(answer["id"] for _, answer in killed_run.finished)} <= everything  # listed with the rest
    rec = requests.get(f"{url}/api/v1/history/{rid}", timeout=10).json()
    assert (rec["status"], rec["source"], rec["name"], rec["text"]) == ("interrupted", "api", sent.name, "")
    assert rec["error"] == "interrupted: the server stopped before this transcription finished"
    assert (rec["hotwords"], rec["duration"]) == (sent.hotwords, sent.duration)
    warnings = [line for line in killed_run.log.read_text(errors="replace").splitlines() if "WARNING" in line]
    reports = [line for line in warnings if "interrupted" in line]
    assert len(reports) == 1 and "1 transcription(s)" in reports[0] and f"#{rid} api ({sent.name})" in reports[0]
    with HistoryStore(killed_run.db) as history:  # reported once: the restarted server's own jobs are alive
        assert history.interrupted == [] and history.stats()["interrupted"] == 1


# --------------------------------------------------------------------------- history search fuzz

SEED_TEXTS = [
    "欢迎大家来体验达摩院推出的语音识别模型",
    "我想问我在滨海新区有房",
    "大学生利用漏洞免费吃肯德基获刑",
    "富士康在印度工厂出现大规模感染目前工厂产量已下降超50%",
    "And so my fellow Americans, ask not what your country can do for you",
    "Then you go into your ComfyUI folder again in the ComfyUI",
    "The plan: AND the budget OR the NOT-so-NEAR deadline",
    'He said "hello" and she said ""goodbye""',
    "don't stop: it's 'quoted' (twice) [brackets] {braces}",
    "会议😀结束，下周再见👋",
    "cafe\u0301 and café are spelled differently",
    "İstanbul, STRASSE, Straße, ẞ, Kelvin \u212a and ǅ",
    "2024-05-01 10:30 的季度会议，预算为 3,500,000 元",
    "...???!!! ***  ^^^ ::: ---",
    "100% of the _under_score and back\\slash",
    "NEAR(alpha beta, 2) alpha* ^start col:value",
    "",
    "   spaces   between   words   ",
    "x",
    "ab",
    "ÀÉÎÕÜ àéîõü ÆØÅ æøå",
    "Привет мир, ПРИВЕТ МИР",
    "مرحبا بالعالم",
    "こんにちは世界、カタカナ",
    "한국어 음성 인식",
    "tab\tand\nnewline\r\nmixed",
    "混合 English 和中文 mixed Text",
    "long " + "语音识别 speech recognition " * 200,
]

# FTS5 query syntax and SQL-ish noise a user may paste into the search box.
FTS_SYNTAX = [
    '"',
    '""',
    "'",
    "*",
    "^",
    ":",
    "-",
    "+",
    "(",
    ")",
    "{",
    "}",
    "AND",
    "OR",
    "NOT",
    "NEAR",
    "NEAR(a b, 2)",
    "text:",
    "fts_text:",
    "\x00",
    "\\",
    "%",
    "_",
    ";--",
    "' OR 1=1 --",
    " ",
    "\t",
]


def simple_lower(s: str) -> str:
    """Lower case one character at a time (SQLite folds case per character; ``'İ'.lower()`` is two)."""
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in s)


def query_terms(q: str) -> list[str]:
    """The query's terms as search() documents them: "quoted phrases" or whitespace-free words, NUL read as a
    space, the query cut at MAX_QUERY_CHARS."""
    q = q.replace("\x00", " ")[:MAX_QUERY_CHARS]
    terms = [(quoted or bare).strip() for quoted, bare in re.findall(r'"([^"]+)"|(\S+)', q)]
    return [t for t in terms if t]


def alnum_runs(s: str) -> list[str]:
    return re.findall(r"[^\W_]+", s.lower())


def brute_force_match(q: str, text: str) -> bool:
    """search()'s documented meaning, checked the slow way: every term of 3+ characters is a case-insensitive
    substring of the text; every alphanumeric run of a 1-2 character term lies within one run of the text."""
    terms = query_terms(q)
    if any(simple_lower(t) not in simple_lower(text) for t in terms if len(t) >= 3):
        return False
    text_runs = alnum_runs(text)
    short_runs = [run for t in terms if len(t) < 3 for run in alnum_runs(t)]
    return all(any(run in tr for tr in text_runs) for run in short_runs)


def seed_transcript(text: str) -> Transcript:
    return Transcript(
        text=text,
        raw_text=text,
        segments=[Segment(0.0, 1.0, text)] if text else [],
        language="zh",
        duration=1.0,
        engine="whisper",
        model="whisper-base",
        device="cpu",
        elapsed=0.1,
    )


@pytest.fixture(scope="module")
def seeded_history(tmp_path_factory) -> tuple[HistoryStore, dict[int, str]]:
    store = HistoryStore(tmp_path_factory.mktemp("fuzz") / "history.db")
    ids = store.add_many((seed_transcript(t), f"seed{i}.wav", f"hash{i}") for i, t in enumerate(SEED_TEXTS))
    yield store, dict(zip(ids, SEED_TEXTS, strict=True))
    store.close()


@st.composite
def seed_substrings(draw) -> str:
    text = draw(st.sampled_from([t for t in SEED_TEXTS if t]))
    start = draw(st.integers(0, len(text) - 1))
    return text[start : start + draw(st.integers(1, 12))]


search_queries = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(st.sampled_from(FTS_SYNTAX), seed_substrings(), st.text(max_size=6)), max_size=10).map("".join),
    st.lists(st.one_of(st.sampled_from(FTS_SYNTAX), seed_substrings()), max_size=6).map(" ".join),
    st.text(min_size=MAX_QUERY_CHARS - 20, max_size=3 * MAX_QUERY_CHARS),
    seed_substrings().map(lambda s: "x" * (MAX_QUERY_CHARS - 2) + " " + s),  # a term cut by the length limit
)


@settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(q=search_queries)
def test_fuzz_history_search_never_fails_and_finds_only_matches(seeded_history, q: str) -> None:
    store, texts = seeded_history
    page = store.search(q, limit=100)
    ids = store.search_ids(q)
    found = [r.id for r in page.records]
    assert found == ids[:100], "search and search_ids disagree"
    assert page.total == len(ids) and page.total_exact
    assert len(set(ids)) == len(ids) and set(ids) <= set(texts)
    wrong = [texts[rid][:40] for rid in ids if not brute_force_match(q, texts[rid])]
    assert not wrong, f"{q!r} matched records that do not hold its terms: {wrong!r}"


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(term=seed_substrings().filter(lambda s: len(s) >= 3 and not re.search(r'[\s"]', s)))
def test_fuzz_history_search_finds_every_record_holding_a_term(seeded_history, term: str) -> None:
    store, texts = seeded_history
    expected = {rid for rid, text in texts.items() if simple_lower(term) in simple_lower(text)}
    assert set(store.search_ids(term)) == expected
