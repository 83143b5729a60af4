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


def test_windows_encoded_in_pieces_give_one_batchs_output(whisper_pipeline, shared_audio: Path) -> None:
    """On CPU the encoder takes CPU_ENCODE_BATCH windows at a time (cheaper there); the decoder still gets
    one output for the whole batch, the same as encoding it at once."""
    from funasr_webui.audio import decode_audio
    from funasr_webui.whisper import CPU_ENCODE_BATCH

    engine = whisper_pipeline.engine
    clip = decode_audio(shared_audio / "tts" / "d03.wav")
    features = engine.features([clip[: clip.size * k // 5] for k in range(1, 6)])
    assert len(features) > CPU_ENCODE_BATCH and engine.device == "cpu"
    pieces, whole = np.array(engine.encode(features)), np.array(engine.model.encode(features))
    assert pieces.shape == whole.shape and np.allclose(pieces, whole, atol=1e-3)


def test_a_file_of_many_sentences_uses_the_dense_least_window(whisper_pipeline, shared_audio, monkeypatch) -> None:
    from funasr_webui.audio import decode_audio
    from funasr_webui.whisper import DENSE_MIN_WINDOW_S, MIN_WINDOW_S

    engine = whisper_pipeline.engine
    assert engine.features([np.zeros(2 * 16000, np.float32)], min_window=7.0).shape == (1, 80, 700)
    windows: list[int] = []
    encode = engine.model.encode
    monkeypatch.setattr(engine.model, "encode", lambda f: windows.append(f.shape[-1]) or encode(f))
    clip = decode_audio(shared_audio / "tts" / "d03.wav")  # 2.2 s, one VAD sentence
    pause = np.zeros(int(1.5 * 16000), np.float32)
    few = np.concatenate([clip, pause] * 2)
    engine.transcribe(few, TranscribeOptions(language="zh"))
    assert min(windows) == MIN_WINDOW_S * 100
    windows.clear()
    many = np.concatenate([clip, pause] * (engine.batch_size + 1))
    t = engine.transcribe(many, TranscribeOptions(language="zh"))
    assert len(t.segments) == engine.batch_size + 1 and min(windows) == DENSE_MIN_WINDOW_S * 100 < 1000, windows


def test_a_dense_file_is_decoded_while_the_vad_reads_on(whisper_pipeline, shared_audio, monkeypatch) -> None:
    """A batch of windows is decoded before the VAD reads its second piece of the audio (it waits for that
    decode here, so the order is proven, not timed), and the sentences are the VAD's all the same."""
    import threading

    from funasr_webui import vad, whisper
    from funasr_webui.audio import decode_audio

    engine = whisper_pipeline.engine
    clip = decode_audio(shared_audio / "tts" / "d03.wav")  # 2.2 s, one VAD sentence
    audio = np.concatenate([clip, np.zeros(8000, np.float32)] * 60)  # 162 s, 60 sentences
    spans = engine.vad.segments(audio)
    # read in two pieces: the first holds two batches' worth of windows (a batch is decoded before the VAD
    # has read the whole file only when two are waiting)
    monkeypatch.setattr(vad, "VAD_CHUNK", 120 * 16000)
    decoded = threading.Event()
    order: list[str] = []
    stream, decode = engine.vad.stream, whisper.WindowDecoder.decode

    def slow_stream(chunk, cache, is_final):
        if cache.get("minutes"):  # the second piece waits for a decode (or gives up after 60 s)
            order.append("decoded first" if decoded.wait(60) else "read first")
        cache["minutes"] = 1
        return stream(chunk, cache, is_final)

    def noting_decode(self, windows, encoded=None):
        decoded.set()
        return decode(self, windows, encoded)

    monkeypatch.setattr(engine.vad, "stream", slow_stream)
    monkeypatch.setattr(whisper.WindowDecoder, "decode", noting_decode)
    t = engine.transcribe(audio, TranscribeOptions(language="zh"))
    assert order == ["decoded first"]
    assert [(s.start, s.end) for s in t.segments] == [(round(a, 3), round(b, 3)) for a, b in spans]


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


def test_word_timestamps_fall_inside_each_sentence(whisper_pipeline, shared_audio: Path) -> None:
    t = whisper_pipeline.transcribe_file(shared_audio / "tts" / "dev_long.wav", TranscribeOptions(word_timestamps=True))
    assert len(t.segments) == 8
    for s in t.segments:
        assert s.words, s
        starts = [w.start for w in s.words]
        assert starts == sorted(starts), s.words
        assert all(s.start <= w.start <= w.end <= s.end for w in s.words), (s.start, s.end, s.words)
        assert s.words[-1].end - s.words[0].start >= 0.5 * (s.end - s.start)  # they spread over the sentence
        # Whisper's own words, before ITN: digits it wrote may differ from the segment's normalized text
        assert cer(strip_punctuation(s.text), "".join(w.word for w in s.words)) <= 0.3, (s.text, s.words)
    # not asked: none (they cost an alignment pass)
    plain = whisper_pipeline.transcribe_file(shared_audio / "tts" / "d03.wav", TranscribeOptions())
    assert plain.segments and not plain.segments[0].words


def test_neighbouring_short_sentences_keep_their_own_text(whisper_pipeline, shared_audio: Path) -> None:
    """Packed into one window, each VAD sentence still gets back its own words, at VAD's times."""
    from funasr_webui.audio import decode_audio

    refs = {r["file"]: r["text"] for r in json.loads((shared_audio / "tts" / "refs.json").read_text("utf-8"))}
    # one VAD sentence each; more than a batch holds (fewer are decoded one per window, see the next test)
    names = ["d02.wav", "d03.wav", "d07.wav", "d04.wav", "d05.wav"] * 2
    pause = np.zeros(int(0.6 * 16000), np.float32)
    audio = np.concatenate([part for n in names for part in (decode_audio(shared_audio / "tts" / n), pause)])
    spans = whisper_pipeline.vad.segments(audio)
    t = whisper_pipeline.transcribe(audio, TranscribeOptions(language="zh"))
    assert [(s.start, s.end) for s in t.segments] == [(round(a, 3), round(b, 3)) for a, b in spans]
    assert len(t.segments) == len(names)
    stats = whisper_pipeline.engine.last_stats
    assert stats.windows < len(names), stats  # they shared windows
    for s, name in zip(t.segments, names, strict=True):
        assert cer(refs[name], s.text) <= 0.35, (name, s.text)


def test_few_sentences_are_decoded_one_per_window(whisper_pipeline) -> None:
    engine = whisper_pipeline.engine
    clips = [np.zeros(2 * 16000, np.float32)] * engine.batch_size
    assert [w.sentences for w in engine.windows(clips)] == [[i] for i in range(engine.batch_size)]
    assert len(engine.windows([*clips, clips[0]])) < engine.batch_size + 1  # one more: packed


def test_pack_sentences_fills_windows_with_neighbours() -> None:
    from funasr_webui.whisper import GAP_S, PACK_S, pack_sentences

    seconds = [3.0, 4.0, 2.0, 25.0, 5.0, 1.0]
    clips = [np.full(int(s * 16000), i + 1, np.float32) for i, s in enumerate(seconds)]
    windows = pack_sentences(clips, pack_s=12.0, gap_s=1.0)
    assert [w.sentences for w in windows] == [[0, 1, 2], [3], [4, 5]]
    first = windows[0]
    assert first.offsets == [0.0, 4.0, 9.0]
    assert first.audio.size == (3 + 1 + 4 + 1 + 2) * 16000
    assert first.slot_spans() == [(0.0, 3.0), (4.0, 8.0), (9.0, 11.0)]
    assert np.all(first.audio[int(4.0 * 16000) : int(8.0 * 16000)] == 2)  # the second clip where its offset says
    assert np.all(first.audio[int(3.0 * 16000) : int(4.0 * 16000)] == 0)  # silence between
    assert PACK_S <= 30 - 3 and GAP_S > 0  # a packed window fits Whisper's 30 s with its padding


def test_timestamped_segments_are_given_to_the_sentence_they_cover(whisper_pipeline) -> None:
    from funasr_webui.whisper import Window, WindowDecoder

    decoder = WindowDecoder(whisper_pipeline.engine, "zh", [], 1, words=False)
    tok = decoder.tokenizer

    def ts(seconds: float) -> int:
        return tok.timestamp_begin + round(seconds / 0.02)

    a, b = tok.encode("你好"), tok.encode("再见")
    window = Window([0, 1], [0.0, 3.0], np.zeros(5 * 16000, np.float32), gap=1.0)  # 2 s, 1 s gap, 2 s
    assert decoder.split(window, [ts(0.0), *a, ts(1.8), ts(3.1), *b, ts(4.9)]) == [a, b]
    # timestamps a little off, the last segment left open: still each its own
    assert decoder.split(window, [ts(0.2), *a, ts(2.4), ts(2.6), *b]) == [a, b]
    # one segment across the pause: whose words are whose is not known, both are decoded again alone
    assert decoder.split(window, [ts(0.0), *a, *b, ts(4.9)]) == [None, None]
