"""The Paraformer engine through funasr.AutoModel, on tiny random-weight models built from FunASR's own classes.

Their text is garbage; what is checked is the real code path: loading from models/, hotwords reaching SeACo,
sentence timestamps, VAD splitting of long audio, and batching.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from funasr_webui import models
from funasr_webui.engine import TranscribeOptions
from funasr_webui.paraformer import piece_bounds
from funasr_webui.pipeline import Pipeline, build_engine
from funasr_webui.settings import Settings


@pytest.fixture(scope="module")
def models_dir(tiny_models: Path, tmp_path_factory) -> Path:
    """A models/ folder laid out as `./run.sh download` leaves it, holding the tiny models."""
    d = tmp_path_factory.mktemp("models")
    for hub, tiny in [
        (models.PARAFORMER, "tiny_seaco_paraformer"),
        (models.VAD, "tiny_fsmn_vad"),
        (models.PUNC, "tiny_ct_punc"),
        (models.STREAMING, "tiny_paraformer_streaming"),
    ]:
        shutil.copytree(tiny_models / tiny, hub.path(d))
    return d


@pytest.fixture(scope="module")
def pipeline(models_dir: Path) -> Pipeline:
    settings = Settings(models_dir=models_dir, engine="auto", offline=True, threads=2, device="cpu")  # on any machine
    return Pipeline.load(settings)


@pytest.fixture(scope="module")
def example(shared_audio: Path) -> np.ndarray:
    audio, rate = sf.read(shared_audio / "zh" / "asr_example.wav", dtype="float32")
    assert rate == 16000
    return audio


def test_auto_picks_paraformer_when_its_models_are_present(pipeline: Pipeline, models_dir: Path) -> None:
    assert pipeline.engine.name == "paraformer"
    assert pipeline.notice is None
    info = pipeline.describe()
    assert info["model_path"] == str(models.PARAFORMER.path(models_dir))
    assert info["vad_model"] == str(models.VAD.path(models_dir))
    assert info["punc_model"] == str(models.PUNC.path(models_dir))


def test_transcript_has_text_raw_text_and_sentence_timestamps(pipeline: Pipeline, example: np.ndarray) -> None:
    t = pipeline.transcribe(example, TranscribeOptions(itn=False))
    assert t.engine == "paraformer" and t.device == "cpu" and t.language == "zh"
    assert t.raw_text and " " not in t.raw_text  # CJK tokens joined without spaces
    assert t.segments, "sentence_timestamp=True must give sentence segments"
    starts = [s.start for s in t.segments]
    assert starts == sorted(starts)
    for s in t.segments:
        assert 0 <= s.start < s.end <= t.duration + 0.05
        assert s.text
    assert t.duration == pytest.approx(len(example) / 16000, abs=1e-3)


def test_hotwords_reach_seaco_and_change_the_decoding(pipeline: Pipeline, example: np.ndarray) -> None:
    plain = pipeline.transcribe(example, TranscribeOptions(itn=False))
    again = pipeline.transcribe(example, TranscribeOptions(itn=False))
    biased = pipeline.transcribe(example, TranscribeOptions(hotwords=["达摩院"], itn=False))
    assert plain.raw_text == again.raw_text  # deterministic: any change below comes from the hotword
    assert biased.raw_text != plain.raw_text
    assert biased.hotwords == ["达摩院"]


def test_long_audio_is_split_by_vad(pipeline: Pipeline, shared_audio: Path) -> None:
    audio, _ = sf.read(shared_audio / "tts" / "dev_long.wav", dtype="float32")
    long = np.concatenate([audio, audio, audio])  # ~109 s, far over one 30 s VAD segment
    t = pipeline.transcribe(long, TranscribeOptions(itn=False))
    assert t.segments[0].start < 36 and t.segments[-1].end > 72
    assert len(t.segments) > 3


def test_a_long_file_goes_to_funasr_in_pieces_with_times_offset(pipeline: Pipeline, shared_audio: Path) -> None:
    audio, _ = sf.read(shared_audio / "tts" / "dev_long.wav", dtype="float32")
    long = np.concatenate([audio, audio, audio])
    whole = pipeline.transcribe(long, TranscribeOptions(itn=False))
    engine, saved, progress = pipeline.engine, pipeline.engine.piece_s, []
    engine.piece_s = 36.0  # three pieces, one per copy of the recording
    try:
        pieces = pipeline.transcribe(long, TranscribeOptions(itn=False, progress=progress.append))
    finally:
        engine.piece_s = saved
    assert progress[:3] == pytest.approx([1 / 3, 2 / 3, 1.0], abs=0.05)  # one report per piece
    starts = [s.start for s in pieces.segments]
    assert starts == sorted(starts) and pieces.segments[-1].end <= len(long) / 16000 + 0.05
    # the pieces' times are offset into the file: each copy's speech starts where the first copy's did, shifted
    copy_s = len(audio) / 16000
    for k in range(3):
        first_in_copy = min(s.start for s in pieces.segments if s.start >= k * copy_s)
        assert first_in_copy - k * copy_s == pytest.approx(pieces.segments[0].start, abs=0.3)
    assert len(pieces.segments) == pytest.approx(len(whole.segments), rel=0.2)


def test_pieces_are_cut_at_the_quietest_moment_near_each_boundary() -> None:
    rate = 16000
    audio = np.random.default_rng(0).normal(0, 0.1, 100 * rate).astype(np.float32)
    audio[int(31.2 * rate) : int(31.6 * rate)] = 0  # a pause 1.2 s after the nominal 30 s boundary
    audio[int(63.0 * rate) : int(63.3 * rate)] = 0
    bounds = piece_bounds(audio, 30 * rate)
    assert bounds[0] == 0 and bounds[-1] == audio.size
    assert 31.2 <= bounds[1] / rate <= 31.6
    assert 63.0 <= bounds[2] / rate <= 63.3
    assert piece_bounds(audio[: 20 * rate], 30 * rate) == [0, 20 * rate]  # short audio: one piece


def test_batching_does_not_change_the_result(pipeline: Pipeline, shared_audio: Path) -> None:
    audio, _ = sf.read(shared_audio / "tts" / "dev_long.wav", dtype="float32")
    engine = pipeline.engine
    batched = pipeline.transcribe(audio, TranscribeOptions(itn=False))
    saved = engine.batch_size_s
    engine.batch_size_s = 1  # one VAD segment per forward pass
    try:
        single = pipeline.transcribe(audio, TranscribeOptions(itn=False))
    finally:
        engine.batch_size_s = saved
    assert single.text == batched.text
    assert [(s.start, s.end) for s in single.segments] == [(s.start, s.end) for s in batched.segments]


def test_silence_gives_empty_transcript(pipeline: Pipeline) -> None:
    t = pipeline.transcribe(np.zeros(16000 * 2, dtype=np.float32), TranscribeOptions())
    assert t.text == "" and t.segments == []


def test_engine_paraformer_without_models_fails_with_one_line(tmp_path: Path) -> None:
    settings = Settings(models_dir=tmp_path, engine="paraformer", offline=True)
    with pytest.raises(models.ModelUnavailable) as e:
        build_engine(settings, "cpu")
    assert "\n" not in str(e.value) and "Paraformer" in str(e.value)


def test_live_two_pass_streams_partials_per_session(pipeline: Pipeline, shared_audio: Path) -> None:
    """With the streaming model present, partials come from it chunk by chunk, each session with its own cache."""
    from funasr_webui.live import LiveTranscriber

    assert pipeline.engine.streaming is not None
    audio, _ = sf.read(shared_audio / "tts" / "dev_long.wav", dtype="float32")
    pcm = (audio[: 16000 * 12] * 32767).astype(np.int16)
    live = LiveTranscriber(pipeline)

    def alone() -> tuple[list[str], list]:
        state, partials = live.start(TranscribeOptions(itn=False)), []
        for i in range(0, pcm.size, 4800):
            live.feed(state, pcm[i : i + 4800], 16000)
            partials.append(state.partial)
        live.finish(state)
        return partials, state.sentences

    partials, sentences = alone()
    assert any(partials) and sentences
    # two interleaved sessions give exactly what each gives alone
    a, b = live.start(TranscribeOptions(itn=False)), live.start(TranscribeOptions(itn=False))
    pa, pb = [], []
    for i in range(0, pcm.size, 4800):
        live.feed(a, pcm[i : i + 4800], 16000)
        pa.append(a.partial)
        live.feed(b, pcm[i : i + 4800], 16000)
        pb.append(b.partial)
    live.finish(a)
    live.finish(b)
    assert pa == partials and pb == partials
    assert a.sentences == sentences and b.sentences == sentences


def test_character_timestamps_become_words(pipeline: Pipeline, example: np.ndarray) -> None:
    """FunASR's [start_ms, end_ms] per token: one word per character of the raw text, within its sentence."""
    plain = pipeline.transcribe(example, TranscribeOptions(itn=False))
    assert all(not s.words for s in plain.segments)  # only when asked for
    t = pipeline.transcribe(example, TranscribeOptions(itn=False, word_timestamps=True))
    words = [w for s in t.segments for w in s.words]
    assert words and "".join(w.word for w in words) == t.raw_text.replace(" ", "")
    for s in t.segments:
        assert all(s.start - 0.001 <= w.start <= w.end <= s.end + 0.001 for w in s.words)
    assert [w.start for w in words] == sorted(w.start for w in words)


