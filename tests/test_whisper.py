"""The embedded engine (faster-whisper on Whisper base, FSMN-VAD segmentation) on real shared recordings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from funasr_webui.engine import TranscribeOptions
from funasr_webui.metrics import cer, strip_punctuation
from funasr_webui.whisper import tidy_chinese


def test_hotword_fixes_a_proper_noun(whisper_pipeline, shared_audio: Path) -> None:
    path = shared_audio / "zh" / "asr_example.wav"
    t = whisper_pipeline.transcribe_file(path, TranscribeOptions(hotwords=["达摩院"]))
    assert strip_punctuation(t.text) == "欢迎大家来体验达摩院推出的语音识别模型"
    assert t.engine == "whisper" and t.language == "zh" and t.device == "cpu"
    assert t.rtf > 0 and t.duration == pytest.approx(5.55, abs=0.05)


def test_english_hotword(whisper_pipeline, shared_audio: Path) -> None:
    t = whisper_pipeline.transcribe_file(shared_audio / "en" / "hotwords.mp3", TranscribeOptions(hotwords=["ComfyUI"]))
    assert "ComfyUI" in t.text
    assert t.language == "en"  # detected, not asked for


def test_long_file_one_segment_per_sentence(whisper_pipeline, shared_audio: Path) -> None:
    ref = json.loads((shared_audio / "tts" / "dev_long.json").read_text(encoding="utf-8"))
    t = whisper_pipeline.transcribe_file(shared_audio / "tts" / "dev_long.wav", TranscribeOptions(itn=True))
    assert len(t.segments) == len(ref["segments"])
    for got, want in zip(t.segments, ref["segments"], strict=True):
        assert got.start == pytest.approx(want["start"], abs=0.5)
        assert got.end == pytest.approx(want["end"], abs=0.5)
    score = cer(ref["text"], t.text)
    assert score <= 0.20, f"CER {score:.1%}: {t.text}"
    # simplified characters, full-width punctuation
    assert "這" not in t.text and "," not in t.text


def test_fixed_language_is_used(whisper_pipeline, shared_audio: Path) -> None:
    t = whisper_pipeline.transcribe_file(shared_audio / "zh" / "sample.wav", TranscribeOptions(language="zh"))
    assert t.language == "zh"
    assert cer("我想问我在滨海新区有房", t.text) <= 0.2, t.text


def test_silence_gives_no_text(whisper_pipeline) -> None:
    t = whisper_pipeline.transcribe(np.zeros(16000 * 3, dtype=np.float32), TranscribeOptions())
    assert t.text == "" and t.segments == []


def test_one_millisecond_is_not_an_error(whisper_pipeline) -> None:
    t = whisper_pipeline.transcribe(np.zeros(16, dtype=np.float32), TranscribeOptions())
    assert t.text == ""


@pytest.mark.parametrize(("seconds", "frames"), [(0.5, 1000), (4.6, 1000), (12.2, 1600), (27.5, 3000), (40.0, 3000)])
def test_a_batch_is_encoded_in_a_window_cut_to_its_longest_clip(whisper_pipeline, seconds, frames) -> None:
    engine = whisper_pipeline.engine
    clips = [np.zeros(int(seconds * 16000), np.float32), np.zeros(8000, np.float32)]
    assert engine.features(clips).shape == (2, 80, frames)  # longest + 3 s, at least 10 s, at most 30 s


def test_live_decoding_leaves_the_shared_model_as_it_was(whisper_pipeline, shared_audio: Path) -> None:
    # faster-whisper's chunk_length option rewrites the shared feature extractor; a live decode must not
    from funasr_webui.audio import decode_audio

    audio = decode_audio(shared_audio / "tts" / "d03.wav")
    text = whisper_pipeline.engine.transcribe_utterance(audio, TranscribeOptions(language="zh"), final=False)
    assert cer("请把这份文件发给张经理。", text) <= 0.2, text
    assert whisper_pipeline.engine.model.feature_extractor.nb_max_frames == 3000


def test_five_beams_by_default(whisper_pipeline) -> None:
    assert whisper_pipeline.engine.beam_size == 5
    assert whisper_pipeline.engine.describe()["beam_size"] == "5"


@pytest.mark.parametrize(
    ("raw", "tidy"),
    [
        ("請把這份文件發給張經理.", "请把这份文件发给张经理。"),
        ("我想问,我在滨海新区有房?", "我想问，我在滨海新区有房？"),
        ("今天是 2025年", "今天是2025年"),
        ("价格是3.5元", "价格是3.5元"),
        ("Hello, world. 你好", "Hello, world. 你好"),
    ],
)
def test_tidy_chinese(raw: str, tidy: str) -> None:
    assert tidy_chinese(raw) == tidy
