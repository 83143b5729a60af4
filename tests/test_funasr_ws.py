"""FunASR's runtime WebSocket protocol on --funasr-ws-port: FunASR's own client (tests/funasr_client, unmodified)
in offline and 2pass modes on the shared audio, the browser page's way of talking, the walls, and the message
details clients break on."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import soundfile as sf

from funasr_webui.funasr_ws.protocol import parse_hotwords, timestamp_string, timestamp_units
from funasr_webui.funasr_ws.session import online_tail
from funasr_webui.metrics import cer
from funasr_webui.server import create_app
from funasr_webui.transcript import Segment, Word
from tests.funasr_ws_helpers import client_failed, run_funasr_client, ws_exchange
from tests.helpers import LiveServer, free_port

EXPECTED = "欢迎大家来体验达摩院推出的语音识别模型"  # zh/asr_example.wav


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def pcm_of(path: Path) -> bytes:
    audio, rate = sf.read(path, dtype="int16")
    assert rate == 16000 and audio.ndim == 1
    return audio.tobytes()


def websocket_records(service) -> list:
    return service.history.search("", source="websocket").records


def test_funasr_client_offline_mode(funasr_ws, service, shared_audio: Path, tmp_path: Path) -> None:
    _, url = funasr_ws
    run = run_funasr_client(port_of(url), shared_audio / "zh" / "asr_example.wav", "offline", tmp_path,
                            "--ssl", "0", "--hotword", "达摩院")  # fmt: skip
    assert client_failed(run) is None, run.output
    results = [e for e in run.events if e["text"]]
    assert [e["mode"] for e in results] == ["offline"] and results[0]["is_final"] is True
    assert results[0]["wav_name"] == "demo"  # the client's name for a single --audio_in file, echoed
    assert cer(EXPECTED, results[0]["text"]) <= 0.15 and "达摩院" in results[0]["text"], results
    # then the end-of-input acknowledgement the client waited for before closing
    assert run.events[-1]["is_final"] is True and run.events[-1]["text"] == "" and run.events[-1]["mode"] == "offline"
    assert run.lines and run.lines[0].split("\t")[:2] == ["demo", results[0]["text"]]
    [record] = websocket_records(service)
    assert record.text == results[0]["text"] and record.hotwords == ["达摩院"] and record.segments
    assert (record.source, record.name) == ("websocket", "demo")  # the client's wav_name names the record


def test_funasr_client_2pass_mode_in_real_time(funasr_ws, service, shared_audio: Path, tmp_path: Path) -> None:
    _, url = funasr_ws
    run = run_funasr_client(port_of(url), shared_audio / "zh" / "asr_example.wav", "2pass", tmp_path,
                            "--ssl", "0", "--hotword", "达摩院")  # fmt: skip
    assert client_failed(run) is None, run.output
    results = [e for e in run.events if e["mode"] != "2pass"]  # the acknowledgement carries the session's mode
    partials = [e for e in results if e["mode"] == "2pass-online"]
    finals = [e for e in results if e["mode"] == "2pass-offline"]
    assert partials and all(e["text"] and e["is_final"] is False for e in partials), results
    assert finals and results[-1] is finals[-1] and finals[-1]["is_final"] is True
    assert all(e["is_final"] is False for e in results[:-1])  # is_final only on the input's last result
    said = "".join(e["text"] for e in finals)  # the client appends each segment
    assert cer(EXPECTED, said) <= 0.15 and "达摩院" in said, results
    assert run.events[-1]["mode"] == "2pass" and run.events[-1]["is_final"] is True  # the acknowledgement
    [record] = websocket_records(service)
    assert record.text == said and record.segments and record.hotwords == ["达摩院"] and record.name == "demo"


def test_funasr_client_sends_a_whole_mp3(funasr_ws, service, shared_audio: Path, tmp_path: Path) -> None:
    """A file that is not .wav goes as its bytes (wav_format "others"): decoded by the server's own decoder."""
    _, url = funasr_ws
    run = run_funasr_client(port_of(url), shared_audio / "en" / "hotwords.mp3", "offline", tmp_path, "--ssl", "0")
    assert client_failed(run) is None, run.output
    [result] = [e for e in run.events if e["text"]]
    assert result["mode"] == "offline" and result["is_final"] is True
    assert "you go into your" in result["text"].lower() and "folder again" in result["text"].lower(), result
    assert websocket_records(service)[0].text == result["text"]


