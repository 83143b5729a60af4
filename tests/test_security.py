"""The requests a security probe sent (issue 11), each against the real server on loopback: they must be refused,
and the server must keep serving."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import requests
import soundfile as sf

from funasr_webui import security, tempfiles
from funasr_webui.audio import decode_audio
from funasr_webui.history import HistoryStore
from funasr_webui.security import HostGuard
from funasr_webui.service import TranscriptionService
from funasr_webui.transcript import Segment, Transcript
from tests.helpers import LiveServer

KEY = "sec-key-0123456789"
EVIL = "http://evil.example"


def server_with(service: TranscriptionService, **update) -> LiveServer:
    from funasr_webui.server import create_app

    service.settings = service.settings.model_copy(update=update)
    service.pipeline.settings = service.settings
    return LiveServer(create_app(service))


def error_code(r: requests.Response, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text[:300])
    err = r.json()["error"]
    assert err["message"] and err["message_zh"], err
    return err["code"]


def raw_http(port: int, head: bytes, source: str = "127.0.0.1") -> socket.socket:
    """A connection from `source` (any 127.x address is this machine: another "host" for per-client limits)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
    s.sendall(head)
    return s


def read_status(s: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        got = s.recv(4096)
        if not got:
            break
        data += got
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0


PART_HEAD = b'--bnd\r\nContent-Disposition: form-data; name="file"; filename="slow.wav"\r\n\r\n'
PART_TAIL = b"\r\n--bnd--\r\n"


def upload_head(path: str, file_bytes: int, extra: str = "") -> bytes:
    """The start of a multipart upload of `file_bytes` (then PART_TAIL) whose Content-Length is exact."""
    length = len(PART_HEAD) + file_bytes + len(PART_TAIL)
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}"
        f"Content-Type: multipart/form-data; boundary=bnd\r\nContent-Length: {length}\r\n\r\n"
    ).encode() + PART_HEAD


@pytest.fixture
def wav(shared_audio: Path) -> bytes:
    return (shared_audio / "zh" / "asr_example.wav").read_bytes()


# --------------------------------------------------------------------------- 1. server files through file inputs


def _file_endpoints(url: str) -> dict[str, list[dict]]:
    info = requests.get(url + "/gradio_api/info", timeout=10).json()["named_endpoints"]
    return {name: ep["parameters"] for name, ep in info.items() if "filepath" in json.dumps(ep["parameters"])}


def _call_data(params: list[dict], path: str) -> list:
    data = []
    for p in params:
        kind = p["python_type"]["type"]
        file = {"path": path, "meta": {"_type": "gradio.FileData"}}
        if kind == "filepath":
            data.append(file)
        elif kind == "list[filepath]":
            data.append([file])
        else:
            data.append(p["parameter_default"] if p.get("parameter_has_default") else "")
    return data


def test_file_inputs_take_only_files_a_user_uploaded(live_server, service, shared_audio: Path) -> None:
    """POST /gradio_api/call/single_start {"data":[{"path":"/dev/zero",...}]} froze the server; /etc/passwd was
    copied into Gradio's cache; a server-side .wav was transcribed. Every file-taking endpoint is tried."""
    url = live_server.url
    endpoints = _file_endpoints(url)
    assert {"/single_start", "/single_rerun", "/batch_run", "/mic_recognize", "/live_stream"} <= set(endpoints)
    server_wav = str(shared_audio / "zh" / "asr_example.wav")
    cache = Path(os.environ["GRADIO_TEMP_DIR"])
    for name, params in endpoints.items():
        for path in ("/etc/passwd", "/proc/self/environ", "/dev/zero", server_wav):
            r = requests.post(f"{url}/gradio_api/call{name}", json={"data": _call_data(params, path)}, timeout=10)
            assert r.status_code == 200, r.text
            events = requests.get(f"{url}/gradio_api/call{name}/{r.json()['event_id']}", timeout=30).text
            assert "event: error" in events and "not uploaded by a user" in events, (name, path, events[:300])
            assert requests.get(url + "/health", timeout=5).json()["ready"] is True  # still serving
    assert service.history.search().total == 0  # nothing transcribed
    copied = [p.name for p in cache.rglob("*") if p.is_file()]
    assert not {"passwd", "environ", "zero", "asr_example.wav"} & set(copied), copied


