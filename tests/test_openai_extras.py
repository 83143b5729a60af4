"""The rest of OpenAI's transcription API, with the clients people point at it: the official `openai` client
(models, word timestamps, streaming) and httpx sending the form the way n8n and Open WebUI do."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import openai
import pytest

from funasr_webui.api.text_stream import text_deltas
from funasr_webui.metrics import cer
from funasr_webui.transcript import Segment

EXPECTED = "欢迎大家来体验达摩院推出的语音识别模型"  # zh/asr_example.wav


def client_for(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="sk-local")


def test_models_list_the_loaded_engine_and_whisper_1(live_server) -> None:
    client = client_for(live_server)
    ids = [m.id for m in client.models.list()]
    assert ids == ["whisper", "whisper-1"]  # the embedded engine is loaded; whisper-1 is the default engine's alias
    model = client.models.retrieve("whisper-1")
    assert model.id == "whisper-1" and model.object == "model" and model.owned_by == "funasr-webui"
    with pytest.raises(openai.NotFoundError) as e:
        client.models.retrieve("gpt-4o-transcribe")
    assert e.value.body["code"] == "not_found"  # the openai client hands over the error object


def test_word_timestamps_from_the_embedded_engine(live_server, shared_audio: Path) -> None:
    with (shared_audio / "en" / "jfk.flac").open("rb") as f:
        result = client_for(live_server).audio.transcriptions.create(
            model="whisper-1", file=f, response_format="verbose_json", timestamp_granularities=["word", "segment"]
        )
    assert result.words and result.segments
    assert [w.word.strip().lower().strip(",.") for w in result.words][:4] == ["and", "so", "my", "fellow"]
    for w in result.words:  # every word lies within a sentence, in order
        assert w.start <= w.end and any(s.start - 0.01 <= w.start and w.end <= s.end + 0.01 for s in result.segments)
    assert [w.start for w in result.words] == sorted(w.start for w in result.words)


def test_words_are_never_made_up(live_server, shared_audio: Path) -> None:
    """Asked for word times the engine does not give: no `words` rather than invented ones; not asked: none."""
    client = client_for(live_server)
    path = shared_audio / "zh" / "asr_example.wav"
    with path.open("rb") as f:
        plain = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="verbose_json")
    assert plain.words is None and plain.segments
    with path.open("rb") as f:
        asked = client.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="verbose_json", timestamp_granularities=["word"]
        )
    for w in asked.words or []:
        assert any(s.start - 0.01 <= w.start <= w.end <= s.end + 0.01 for s in asked.segments)


def test_streaming_with_the_openai_client(live_server, service, shared_audio: Path) -> None:
    with (shared_audio / "zh" / "asr_example.wav").open("rb") as f:
        events = list(
            client_for(live_server).audio.transcriptions.create(model="whisper-1", file=f, stream=True, prompt="达摩院")
        )
    deltas = [e for e in events if e.type == "transcript.text.delta"]
    assert deltas and events[-1].type == "transcript.text.done" and events[:-1] == deltas
    assert "".join(d.delta for d in deltas) == events[-1].text
    assert cer(EXPECTED, events[-1].text) <= 0.15 and "达摩院" in events[-1].text
    [record] = service.history.search("", source="api").records  # saved like any other transcription
    assert record.text == events[-1].text


def test_streaming_sends_the_first_sentences_while_the_rest_decodes(
    live_server, service, shared_audio: Path, monkeypatch
) -> None:
    """On a long file the first delta comes while the file is still decoding: every Whisper window after the first
    waits here until the client has that delta (ordering, not timing: were deltas sent only at the end, the second
    window would wait in vain and the test would fail)."""
    from funasr_webui import whisper

    got_delta = threading.Event()
    waited: list[bool] = []  # per window after the first: did the client have a delta before it was decoded?
    decode = whisper.WindowDecoder.decode

    def decode_after_the_first_delta(self, windows, encoded=None):
        if waited or self.calls:
            waited.append(got_delta.wait(timeout=120))
        self.calls = getattr(self, "calls", 0) + 1
        return decode(self, windows, encoded)

    monkeypatch.setattr(whisper.WindowDecoder, "calls", 0, raising=False)
    monkeypatch.setattr(whisper.WindowDecoder, "decode", decode_after_the_first_delta)
    events = []
    with (shared_audio / "tts" / "dev_long.wav").open("rb") as f:
        for event in client_for(live_server).audio.transcriptions.create(model="whisper-1", file=f, stream=True):
            events.append(event)
            if event.type == "transcript.text.delta":
                got_delta.set()
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    assert len(waited) >= 2 and all(waited), waited  # several windows, each decoded after the first delta arrived
    assert len(deltas) >= 3 and events[-1].type == "transcript.text.done"
    assert "".join(deltas) == events[-1].text  # the deltas add up to the saved text
    [record] = service.history.search("", source="api").records
    assert record.text == events[-1].text and record.name == "dev_long.wav"


def test_httpx_as_n8n_and_open_webui_send_it(live_server, shared_audio: Path) -> None:
    """Open WebUI posts file + model (+ language) with a Bearer header; n8n's OpenAI node adds response_format."""
    path = shared_audio / "zh" / "asr_example.wav"
    for fmt in ["json", "text", "srt", "vtt", "verbose_json"]:
        with path.open("rb") as f:
            r = httpx.post(
                live_server.url + "/v1/audio/transcriptions",
                headers={"Authorization": "Bearer sk-anything"},
                files={"file": (path.name, f, "audio/wav")},
                data={"model": "whisper-1", "response_format": fmt, "language": "zh"},
                timeout=120,
            )
        assert r.status_code == 200, (fmt, r.text)
        if fmt in ("json", "verbose_json"):
            body = r.json()
            assert cer(EXPECTED, body["text"]) <= 0.2 and body["model"] == "whisper-1"
            assert ("segments" in body) == (fmt == "verbose_json")
        elif fmt == "text":
            assert cer(EXPECTED, r.text) <= 0.2 and r.headers["content-type"].startswith("text/plain")
        else:
            assert (" --> " in r.text) and (r.text.startswith("WEBVTT") == (fmt == "vtt")), (fmt, r.text)


def test_sse_events_on_the_wire(live_server, shared_audio: Path) -> None:
    """What other SSE readers see: `data:` lines of JSON, the stream's content type, no proxy buffering."""
    path = shared_audio / "zh" / "asr_example.wav"
    with path.open("rb") as f:
        r = httpx.post(
            live_server.url + "/v1/audio/transcriptions",
            files={"file": (path.name, f, "audio/wav")},
            data={"model": "whisper-1", "stream": "true"},
            timeout=120,
        )
    assert r.headers["content-type"].startswith("text/event-stream") and r.headers["x-accel-buffering"] == "no"
    blocks = [b for b in r.text.split("\n\n") if b.strip()]
    events = [json.loads(b.removeprefix("data: ")) for b in blocks]
    assert all(b.startswith("data: ") for b in blocks) and events[-1]["type"] == "transcript.text.done"


def test_text_deltas_add_up_to_the_text() -> None:
    segments = [Segment(0, 1, "Hello there."), Segment(1, 2, "How are you?")]
    assert text_deltas("Hello there. How are you?", segments) == ["Hello there.", " How are you?"]
    assert text_deltas("你好。世界", [Segment(0, 1, "你好。"), Segment(1, 2, "世 界")]) == ["你好。", "世界"]
    assert text_deltas("", []) == []
