"""Live dictation: the streaming function the page calls, fed real recordings in browser-sized chunks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from funasr_webui.engine import TranscribeOptions
from funasr_webui.live import LiveState, LiveTranscriber, to_mono_16k
from funasr_webui.metrics import cer, strip_punctuation


def chunks(audio: np.ndarray, seed: int, low_ms: int = 100, high_ms: int = 600):
    """int16 chunks of random 100-600 ms, as Gradio's streaming microphone delivers them."""
    rng = np.random.default_rng(seed)
    pcm = (audio * 32767).astype(np.int16)
    i = 0
    while i < pcm.size:
        n = int(rng.integers(low_ms, high_ms + 1)) * 16
        yield pcm[i : i + n]
        i += n


def dictate(live: LiveTranscriber, audio: np.ndarray, seed: int = 0, **options) -> LiveState:
    state = live.start(TranscribeOptions(**options))
    for chunk in chunks(audio, seed):
        live.feed(state, chunk, 16000)
    return live.finish(state)


@pytest.fixture(scope="module")
def live(whisper_pipeline) -> LiveTranscriber:
    return LiveTranscriber(whisper_pipeline)


def test_long_recording_gives_one_sentence_per_utterance(live: LiveTranscriber, shared_audio: Path) -> None:
    ref = json.loads((shared_audio / "tts" / "dev_long.json").read_text(encoding="utf-8"))
    audio, _ = sf.read(shared_audio / "tts" / "dev_long.wav", dtype="float32")
    state = dictate(live, audio)
    assert len(state.sentences) == len(ref["segments"])
    for got, want in zip(state.sentences, ref["segments"], strict=True):
        assert got.start == pytest.approx(want["start"], abs=0.5)
        assert got.end == pytest.approx(want["end"], abs=0.5)
    score = cer(ref["text"], state.text)
    assert score <= 0.20, f"CER {score:.1%}: {state.text}"
    assert state.partial == "" and state.finished
    # memory stays flat: only the open utterance (none now) and a short look-back are kept
    assert state.buffer.size <= 2 * 16000


def test_partials_appear_while_speaking(live: LiveTranscriber, shared_audio: Path) -> None:
    audio, _ = sf.read(shared_audio / "zh" / "asr_example.wav", dtype="float32")
    state = live.start(TranscribeOptions(hotwords=["达摩院"]))
    partials = []
    for chunk in chunks(audio, seed=3):
        live.feed(state, chunk, 16000)
        partials.append(state.partial)
    assert any(partials), "no partial text while the utterance was open"
    live.finish(state)
    assert strip_punctuation(state.text) == "欢迎大家来体验达摩院推出的语音识别模型"


def test_two_interleaved_sessions_keep_their_own_text(live: LiveTranscriber, shared_audio: Path) -> None:
    a, _ = sf.read(shared_audio / "zh" / "asr_example.wav", dtype="float32")
    b, _ = sf.read(shared_audio / "zh" / "sample.wav", dtype="float32")
    sa, sb = live.start(TranscribeOptions(hotwords=["达摩院"])), live.start(TranscribeOptions(hotwords=["滨海新区"]))
    ca, cb = list(chunks(a, 1)), list(chunks(b, 2))
    for i in range(max(len(ca), len(cb))):
        if i < len(ca):
            live.feed(sa, ca[i], 16000)
        if i < len(cb):
            live.feed(sb, cb[i], 16000)
    live.finish(sa)
    live.finish(sb)
    assert strip_punctuation(sa.text) == "欢迎大家来体验达摩院推出的语音识别模型"
    assert cer("我想问我在滨海新区有房", sb.text) <= 0.2, sb.text
    assert "滨海" not in sa.text and "达摩" not in sb.text


def test_silence_gives_no_text_and_no_record(live: LiveTranscriber, service) -> None:
    rng = np.random.default_rng(0)
    state = dictate(live, (rng.standard_normal(16000 * 5) * 0.001).astype(np.float32))
    assert state.sentences == [] and state.text == ""
    assert service.save_live(state) is None
    assert service.history.search().total == 0


def test_monologue_is_cut_at_the_maximum_utterance_length(whisper_pipeline, shared_audio: Path) -> None:
    audio, _ = sf.read(shared_audio / "zh" / "asr_example.wav", dtype="float32")
    speech = audio[int(0.7 * 16000) : int(5.3 * 16000)]
    monologue = np.concatenate([speech] * 4)  # ~18 s without a pause
    live = LiveTranscriber(whisper_pipeline, max_utterance_s=6.0)
    state = dictate(live, monologue)
    assert len(state.sentences) >= 3
    assert all(s.end - s.start <= 6.0 + 0.7 for s in state.sentences)


def test_finished_session_is_saved_once(live: LiveTranscriber, service, shared_audio: Path) -> None:
    audio, _ = sf.read(shared_audio / "zh" / "sample.wav", dtype="float32")
    state = dictate(live, audio, hotwords=["滨海新区"])
    record_id = service.save_live(state)
    assert record_id is not None
    assert service.save_live(state) == record_id  # a second stop does not duplicate it
    record = service.history.get(record_id)
    assert record.source == "microphone" and record.segments and "滨海新区" in record.text
    assert service.history.search().total == 1


def test_browser_chunks_are_converted() -> None:
    stereo = (np.ones((4800, 2)) * 16384).astype(np.int16)
    mono = to_mono_16k(stereo, 48000)
    assert mono.dtype == np.float32 and mono.size == 1600
    assert float(mono.mean()) == pytest.approx(0.5, abs=1e-3)