def test_a_file_uploaded_through_the_page_still_transcribes(live_server, service, wav: bytes) -> None:
    url = live_server.url
    up = requests.post(url + "/gradio_api/upload", files={"files": ("speech.wav", wav)}, timeout=30)
    assert up.status_code == 200, up.text
    path = up.json()[0]
    assert Path(path).is_relative_to(Path(os.environ["GRADIO_TEMP_DIR"]))
    params = _file_endpoints(url)["/single_start"]
    r = requests.post(url + "/gradio_api/call/single_start", json={"data": _call_data(params, path)}, timeout=10)
    events = requests.get(f"{url}/gradio_api/call/single_start/{r.json()['event_id']}", timeout=120).text
    assert "event: complete" in events, events[:500]
    assert service.history.search().total == 1


# --------------------------------------------------------------------------- 2. DNS rebinding


def test_a_foreign_host_name_is_refused(live_server) -> None:
    url = live_server.url
    for path in ("/api/v1/history/export", "/health", "/", "/gradio_api/info"):
        r = requests.get(url + path, headers={"Host": "evil.example"}, timeout=10)
        assert error_code(r, 421) == "host_not_allowed", path
        assert "--allowed-host" in r.json()["error"]["message"]
    for host in (f"127.0.0.1:{live_server.port}", f"localhost:{live_server.port}", "[::1]"):
        assert requests.get(url + "/api/v1/history/export", headers={"Host": host}, timeout=10).status_code == 200
    purge = requests.delete(url + "/api/v1/history/1", headers={"Host": "evil.example"}, timeout=10)
    assert error_code(purge, 421) == "host_not_allowed"


def test_allowed_host_names() -> None:
    loopback = HostGuard(None, "127.0.0.1", [])
    assert loopback.allows("localhost:7860") and loopback.allows("127.0.0.1") and loopback.allows("[::1]:7860")
    assert not loopback.allows("evil.example") and not loopback.allows("192.168.1.5") and not loopback.allows(None)
    named = HostGuard(None, "asr.internal", ["ASR.example.com", "10.0.0.9"])
    assert named.allows("asr.internal:7860") and named.allows("asr.example.com") and named.allows("10.0.0.9:80")
    assert not named.allows("evil.example")
    every = HostGuard(None, "0.0.0.0", [])  # LAN users type the address: IP literals cannot be rebound
    assert every.allows("192.168.1.5:7860") and every.allows("[fe80::1]:7860") and every.allows(socket.gethostname())
    assert not every.allows("evil.example")
    assert HostGuard(None, "127.0.0.1", ["*"]).allows("anything.example")


def test_allowed_host_option_reaches_the_server(service) -> None:
    with server_with(service, allowed_hosts=["asr.example.com"]) as server:
        assert requests.get(server.url + "/health", headers={"Host": "asr.example.com"}, timeout=10).ok
        assert requests.get(server.url + "/health", headers={"Host": "evil.example"}, timeout=10).status_code == 421


# --------------------------------------------------------------------------- 3. cross-site writes


def test_cross_site_writes_are_refused(live_server, service, wav: bytes) -> None:
    url = live_server.url
    history = service.history
    files = {"file": ("a.wav", wav)}
    r = requests.post(url + "/api/v1/transcriptions", files=files, headers={"Origin": EVIL}, timeout=60)
    assert error_code(r, 403) == "cross_site"
    r = requests.post(url + "/v1/audio/transcriptions", files=files, headers={"Sec-Fetch-Site": "cross-site"})
    assert error_code(r, 403) == "cross_site"
    r = requests.post(url + "/gradio_api/upload", files={"files": ("a.wav", wav)}, headers={"Origin": EVIL})
    assert error_code(r, 403) == "cross_site"
    other_port = {"Origin": "http://localhost:3000"}  # another local app: same site, other origin
    r = requests.post(url + "/gradio_api/upload", files={"files": ("a.wav", wav)}, headers=other_port)
    assert error_code(r, 403) == "cross_site"
    r = requests.delete(url + "/api/v1/history/1", headers={"Origin": "null"})
    assert error_code(r, 403) == "cross_site"
    assert history.search().total == 0

    # No credentialed CORS for other origins (Gradio answered any http://localhost:* page with credentials).
    pre = requests.options(
        url + "/gradio_api/upload", headers={**other_port, "Access-Control-Request-Method": "POST"}, timeout=10
    )
    assert "access-control-allow-origin" not in pre.headers and "access-control-allow-credentials" not in pre.headers
    got = requests.get(url + "/gradio_api/info", headers=other_port, timeout=10)
    assert got.ok and "access-control-allow-origin" not in got.headers

    # The page itself (same origin) and clients that send no Origin (curl, SDKs) go through.
    same = {"Origin": url, "Sec-Fetch-Site": "same-origin"}
    assert requests.post(url + "/gradio_api/upload", files={"files": ("a.wav", wav)}, headers=same).ok
    assert requests.post(url + "/api/v1/transcriptions", files=files, timeout=120).ok
    assert history.search().total == 1


