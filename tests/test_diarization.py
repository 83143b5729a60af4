"""Offline speaker diarization (Resemblyzer GE2E + agglomerative clustering) on conversations built from the shared
recordings of different real voices (see tests/conversations.py), and through the whole pipeline.

The scores of each conversation (DER with a 0.25 s collar, the share of speech under the right label) are printed
(`pytest -s`); bench/bench_speakers.py reports them too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from funasr_webui.engine import TranscribeOptions
from funasr_webui.transcript import Segment
from tests.conversations import Conversation, build, scores

CONVERSATIONS = {
    "2 voices (Mandarin)": ["mid_long", "zhtts", "mid_long", "zhtts", "mid_long", "zhtts"],
    "2 voices (English)": ["jfk", "hotwords", "jfk", "hotwords"],
    "3 voices": ["asr_example", "zhtts", "jfk", "asr_example", "zhtts", "jfk"],
    "4 voices": ["asr_example", "sample", "mid_long", "zhtts", "asr_example", "sample", "mid_long", "zhtts"],
}


@pytest.fixture(scope="module")
def diarizer(whisper_pipeline):
    """The pipeline's own speaker model (loaded in its background thread at start-up)."""
    return whisper_pipeline.speakers.get()


def test_features_are_resemblyzers_own():
    """The encoder is fed the features it was trained on: our numpy mel spectrogram equals Resemblyzer's
    (librosa's) to float precision."""
    from resemblyzer.audio import wav_to_mel_spectrogram

    from funasr_webui.diarization import mel_frames

    clip = np.random.default_rng(0).standard_normal(16000 * 2 + 77).astype(np.float32) * 0.1
    ours, theirs = mel_frames(clip), wav_to_mel_spectrogram(clip)
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= 1e-5 * np.abs(theirs).max()


def vad_sentences(pipeline, conv: Conversation) -> list[Segment]:
    """What the diarizer gets from any engine: the sentences FSMN-VAD finds (text does not matter to it)."""
    return [Segment(a, b, "字" * max(1, round((b - a) * 4))) for a, b in pipeline.vad.segments(conv.audio)]


@pytest.mark.parametrize("name", list(CONVERSATIONS))
def test_auto_finds_the_number_of_voices_and_who_spoke_when(name, shared_audio: Path, whisper_pipeline, diarizer):
    conv = build(shared_audio, CONVERSATIONS[name])
    labelled = diarizer.label(conv.audio, vad_sentences(whisper_pipeline, conv), 0)
    s = scores(conv, labelled)
    print(
        f"\n{name}: DER {s['der']:.1%} (collar 0.25 s; missed {s['missed']:.1%}, false alarm {s['false_alarm']:.1%},"
        f" confusion {s['confusion']:.1%}), right label {s['correct']:.1%}, speakers {s['speakers']}"
    )
    assert s["speakers"] == len(conv.voices)
    assert s["correct"] >= 0.90
    assert s["der"] < 0.20
    labels = [seg.speaker for seg in labelled]
    assert labels[0] == "S1" and set(labels) == {f"S{i}" for i in range(1, len(conv.voices) + 1)}
    first = list(dict.fromkeys(labels))
    assert first == sorted(first, key=lambda x: int(x[1:]))  # numbered in order of first appearance


def test_a_fixed_count_gives_that_count(shared_audio: Path, whisper_pipeline, diarizer):
    conv = build(shared_audio, CONVERSATIONS["4 voices"])
    sentences = vad_sentences(whisper_pipeline, conv)
    four = diarizer.label(conv.audio, sentences, 4)
    assert len({s.speaker for s in four}) == 4 and scores(conv, four)["correct"] >= 0.90
    two = diarizer.label(conv.audio, sentences, 2)
    assert len({s.speaker for s in two}) == 2


def test_one_voice_is_one_speaker(shared_audio: Path, whisper_pipeline, diarizer):
    for turns in (["mid_long"] * 4, ["zhtts"] * 5):
        conv = build(shared_audio, turns)
        labelled = diarizer.label(conv.audio, vad_sentences(whisper_pipeline, conv), 0)
        assert {s.speaker for s in labelled} == {"S1"}, turns


def test_a_change_of_speaker_inside_one_sentence_is_found(shared_audio: Path, whisper_pipeline, diarizer):
    """Pauses of 0.2 s are shorter than the VAD's end of sentence: turns of two voices run into one sentence,
    and the 1.6 s windows find where the voice changes."""
    conv = build(shared_audio, ["zhtts", "jfk", "zhtts", "jfk"], pauses=(0.2,))
    sentences = vad_sentences(whisper_pipeline, conv)
    labelled = diarizer.label(conv.audio, sentences, 0)
    mixed = [s for s in sentences if len({v for a, b, v in conv.truth if a < s.end - 0.5 and b > s.start + 0.5}) > 1]
    assert mixed, "the conversation should have a sentence with two voices in it"
    assert len(labelled) > len(sentences)  # split where the speaker changed
    assert "".join(s.text for s in labelled) == "".join(s.text for s in sentences)  # no text lost or doubled
    s = scores(conv, labelled)
    assert s["speakers"] == 2 and s["correct"] >= 0.90


def test_silence_has_no_speakers(whisper_pipeline):
    t = whisper_pipeline.transcribe(np.zeros(16000 * 3, dtype=np.float32), TranscribeOptions(speakers=0))
    assert t.segments == [] and t.to_dict()["speakers"] == []


def test_the_pipeline_labels_the_embedded_engines_sentences(shared_audio: Path, whisper_pipeline):
    conv = build(shared_audio, ["asr_example", "zhtts", "asr_example", "zhtts"])
    t = whisper_pipeline.transcribe(conv.audio, TranscribeOptions(speakers=0, language="zh"))
    assert {s.speaker for s in t.segments} == {"S1", "S2"}
    assert scores(conv, t.segments)["correct"] >= 0.90
    assert [sp["name"] for sp in t.to_dict()["speakers"]] == ["发言人1", "发言人2"]
    plain = whisper_pipeline.transcribe(conv.audio[: 16000 * 5], TranscribeOptions(language="zh"))
    assert plain.segments and all(s.speaker == "" for s in plain.segments)  # off unless asked for
