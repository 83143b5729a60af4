"""Audio cut into speech clips by our FSMN-VAD and decoded a batch at a time: for the engines whose FunASR model
recognizes one clip per input (SenseVoice, Fun-ASR-Nano). Each clip's times are the VAD's."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from .audio import SAMPLE_RATE
from .engine import TranscribeOptions
from .vad import SpeechDetector

T = TypeVar("T")

_CJK_EDGE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af，。？！、：；]")


def describe_clip_engine(engine: Any) -> dict[str, str]:
    """What the System tab and /health show of an engine of this kind (SenseVoice, Fun-ASR-Nano)."""
    return {
        "engine": engine.name,
        "model": engine.model_name,
        "device": engine.device,
        "model_path": str(engine.model_dir),
        "vad_model": str(engine.vad.model_dir),
        "compute_type": "float16" if engine.fp16 else "float32",
    }


def speech_clips(
    vad: SpeechDetector, audio: np.ndarray, options: TranscribeOptions
) -> tuple[list[tuple[float, float]], list[np.ndarray]]:
    """Speech spans (seconds) and the audio of each; the VAD checks for cancellation after each minute."""
    spans = vad.segments(audio, options.checkpoint)
    clips = [audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)] for start, end in spans]
    return spans, clips


def decode_in_batches(
    clips: list[np.ndarray],
    batch_size: int,
    decode: Callable[[list[np.ndarray]], list[T]],
    options: TranscribeOptions,
) -> list[T]:
    """decode() on groups of clips of similar length (padding is wasted work), results in the clips' order;
    progress and cancellation checked after each group."""
    order = sorted(range(len(clips)), key=lambda i: clips[i].size)
    results: list[T | None] = [None] * len(clips)
    done, total = 0, sum(c.size for c in clips) or 1
    for g in range(0, len(order), max(1, batch_size)):
        group = order[g : g + max(1, batch_size)]
        for i, result in zip(group, decode([clips[i] for i in group]), strict=True):
            results[i] = result
            done += clips[i].size
        options.checkpoint(done / total)
    return results  # type: ignore[return-value]


def join_texts(texts: list[str]) -> str:
    """Sentences as one text: no space where either side is Chinese, Japanese or Korean script."""
    out = ""
    for text in texts:
        if out and text and not (_CJK_EDGE.match(out[-1]) or _CJK_EDGE.match(text[0])):
            out += " "
        out += text
    return out