def test_cross_site_request_with_the_api_key_passes(service, wav: bytes) -> None:
    with server_with(service, api_key=KEY) as server:
        r = requests.post(
            server.url + "/api/v1/transcriptions",
            files={"file": ("a.wav", wav)},
            headers={"Origin": EVIL, "Authorization": f"Bearer {KEY}"},
            timeout=120,
        )
        assert r.ok, r.text
        r = requests.post(
            server.url + "/api/v1/transcriptions",
            files={"file": ("a.wav", wav)},
            headers={"Origin": EVIL, "Authorization": "Bearer wrong"},
        )
        assert error_code(r, 403) == "cross_site"


# --------------------------------------------------------------------------- 4. slow uploads


def test_stalled_uploads_hold_no_queue_slot_and_are_cut_off(service, wav: bytes) -> None:
    """65 connections trickling a byte every few seconds made every transcription answer 503. Here another host
    (127.0.0.2) stalls uploads: it gets its share of upload places and no more, holds no transcription slot, and
    a user elsewhere (127.0.0.1) is served meanwhile."""
    settings = {"max_queue": 0, "max_uploads": 3, "max_uploads_per_client": 2, "upload_idle_timeout": 3.0}
    with server_with(service, **settings) as server:
        stalled = [raw_http(server.port, upload_head("/api/v1/transcriptions", 100_000), "127.0.0.2") for _ in "ab"]
        try:
            # a third from the same host is refused at once, with a retry hint (a form without a file would be
            # refused before anything is saved, should it get in before the two)
            def third() -> int:
                s = raw_http(server.port, upload_head("/api/v1/transcriptions", 0), "127.0.0.2")
                s.sendall(PART_TAIL)
                with s:
                    return read_status(s)

            _wait(lambda: third() == 503)
            assert requests.get(server.url + "/health", timeout=5).json()["queue"]["in_flight"] == 0
            r = requests.post(server.url + "/api/v1/transcriptions", files={"file": ("a.wav", wav)}, timeout=120)
            assert r.ok, r.text  # the user elsewhere
            # The total cap: with a third host stalling too, every place is taken.
            stalled.append(raw_http(server.port, upload_head("/api/v1/transcriptions", 100_000), "127.0.0.3"))
            _wait(
                lambda: (
                    requests.post(server.url + "/api/v1/transcriptions", files={"x": (None, "1")}).status_code == 503
                )
            )
            r = requests.post(server.url + "/api/v1/transcriptions", files={"x": (None, "1")}, timeout=10)
            assert error_code(r, 503) == "too_many_uploads" and int(r.headers["retry-after"]) > 0
            # The idle timeout ends the stalled ones with 408, freeing their places.
            assert [read_status(s) for s in stalled] == [408, 408, 408]
        finally:
            for s in stalled:
                s.close()
        r = requests.post(server.url + "/api/v1/transcriptions", files={"file": ("a.wav", wav)}, timeout=120)
        assert r.ok, r.text
        assert service.history.search().total == 2


def test_a_trickling_upload_is_cut_off(service, monkeypatch) -> None:
    """A byte every 0.3 s never trips the idle timeout; the minimum rate after the grace period does."""
    monkeypatch.setattr(security, "UPLOAD_GRACE_S", 1.0)
    with server_with(service, upload_idle_timeout=5.0) as server:
        s = raw_http(server.port, upload_head("/gradio_api/upload", 100_000))
        started = time.monotonic()
        try:
            s.settimeout(0.3)
            status = 0
            while not status and time.monotonic() - started < 20:
                try:
                    s.sendall(b"\0")
                    status = read_status(s)
                except TimeoutError:
                    continue
                except OSError:
                    break
        finally:
            s.close()
        assert status == 408 and time.monotonic() - started < 10
        assert requests.get(server.url + "/health", timeout=5).ok