def test_funasr_websocket_and_openai_words_with_paraformer(pipeline: Pipeline, shared_audio: Path, tmp_path) -> None:
    """With Paraformer loaded: 2pass partials from the streaming model (appended as they come), offline results
    with FunASR's `timestamp` string, and OpenAI's verbose_json `words` from the character timestamps."""
    import json

    import openai

    from funasr_webui.funasr_ws.protocol import timestamp_units
    from funasr_webui.history import HistoryStore
    from funasr_webui.server import create_app
    from funasr_webui.service import TranscriptionService
    from tests.funasr_ws_helpers import ws_exchange
    from tests.helpers import LiveServer, free_port

    settings = pipeline.settings.model_copy(update={"db": tmp_path / "h.db", "funasr_ws_port": free_port()})
    service = TranscriptionService(settings, pipeline, HistoryStore(settings.db))
    audio, _ = sf.read(shared_audio / "zh" / "asr_example.wav", dtype="int16")
    pcm = audio.tobytes() + bytes(32000)
    url = f"ws://127.0.0.1:{settings.funasr_ws_port}"
    end = {"is_speaking": False, "is_end": True}
    with LiveServer(create_app(service)) as server:
        two_pass = ws_exchange(url, {"mode": "2pass", "wav_name": "p", "is_speaking": True}, pcm, end)
        offline = ws_exchange(url, {"mode": "offline", "wav_name": "q", "is_speaking": True}, pcm, end)
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="sk")
        with (shared_audio / "zh" / "asr_example.wav").open("rb") as f:
            verbose = client.audio.transcriptions.create(
                model="paraformer", file=f, response_format="verbose_json", timestamp_granularities=["word"]
            )
        assert [m.id for m in client.models.list()] == ["paraformer", "whisper-1"]
    online = [m for m in two_pass if m["mode"] == "2pass-online"]
    finals = [m for m in two_pass if m["mode"] == "2pass-offline"]
    assert online and finals and finals[-1]["is_final"] is True and two_pass[-1]["is_end"] is True
    said = [m for m in finals if m["text"].strip()]  # each sentence with FunASR's character times, like offline
    assert said and all(len(json.loads(m["timestamp"])) == timestamp_units(m["text"]) for m in said)
    [result, ack] = offline
    assert result["mode"] == "offline" and ack["is_final"] is True
    pairs = json.loads(result["timestamp"])  # a JSON string, as FunASR's document and C++ server send it
    assert len(pairs) == timestamp_units(result["text"]) and pairs == sorted(pairs)
    assert result["stamp_sents"] and result["stamp_sents"][0]["ts_list"]
    assert verbose.words and all(w.start <= w.end for w in verbose.words)
    assert all(any(s.start <= w.start and w.end <= s.end + 0.001 for s in verbose.segments) for w in verbose.words)
    service.history.close()