def test_browser_file_mode(funasr_ws, service, shared_audio: Path) -> None:
    """FunASR's html5 page: no subprotocol, an Origin, a .wav sent whole (header included) in 960-byte slices as
    "PCM", and a stop message that repeats the config without is_end; it closes at the first is_final."""
    server, url = funasr_ws
    wav = (shared_audio / "zh" / "asr_example.wav").read_bytes()
    config = {"chunk_size": [5, 10, 5], "wav_name": "h5", "is_speaking": True, "chunk_interval": 10, "itn": True,
              "mode": "offline", "wav_format": "PCM", "audio_fs": 16000, "hotwords": '{"达摩院": 20}'}  # fmt: skip
    end = {"chunk_size": [5, 10, 5], "wav_name": "h5", "is_speaking": False, "chunk_interval": 10, "mode": "offline"}
    messages = ws_exchange(url + "/any/path", config, wav, end, frame=960, origin=server.url)
    [result] = messages
    assert result["mode"] == "offline" and result["wav_name"] == "h5" and result["is_final"] is True
    assert cer(EXPECTED, result["text"]) <= 0.15 and "达摩院" in result["text"]
    assert "timestamp" not in result or isinstance(json.loads(result["timestamp"]), list)
    assert websocket_records(service)[0].hotwords == ["达摩院"]


def test_online_mode_sends_increments_and_one_final(funasr_ws, service, shared_audio: Path) -> None:
    _, url = funasr_ws
    pcm = pcm_of(shared_audio / "zh" / "asr_example.wav") + bytes(16000 * 2)  # a second of quiet after
    config = {"mode": "online", "wav_name": "call-7", "wav_format": "pcm", "audio_fs": 16000, "is_speaking": True}
    messages = ws_exchange(url, config, pcm, {"is_speaking": False, "is_end": True}, frame=1921)  # odd frames
    *results, ack = messages
    assert ack == {"mode": "online", "wav_name": "call-7", "text": "", "is_final": True, "is_end": True}
    assert results and {m["mode"] for m in results} == {"online"}
    assert [m["is_final"] for m in results] == [False] * (len(results) - 1) + [True]
    said = "".join(m["text"] for m in results)  # what a client appending the increments shows
    assert cer(EXPECTED, said) <= 0.2, results
    assert websocket_records(service)[0].text.startswith(said[:4])


def test_errors_reach_the_acknowledgement(funasr_ws, service) -> None:
    _, url = funasr_ws
    config = {"mode": "3pass", "audio_fs": 44, "is_speaking": True}
    [ack] = ws_exchange(url, config, b"", {"is_speaking": False, "is_end": True})
    assert ack["is_end"] is True and ack["is_final"] is False
    assert "3pass" in ack["error"] and "audio_fs" in ack["error"] and "不支持" in ack["error_zh"]
    assert websocket_records(service) == []