def test_queue_full_answers_503_and_one_client_gets_a_share(service, wav: bytes) -> None:
    """max_queue=1 and 1 per client: while the recognizer is held, a second request of the same client is 429,
    another client's waits its turn, and a third request overall is 503."""
    keys = service.settings.db.parent / "keys.txt"
    keys.write_text(f"{KEY}\nother-key-000\nthird-key-000\n")
    with server_with(service, api_key=str(keys), max_queue=1, max_queue_per_client=1) as server:

        def send(key: str) -> requests.Response:
            auth = {"Authorization": f"Bearer {key}"}
            url = server.url + "/api/v1/transcriptions"
            return requests.post(url, files={"file": ("a.wav", wav)}, headers=auth, timeout=30)

        results: dict[str, requests.Response] = {}
        lock = service.pipeline.lock
        lock.acquire()  # the recognizer is busy: requests wait holding their slot
        try:
            first = threading.Thread(target=lambda: results.setdefault("first", send(KEY)))
            first.start()
            _wait(lambda: server.app.state.queue.in_flight == 1)
            assert error_code(send(KEY), 429) == "too_many_requests"
            second = threading.Thread(target=lambda: results.setdefault("second", send("other-key-000")))
            second.start()
            _wait(lambda: server.app.state.queue.in_flight == 2)
            r = send("third-key-000")
            assert error_code(r, 503) == "queue_full" and int(r.headers["retry-after"]) > 0
        finally:
            lock.release()
        first.join(120)
        second.join(120)
        assert results["first"].ok and results["second"].ok
        assert service.history.search().total == 2


