"""FSMN-VAD speech segmentation through funasr.AutoModel (FunASR's own weights)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .audio import SAMPLE_RATE


def load_funasr_model(**kwargs):
    """funasr.AutoModel(**kwargs), quiet and never checking for updates (this app may run air-gapped).
    FunASR prints notices to stdout on import and load; they go to stderr so the CLI's stdout carries only
    transcripts."""
    quiet = {"disable_update": True, "disable_log": True, "disable_pbar": True, "log_level": "ERROR"}
    with contextlib.redirect_stdout(sys.stderr):
        from funasr import AutoModel

        return AutoModel(**{**quiet, **kwargs})


VAD_CHUNK = 60 * SAMPLE_RATE


class SpeechDetector:
    def __init__(self, model_dir: Path, device: str, max_end_silence_ms: int, max_segment_ms: int) -> None:
        self.model_dir = model_dir
        self.model = load_funasr_model(
            model=str(model_dir),
            device=device,
            max_single_segment_time=max_segment_ms,
        )
        self.max_end_silence_ms = max_end_silence_ms

    def segments(self, audio: np.ndarray, between: Callable[[], None] | None = None) -> list[tuple[float, float]]:
        """Speech spans in seconds, in order. `between` runs after each minute (it raises to stop early)."""
        if audio.size < SAMPLE_RATE // 100:  # under 10 ms: nothing a VAD frame can judge
            return []
        # Streamed a minute at a time: the whole-file call builds features for all of it at once
        # (~570 MB for an hour), the streaming state stays the same size however long the audio is.
        cache: dict = {}
        spans, start = [], None
        for i in range(0, audio.size, VAD_CHUNK):
            for b, e in self.stream(audio[i : i + VAD_CHUNK], cache, is_final=i + VAD_CHUNK >= audio.size):
                start = b if b is not None else start
                if e is not None and start is not None and e > start:
                    spans.append((start, e))
                    start = None
            if between is not None:
                between()
        return spans

    def stream(self, chunk: np.ndarray, cache: dict, is_final: bool) -> list[tuple[float | None, float | None]]:
        """Feed one chunk of a live stream (state kept in `cache`, one per stream). Returns the events it
        completes: (start, None) when speech begins, (None, end) when it ends, (start, end) for both, seconds."""
        result = self.model.generate(
            input=chunk,
            fs=SAMPLE_RATE,
            cache=cache,
            is_final=is_final,
            chunk_size=max(1, len(chunk) * 1000 // SAMPLE_RATE),
            disable_pbar=True,
            max_end_silence_time=self.max_end_silence_ms,
        )
        spans = result[0]["value"] if result else []
        return [(None if b < 0 else b / 1000.0, None if e < 0 else e / 1000.0) for b, e in spans]