def test_walls_key_origin_host_and_cap(service, shared_audio: Path) -> None:
    from websockets.exceptions import InvalidStatus

    service.settings.api_key = "s3cret"
    service.settings.funasr_ws_port = port = free_port()
    service.settings.funasr_ws_max_connections = 1
    url = f"ws://127.0.0.1:{port}"
    pcm = pcm_of(shared_audio / "zh" / "asr_example.wav")
    config = {"mode": "offline", "wav_name": "k", "is_speaking": True}
    end = {"is_speaking": False, "is_end": True}

    def refused(status: int, code: str, target: str | None = None, **connect) -> None:
        with pytest.raises(InvalidStatus) as e:
            ws_exchange(target or url, config, b"", end, **connect)
        assert e.value.response.status_code == status
        assert json.loads(e.value.response.body)["error"]["code"] == code

    with LiveServer(create_app(service)):
        refused(401, "missing_api_key")
        refused(401, "invalid_api_key", url + "/?key=wrong")
        # DNS rebinding: a name of another site pointed at this machine
        refused(421, "host_not_allowed", f"ws://evil.example:{port}/?key=s3cret", host="127.0.0.1", port=port)
        ok = ws_exchange(url + "/?key=s3cret", config, pcm, end)  # browsers can only send the key in the URL
        assert ok[-1]["is_final"] is True and cer(EXPECTED, ok[0]["text"]) <= 0.2
        bearer = {"Authorization": "Bearer s3cret"}
        assert ws_exchange(url, config, b"", end, additional_headers=bearer)[-1]["is_end"] is True

        service.settings.api_key = None  # a server without a key: only the walls that need none
    service.settings.funasr_ws_port = port = free_port()
    url = f"ws://127.0.0.1:{port}"
    with LiveServer(create_app(service)) as server:
        refused(403, "cross_site", origin="https://evil.example")  # another site's page streaming into us
        refused(403, "cross_site", origin="null")  # file:// pages and sandboxed frames
        assert ws_exchange(url, config, b"", end, origin=server.url)[-1]["is_end"] is True

        async def two_at_once() -> tuple[dict, int]:
            from websockets.asyncio.client import connect

            async with connect(url, ping_interval=None):
                async with connect(url, ping_interval=None) as second:
                    busy = json.loads(await second.recv())
                    await second.wait_closed()
                    return busy, second.close_code

        busy, code = asyncio.run(two_at_once())
        assert code == 1013 and busy["is_final"] is False
        assert "at most 1" in busy["error"] and "最多 1" in busy["error_zh"]


def test_subprotocol_binary_only_when_offered(funasr_ws) -> None:
    from websockets.asyncio.client import connect

    _, url = funasr_ws

    async def chosen(offer: list[str] | None) -> str | None:
        async with connect(url, subprotocols=offer, ping_interval=None) as ws:
            return ws.subprotocol

    assert asyncio.run(chosen(["binary"])) == "binary"  # FunASR's Python client
    assert asyncio.run(chosen(None)) is None  # browsers offer none: still served


# --------------------------------------------------------------------------- the message details


def test_timestamp_is_a_string_with_a_pair_per_unit_the_browser_reads() -> None:
    words = [Word(0.1, 0.2, "欢"), Word(0.2, 0.3, "迎"), Word(0.3, 0.5, "hello"), Word(0.5, 0.9, "三十一")]
    seg = Segment(0.1, 0.9, "欢迎，hello 31岁。", words=words)
    assert timestamp_units(seg.text) == 2 + 1 + 3  # 欢迎 / hello / 31岁: a pair per character, one per word
    stamp = timestamp_string(seg.text, [seg])
    pairs = json.loads(stamp)
    assert isinstance(stamp, str) and len(pairs) == timestamp_units(seg.text)
    assert pairs[0] == [100, 200] and pairs == sorted(pairs) and pairs[-1] == [500, 900]


def test_hotwords_as_funasr_clients_send_them() -> None:
    assert parse_hotwords('{"阿里巴巴": 20, "达摩院": 10}', 10) == ["阿里巴巴", "达摩院"]  # microphone client, browser
    assert parse_hotwords("阿里巴巴,达摩院", 10) == ["阿里巴巴", "达摩院"]  # file client: a hotword file's first tokens
    assert parse_hotwords("", 10) == [] and parse_hotwords(None, 10) == []


def test_online_tail_continues_what_the_client_shows() -> None:
    assert online_tail("欢迎大家来体验", "欢迎大家，来体验达摩院。") == "达摩院。"
    assert online_tail("", "你好。") == "你好。"
    assert online_tail("and so my", "And so, my fellow Americans.") == " fellow Americans."
