"""The REST API against the real app (API + page) served on loopback, with the embedded Whisper engine.

Transcriptions cost a few seconds each on CPU, so each test that runs one checks several things with it.
"""

from __future__ import annotations

import base64
import io
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest
import requests
import soundfile as sf

from funasr_webui.api import display_name
from funasr_webui.auth import Credentials, exposure_warnings
from funasr_webui.service import TranscriptionService
from funasr_webui.tempfiles import PREFIX as TEMP_PREFIX
from funasr_webui.transcript import Segment, Transcript
from tests.helpers import LiveServer

KEY = "test-key-0123456789"
XSS = "<script>alert('x')</script> & <b>bold</b>"


def post(server, path: str, content: bytes, name: str = "audio.wav", headers=None, **fields) -> requests.Response:
    return requests.post(
        server.url + path, files={"file": (name, content)}, data=fields, headers=headers or {}, timeout=120
    )


def transcribe(server, content: bytes, name: str = "audio.wav", headers=None, **fields) -> requests.Response:
    return post(server, "/api/v1/transcriptions", content, name, headers, **fields)


def error_of(r: requests.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["message"] and err["message_zh"], err
    return err


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX)]


def records(service: TranscriptionService) -> list:
    return service.history.search(limit=100).records


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch) -> Path:
    """Uploads land here (the server runs in this process), so leftovers can be counted."""
    d = tmp_path / "uploads"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


@pytest.fixture
def guarded(service: TranscriptionService) -> Iterator[LiveServer]:
    """A server with a page user, an API key and tight limits: 256 KiB uploads, 10 s audio, 3 hotwords, no queue."""
    from funasr_webui.server import create_app

    settings = service.settings.model_copy(
        update={
            "auth": "alice:s3cret",
            "api_key": KEY,
            "max_upload_mb": 0.25,
            "max_duration": 10.0,
            "max_hotwords": 3,
            "max_queue": 0,
        }
    )
    guarded_service = TranscriptionService(settings, service.pipeline, service.history)
    old = service.pipeline.settings
    service.pipeline.settings = settings  # decoding reads its limits from the pipeline's settings
    try:
        with LiveServer(create_app(guarded_service)) as server:
            server.service = guarded_service
            yield server
    finally:
        service.pipeline.settings = old


def test_display_name_is_a_bare_name() -> None:
    assert display_name("../../etc/passwd.wav") == "passwd.wav"
    assert display_name("C:\\Users\\me\\call.mp3") == "call.mp3"
    assert display_name("..") == "upload"
    assert display_name("a\nb\x00.wav") == "ab.wav"
    long = display_name("x" * 500 + ".flac")
    assert len(long) <= 200 and long.endswith(".flac")


def test_credentials(tmp_path: Path) -> None:
    users = tmp_path / "users.txt"
    users.write_text("# page users\nalice:pa:ss\n\n张三:密码\n", encoding="utf-8")
    keys = tmp_path / "keys.txt"
    keys.write_text("k-one\nk-two\n", encoding="utf-8")
    creds = Credentials.from_settings(str(users), str(keys))
    assert creds.page_login("alice", "pa:ss") and creds.page_login("张三", "密码")
    assert not creds.page_login("alice", "pa") and not creds.page_login("bob", "pa:ss")
    assert creds.api_allows("Bearer k-two") and not creds.api_allows("Bearer k-three") and not creds.api_allows(None)
    assert creds.api_allows("Basic " + base64.b64encode("张三:密码".encode()).decode())
    assert not creds.api_allows("Basic %%%") and not creds.api_allows("k-one")
    assert Credentials.from_settings(None, None).api_allows(None)  # nothing configured: open (loopback default)
    with pytest.raises(ValueError):
        Credentials.from_settings("no-colon", None)
    assert exposure_warnings("127.0.0.1", Credentials()) == [] and exposure_warnings("localhost", Credentials()) == []
    assert "neither --auth nor --api-key" in exposure_warnings("0.0.0.0", Credentials())[0]
    assert "without --auth" in exposure_warnings("192.168.1.5", Credentials(keys=["k"]))[0]