def _wait(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


# --------------------------------------------------------------------------- 5. abandoned jobs


def test_a_job_whose_client_hung_up_stops(service, shared_audio: Path, tmp_path: Path) -> None:
    """A long file keeps the recognizer busy; when its client goes away the job stops at the next piece and
    leaves no record, and the next request is served."""
    speech, rate = sf.read(shared_audio / "zh" / "asr_example.wav", dtype="float32")
    long = tmp_path / "long.wav"
    sf.write(long, np.tile(speech, 60), rate)  # ~5.5 min of real speech
    body = long.read_bytes()
    with server_with(service) as server:
        s = raw_http(server.port, upload_head("/api/v1/transcriptions", len(body)))
        s.sendall(body + PART_TAIL)
        _wait(lambda: _jobs(service.settings.db) == 1, 60)  # decoded and running
        s.close()
        _wait(lambda: _jobs(service.settings.db) == 0, 60)  # it stopped (the whole file takes far longer)
        assert service.history.search().total == 0  # a cancelled job is no record
        short = (shared_audio / "zh" / "asr_example.wav").read_bytes()
        r = requests.post(server.url + "/api/v1/transcriptions", files={"file": ("a.wav", short)}, timeout=120)
        assert r.ok and service.history.search().total == 1


def _jobs(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]


# --------------------------------------------------------------------------- 6. live dictation caps


@pytest.fixture
def ui(service):
    from funasr_webui.ui.tabs.microphone import MicCallbacks

    return MicCallbacks(service)


def test_live_dictations_are_capped(ui, service) -> None:
    service.settings = service.settings.model_copy(update={"max_live_sessions": 2})  # read at each start

    def start(who: str, lang: str = "en") -> list:
        return ui.live_start(None, "", True, "auto", lang, SimpleNamespace(session_hash=who))

    a, b = start("a")[0], start("b")[0]
    assert a is not None and b is not None
    refused = start("c")
    assert refused[0] is None and "2 dictations are running (at most 2)" in str(refused[1]).replace("\\", "")
    assert "已有 2 路听写在进行（最多 2 路）" in str(start("c", "zh")[1]).replace("\\", "")
    ui.live_stop(a, "en")
    assert start("c")[0] is not None


def test_live_audio_faster_than_real_time_is_dropped(ui) -> None:
    session = ui.live_start(None, "", True, "auto", "en", SimpleNamespace(session_hash="fast"))[0]
    second = np.zeros(16000, np.int16)
    for _ in range(120):  # two minutes of audio in a moment
        ui.live_stream((16000, second), session, "", True, "auto", "en", SimpleNamespace(session_hash="fast"))
    assert session.heard <= 32 and session.dropped >= 88
    status = ui.live_status(session, "en")
    assert "of audio dropped: it arrived faster than it can be heard" in status
    ui.live_stop(session, "en")


# --------------------------------------------------------------------------- 7. Gradio's cache


def test_gradio_cache_is_private_to_the_process(tmp_path: Path) -> None:
    """A server process gets its own 0700 cache folder, named with its pid, gone when it exits; a folder a killed
    server left is swept at the next start. (The test run itself sets GRADIO_TEMP_DIR, so this runs apart.)"""
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"} | {"TMPDIR": str(tmp_path)}
    script = (
        "import os, stat; from funasr_webui import tempfiles; p = tempfiles.gradio_cache(); "
        "print(p, os.getpid(), oct(stat.S_IMODE(p.stat().st_mode)), os.environ['GRADIO_TEMP_DIR'] == str(p))"
    )
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    path, pid, mode, exported = out.stdout.split()
    assert Path(path).parent == tmp_path and Path(path).name.startswith(f"{tempfiles.PREFIX}gradio-{pid}-")
    assert mode == "0o700" and exported == "True"
    assert not Path(path).exists()  # removed at exit
    dead = tmp_path / f"{tempfiles.PREFIX}gradio-999999999-abc"  # a killed server's cache
    (dead / "x").mkdir(parents=True)
    assert tempfiles.sweep_orphans(tmp_path) == 1 and not dead.exists()


def test_page_uploads_land_in_the_configured_cache(live_server, wav: bytes) -> None:
    path = requests.post(live_server.url + "/gradio_api/upload", files={"files": ("a.wav", wav)}).json()[0]
    assert Path(path).is_relative_to(Path(os.environ["GRADIO_TEMP_DIR"]))


# --------------------------------------------------------------------------- 8. page routes need the login


def test_every_page_route_needs_the_login(service) -> None:
    routes = [
        ("GET", "/gradio_api/heartbeat/abc"),
        ("POST", "/gradio_api/cancel"),
        ("POST", "/gradio_api/reset"),
        ("GET", "/gradio_api/stream/abc"),
        ("GET", "/gradio_api/startup-events"),
        ("GET", "/gradio_api/info"),
    ]
    with server_with(service, auth="alice:s3cret") as server:
        for method, path in routes:
            r = requests.request(method, server.url + path, json={}, timeout=10)
            assert error_code(r, 401) == "login_required", path
        session = requests.Session()
        assert session.post(server.url + "/login", data={"username": "alice", "password": "s3cret"}).ok
        for method, path in routes:
            r = session.request(method, server.url + path, json={}, timeout=5, stream=True)
            assert r.status_code != 401, path
            r.close()


# --------------------------------------------------------------------------- 9-11. low


def test_an_overlong_multipart_boundary_is_a_422(live_server) -> None:
    r = requests.post(
        live_server.url + "/api/v1/transcriptions",
        data=b"x",
        headers={"Content-Type": "multipart/form-data; boundary=" + "b" * 300},
        timeout=10,
    )
    assert error_code(r, 422) == "bad_form"


def test_a_flac_of_unknown_length_decodes(shared_audio: Path) -> None:
    """A streamed FLAC says 'length unknown' (0 samples), which libsndfile reports as 2**63-1 frames: it was
    refused as 160127986750 hours long."""
    speech, rate = sf.read(shared_audio / "zh" / "asr_example.wav", dtype="float32")
    buf = io.BytesIO()
    sf.write(buf, speech, rate, format="FLAC")
    data = bytearray(buf.getvalue())
    packed = int.from_bytes(data[18:26], "big")  # STREAMINFO: rate 20 bits, channels 3, depth 5, samples 36
    data[18:26] = (packed & ~((1 << 36) - 1)).to_bytes(8, "big")
    audio = decode_audio(bytes(data), name="stream.flac", max_duration=3 * 3600)
    assert abs(audio.size / 16000 - speech.size / rate) < 0.01


def test_csv_cells_cannot_start_a_formula_after_spaces_or_in_fullwidth(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.db")
    texts = [" =1+1", "\u00a0=1+1", "\uff1d1+1", "\uff0b1", "\uff0d1", "\uff20SUM(A1)", "|cmd", "\t=1", "正常文本"]
    for i, text in enumerate(texts):
        store.add(
            Transcript(text=text, raw_text="", segments=[Segment(0, 1, text)]), source=f"{i}.wav", audio_hash=f"h{i}"
        )
    import csv

    rows = list(csv.DictReader(io.StringIO(store.export_csv().decode("utf-8-sig"))))
    cells = {row["text"] for row in rows}
    assert cells == {"'" + t for t in texts[:-1]} | {"正常文本"}
    store.close()