def test_health_and_docs(live_server) -> None:
    health = requests.get(live_server.url + "/health").json()
    assert health["ready"] is True and health["status"] == "ok"
    assert health["engine"] == "whisper" and health["device"] == "cpu" and health["version"]
    assert health["queue"] == {"in_flight": 0, "max_queue": 64}
    # no server paths on an open endpoint: the model folders by their names only
    assert (health["models"]["model_path"], health["models"]["vad_model"]) == ("faster-whisper-base", "fsmn-vad")
    assert "/" not in str(health["models"])

    schema = requests.get(live_server.url + "/openapi.json").json()
    for path in (
        "/health",
        "/api/v1/transcriptions",
        "/api/v1/history",
        "/api/v1/history/{record_id}",
        "/api/v1/history/export",
        "/v1/audio/transcriptions",
    ):
        assert path in schema["paths"], path
    form = schema["paths"]["/api/v1/transcriptions"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert {"file", "hotwords", "itn", "language", "engine", "response_format"} <= set(form["schema"]["properties"])
    assert {"APIKey", "PageUser"} <= set(schema["components"]["securitySchemes"])
    docs = requests.get(live_server.url + "/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    # swagger-ui-bundle-v2 (requirements.txt) serves Swagger UI from this server: the page works air-gapped
    assert "/docs/assets/swagger-ui-bundle.js" in docs.text, docs.text
    assert requests.get(live_server.url + "/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert requests.get(live_server.url + "/").status_code == 200  # the page is still mounted at /


def test_transcribe_json_then_history_endpoints(live_server, service, shared_audio, temp_dir) -> None:
    audio = (shared_audio / "zh" / "asr_example.wav").read_bytes()
    r = transcribe(live_server, audio, "asr_example.wav", hotwords="达摩院", itn="true", language="zh")
    assert r.status_code == 200, r.text
    body = r.json()
    rid = body["id"]
    assert body["name"] == "asr_example.wav" and body["hotwords"] == ["达摩院"] and body["language"] == "zh"
    assert "达摩院" in body["text"] and body["engine"] == "whisper"
    assert body["segments"] and all(s["start"] < s["end"] for s in body["segments"])
    assert leftovers(temp_dir) == []  # the upload's temp file is gone

    record = requests.get(f"{live_server.url}/api/v1/history/{rid}").json()
    assert record["source"] == "api" and record["text"] == body["text"] and record["status"] == "done"
    assert record["name"] == "asr_example.wav"  # the upload's file name, beside where it came from
    text = requests.get(f"{live_server.url}/api/v1/history/{rid}?response_format=text")
    assert text.text == body["text"] + "\n" and text.headers["content-type"].startswith("text/plain")
    srt = requests.get(f"{live_server.url}/api/v1/history/{rid}?response_format=srt").text
    assert srt.startswith("1\n00:00:0") and " --> " in srt
    vtt = requests.get(f"{live_server.url}/api/v1/history/{rid}", params={"response_format": "vtt"}).text
    assert vtt.startswith("WEBVTT\n\n00:00:0")

    today = time.strftime("%Y-%m-%d")
    filters = {"q": "达摩院", "source": "api", "date_from": today, "engine": "whisper"}
    page = requests.get(live_server.url + "/api/v1/history", params=filters)
    assert [i["id"] for i in page.json()["items"]] == [rid] and page.json()["total"] == 1
    by_name = requests.get(live_server.url + "/api/v1/history", params={"source": "asr_example.wav"}).json()
    assert [i["id"] for i in by_name["items"]] == [rid]
    utc = requests.get(live_server.url + "/api/v1/history", params={"date_to": "2999-01-01T00:00:00Z"}).json()
    assert utc["total"] == 1
    empty = requests.get(live_server.url + "/api/v1/history", params={"date_to": "2000-01-01"}).json()
    assert empty["items"] == [] and empty["total"] == 0

    exported = requests.get(live_server.url + "/api/v1/history/export", params={"format": "json", "ids": str(rid)})
    assert exported.json()[0]["id"] == rid and "attachment" in exported.headers["content-disposition"]
    csv = requests.get(live_server.url + "/api/v1/history/export", params={"format": "csv", "q": "达摩院"})
    assert "达摩院" in csv.content.decode("utf-8-sig")
    zipped = requests.get(live_server.url + "/api/v1/history/export?format=zip-srt").content
    assert zipfile.ZipFile(io.BytesIO(zipped)).namelist() == [f"{rid:06d}_asr_example.srt"]

    assert requests.delete(f"{live_server.url}/api/v1/history/{rid}").json() == {"deleted": rid}
    error_of(requests.get(f"{live_server.url}/api/v1/history/{rid}"), 404, "not_found")
    error_of(requests.delete(f"{live_server.url}/api/v1/history/{rid}"), 404, "not_found")


def test_path_like_name_is_only_a_name(live_server, service, shared_audio, temp_dir) -> None:
    """The upload goes to a temp file of our own (removed after); the name is only displayed, never a path."""
    audio = (shared_audio / "zh" / "sample.wav").read_bytes()
    vtt = transcribe(live_server, audio, "../../etc/passwd.wav", response_format="vtt")
    assert vtt.status_code == 200 and vtt.text.startswith("WEBVTT\n\n") and " --> " in vtt.text
    assert vtt.headers["content-type"].startswith("text/vtt")
    record = service.history.get(int(vtt.headers["x-record-id"]))
    assert record.source == "api" and record.status == "done" and record.text
    assert record.name == "passwd.wav"  # only the base name is kept, as text: never a path
    assert leftovers(temp_dir) == []

    err = error_of(transcribe(live_server, b"just text", "../../etc/passwd.wav"), 415, "not_media")
    assert err["message"].startswith("passwd.wav: ") and "../" not in err["message"] + err["message_zh"]
    failed = service.history.search(status="failed").records[0]
    assert failed.source == "api" and failed.error.startswith("passwd.wav: ")
    assert failed.error_code == "not_media"  # the code is stored too, for the page to show it in any language
    assert leftovers(temp_dir) == []


def test_openai_client(live_server, service, shared_audio) -> None:
    client = openai.OpenAI(base_url=live_server.url + "/v1", api_key="any key works without --api-key")
    path = shared_audio / "zh" / "asr_example.wav"
    with path.open("rb") as f:
        result = client.audio.transcriptions.create(model="whisper-1", file=f, prompt="达摩院")
    assert "达摩院" in result.text
    assert result.model_extra["model"] == "whisper-1" and result.model_extra["id"]

    with path.open("rb") as f:
        verbose = client.audio.transcriptions.create(
            model="whisper-1",
            file=f,
            language="zh",
            response_format="verbose_json",
            timestamp_granularities=["segment"],
            temperature=0.0,
        )
    assert verbose.language == "zh" and 5 < verbose.duration < 6
    assert verbose.segments and verbose.segments[0].end > verbose.segments[0].start
    with path.open("rb") as f:
        srt = client.audio.transcriptions.create(model="anything", file=f, response_format="srt")
    assert isinstance(srt, str) and srt.startswith("1\n00:00:0")

    saved = records(service)
    assert len(saved) == 3 and {r.source for r in saved} == {"api"} and saved[0].hotwords == []
    assert saved[-1].hotwords == ["达摩院"]  # prompt -> hotwords


def test_option_errors(live_server, service) -> None:
    audio = b"RIFF not really"
    error_of(transcribe(live_server, audio, response_format="xml"), 422, "bad_option")
    error_of(transcribe(live_server, audio, hotword="typo"), 422, "unknown_option")
    err = error_of(transcribe(live_server, audio, engine="paraformer"), 422, "engine_unavailable")
    assert "'whisper'" in err["message"]
    error_of(transcribe(live_server, audio, engine="kaldi"), 422, "bad_option")
    error_of(transcribe(live_server, audio, language="xx"), 422, "bad_language")
    error_of(transcribe(live_server, audio, hotwords=" ".join(f"w{i}" for i in range(101))), 422, "too_many_hotwords")
    error_of(transcribe(live_server, audio, itn="maybe"), 422, "bad_option")
    error_of(post(live_server, "/v1/audio/transcriptions", audio, model="whisper-1", stream="maybe"), 422, "bad_option")
    error_of(post(live_server, "/v1/audio/transcriptions", audio, temperature="3"), 422, "bad_option")
    error_of(requests.post(live_server.url + "/api/v1/transcriptions", data={"itn": "true"}), 415, "not_multipart")
    no_file = requests.post(live_server.url + "/api/v1/transcriptions", files={"itn": (None, "true")})
    error_of(no_file, 422, "missing_file")

    history = live_server.url + "/api/v1/history"
    error_of(requests.get(history, params={"limit": 0}), 422, "bad_option")
    error_of(requests.get(history, params={"from": "2024-01-01"}), 422, "unknown_option")
    error_of(requests.get(history, params={"date_from": "yesterday"}), 422, "bad_option")
    error_of(requests.get(history + "/abc"), 422, "bad_option")
    error_of(requests.get(history + "/export", params={"format": "pdf"}), 422, "bad_option")
    error_of(requests.get(live_server.url + "/api/v1/nothing"), 404, "not_found")
    assert records(service) == []  # refused before transcription: nothing saved


def test_transcripts_come_back_verbatim_in_json(live_server, service) -> None:
    t = Transcript(
        text=XSS,
        raw_text=XSS,
        segments=[Segment(0.0, 1.0, XSS)],
        language="en",
        duration=1.0,
        engine="whisper",
        model="m",
        device="cpu",
    )
    rid = service.history.add(t, source="<img src=x onerror=alert(1)>.wav", audio_hash="0" * 64)
    record = requests.get(f"{live_server.url}/api/v1/history/{rid}")
    assert record.headers["content-type"] == "application/json"
    assert record.json()["text"] == XSS and record.json()["segments"][0]["text"] == XSS
    assert record.json()["source"] == "<img src=x onerror=alert(1)>.wav"
    assert requests.get(live_server.url + "/api/v1/history", params={"q": "script"}).json()["items"][0]["text"] == XSS
    srt = requests.get(f"{live_server.url}/api/v1/history/{rid}?response_format=srt")
    assert XSS in srt.text and "html" not in srt.headers["content-type"]


def test_bad_uploads_get_clear_errors(guarded, shared_audio, tmp_path, temp_dir) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    wav = (shared_audio / "zh" / "asr_example.wav").read_bytes()
    err = error_of(transcribe(guarded, b"\0" * 300_000, headers=auth), 413, "too_big")
    assert "256.0 KB" in err["message"]

    def chunked_body() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while streaming
        yield b'--bnd\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
        for _ in range(100):
            yield b"\0" * 65536
        yield b"\r\n--bnd--\r\n"

    chunked = requests.post(
        guarded.url + "/api/v1/transcriptions",
        data=chunked_body(),
        headers={**auth, "Content-Type": "multipart/form-data; boundary=bnd"},
    )
    error_of(chunked, 413, "too_big")
    assert "empty" in error_of(transcribe(guarded, b"", "empty.wav", headers=auth), 422, "empty")["message"]
    err = error_of(transcribe(guarded, wav[: len(wav) // 2], "cut.wav", headers=auth), 422, "truncated")
    assert err["message"].startswith("cut.wav: the file is incomplete")
    error_of(transcribe(guarded, b"%PDF-1.4 not audio", "doc.wav", headers=auth), 415, "not_media")
    silence = tmp_path / "silence.flac"
    sf.write(silence, np.zeros(16000 * 20, dtype=np.float32), 16000, format="FLAC")
    err = error_of(transcribe(guarded, silence.read_bytes(), "silence.flac", headers=auth), 422, "too_long")
    assert "10.0 s" in err["message"]
    error_of(transcribe(guarded, wav, hotwords="a b c d", headers=auth), 422, "too_many_hotwords")

    assert requests.get(guarded.url + "/health").json()["ready"] is True
    assert leftovers(temp_dir) == []
    failed = records(guarded.service)  # decoding failures are saved as failed records; refusals are not
    assert [r.status for r in failed] == ["failed"] * 4 and {r.source for r in failed} == {"api"}


def test_api_key_and_page_login(guarded, shared_audio) -> None:
    url = guarded.url
    wav = (shared_audio / "zh" / "asr_example.wav").read_bytes()
    error_of(transcribe(guarded, wav), 401, "missing_api_key")
    r = transcribe(guarded, wav, headers={"Authorization": "Bearer wrong"})
    error_of(r, 401, "invalid_api_key")
    assert r.headers["www-authenticate"].startswith("Bearer")
    error_of(requests.get(url + "/api/v1/history"), 401, "missing_api_key")
    error_of(
        requests.delete(url + "/api/v1/history/1", headers={"Authorization": "Bearer wrong"}), 401, "invalid_api_key"
    )
    error_of(requests.get(url + "/api/v1/history/export"), 401, "missing_api_key")
    error_of(requests.get(url + "/api/v1/history", auth=("alice", "wrong")), 401, "invalid_api_key")
    error_of(requests.get(url + "/api/v1/history", headers={"Authorization": "Basic %%%"}), 401, "invalid_api_key")
    with pytest.raises(openai.AuthenticationError):
        with (shared_audio / "zh" / "asr_example.wav").open("rb") as f:
            openai.OpenAI(base_url=url + "/v1", api_key="wrong").audio.transcriptions.create(model="whisper-1", file=f)
    assert records(guarded.service) == []  # refused requests write nothing

    assert requests.get(url + "/health").status_code == 200  # health stays open
    client = openai.OpenAI(base_url=url + "/v1", api_key=KEY)
    with (shared_audio / "zh" / "asr_example.wav").open("rb") as f:
        assert client.audio.transcriptions.create(model="whisper-1", file=f, response_format="text").strip()
    assert len(records(guarded.service)) == 1
    assert requests.get(url + "/api/v1/history", auth=("alice", "s3cret")).json()["total"] == 1  # page users too

    # The page: anonymous visitors get the login form, and Gradio's own routes answer 401 until they sign in.
    page = requests.get(url + "/")
    assert page.status_code == 200 and '"auth_required":true' in page.text.replace(" ", "")
    assert requests.get(url + "/config").status_code == 401
    assert requests.post(url + "/login", data={"username": "alice", "password": "nope"}).status_code == 400
    session = requests.Session()
    assert session.post(url + "/login", data={"username": "alice", "password": "s3cret"}).json() == {"success": True}
    assert session.get(url + "/config").status_code == 200
