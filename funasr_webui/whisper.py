"""The embedded offline engine: faster-whisper on Whisper base, segmented by FSMN-VAD."""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path

import numpy as np
import opencc

from .audio import SAMPLE_RATE
from .engine import EngineResult, TranscribeOptions
from .transcript import Segment
from .vad import SpeechDetector

# Whisper writes Chinese in traditional characters about as often as simplified; a simplified prompt steers it.
ZH_PROMPT = "以下是普通话的句子。"
_HALF_TO_FULL = str.maketrans({",": "，", "?": "？", "!": "！", ":": "：", ";": "；"})
_CJK = r"[\u3400-\u9fff]"


@functools.cache
def _to_simplified() -> opencc.OpenCC:
    return opencc.OpenCC("t2s.json")


def tidy_chinese(text: str) -> str:
    """Whisper's Chinese: traditional characters to simplified (the prompt steers it, but not always), ASCII
    punctuation to full-width next to CJK, and no stray spaces between Chinese and digits."""
    text = _to_simplified().convert(text)
    text = re.sub(rf"(?<={_CJK})[,?!:;]|[,?!:;](?={_CJK})", lambda m: m.group(0).translate(_HALF_TO_FULL), text)
    text = re.sub(rf"(?<={_CJK})\.(?!\d)", "。", text)
    return re.sub(rf"(?<={_CJK})\s+(?=\d)|(?<=\d)\s+(?={_CJK})", "", text)


class WhisperEngine:
    name = "whisper"
    streaming = None  # no streaming model: live partials re-decode the open utterance

    def __init__(
        self, model_dir: Path, vad: SpeechDetector, device: str, threads: int, fp16: bool, batch_size: int
    ) -> None:
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        if device == "cuda":
            compute_type = "float16" if fp16 else "float32"
        else:
            compute_type = "int8"  # CTranslate2's int8 on CPU: ~2x faster than float32, same words on our refs
        self.model = WhisperModel(str(model_dir), device=device, compute_type=compute_type, cpu_threads=threads)
        self.batched = BatchedInferencePipeline(self.model)
        self.vad = vad
        self.model_dir = model_dir
        self.device = device
        self.compute_type = compute_type
        self.batch_size = batch_size
        self.model_name = f"whisper-base ({model_dir.name})"
        self.languages = tuple(sorted(self.model.supported_languages))

    def describe(self) -> dict[str, str]:
        return {
            "engine": self.name,
            "model": self.model_name,
            "model_path": str(self.model_dir),
            "vad_model": str(self.vad.model_dir),
            "device": self.device,
            "compute_type": self.compute_type,
        }

    def _detect_language(self, audio: np.ndarray, spans: list[tuple[float, float]]) -> str:
        start, end = spans[0]
        clip = audio[int(start * SAMPLE_RATE) : int(min(end, start + 30) * SAMPLE_RATE)]
        language, _prob, _all = self.model.detect_language(clip)
        return language

    def transcribe_utterance(self, audio: np.ndarray, options: TranscribeOptions, final: bool) -> str:
        """Text of one short utterance (live dictation): no VAD, and a window cut to the audio's length instead
        of Whisper's 30 s, which makes it several times cheaper. Partials decode greedily; finals with beams."""
        language = options.language or "zh"
        clip = audio[-int(WINDOW_S * SAMPLE_RATE) :]
        segments, _info = self.model.transcribe(
            clip,
            language=language,
            beam_size=5 if final else 1,
            vad_filter=False,
            without_timestamps=True,
            condition_on_previous_text=False,
            chunk_length=int(min(WINDOW_S, max(5, math.ceil(clip.size / SAMPLE_RATE) + 1))),
            hotwords=" ".join(options.hotwords) or None,
            initial_prompt=ZH_PROMPT if language == "zh" else None,
        )
        text = "".join(s.text for s in segments).strip()
        if language == "zh":
            # on a clip with no words Whisper may answer with its own prompt: that is not speech
            text = tidy_chinese(text).replace(ZH_PROMPT, "").replace(ZH_PROMPT.rstrip("。"), "").strip()
        return text

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> EngineResult:
        spans = self.vad.segments(audio)
        if not spans:
            return EngineResult(text="", raw_text="", segments=[], language=options.language or "")
        language = options.language or self._detect_language(audio, spans)
        # Whisper pads every clip to 30 s, so decoding each sentence alone wastes most of the work: pack
        # neighbouring speech spans into ~30 s windows, then give each word back to the span it was spoken in.
        windows = pack_spans(spans, WINDOW_S)
        words = []
        # a few batches of windows per call: faster-whisper computes every window's features up front
        group = self.batch_size * 4
        for g in range(0, len(windows), group):
            segments_iter, _info = self.batched.transcribe(
                audio,
                language=language,
                clip_timestamps=[{"start": s, "end": e} for s, e in windows[g : g + group]],
                batch_size=self.batch_size,
                hotwords=" ".join(options.hotwords) or None,
                initial_prompt=ZH_PROMPT if language == "zh" else None,
                without_timestamps=False,
                word_timestamps=True,
            )
            for seg in segments_iter:  # a generator: decoding happens batch by batch as it is read
                words.extend(seg.words or [])
                if options.progress:
                    options.progress(min(1.0, seg.end / windows[-1][1]))
        segments = []
        for (start, end), span_words in zip(spans, assign_words(words, spans), strict=True):
            text = "".join(w.word for w in span_words).strip()
            if language == "zh":
                text = tidy_chinese(text)
            if text:
                segments.append(Segment(start=round(start, 3), end=round(end, 3), text=text))
        joiner = "" if language in ("zh", "ja", "ko", "yue") else " "
        text = joiner.join(s.text for s in segments)
        # Whisper punctuates as it decodes: there is no separate unpunctuated pass to report
        return EngineResult(text=text, raw_text=text, segments=segments, language=language)


WINDOW_S = 30.0  # Whisper's input window


def pack_spans(spans: list[tuple[float, float]], window: float) -> list[tuple[float, float]]:
    """Group consecutive speech spans into windows no longer than `window` seconds (a longer span stands alone)."""
    windows: list[tuple[float, float]] = []
    for start, end in spans:
        if windows and end - windows[-1][0] <= window:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((start, end))
    return windows


def assign_words(words: list, spans: list[tuple[float, float]]) -> list[list]:
    """Each word goes to the speech span nearest its midpoint (words are in time order)."""
    groups: list[list] = [[] for _ in spans]
    for word in words:
        mid = (word.start + word.end) / 2
        best = min(range(len(spans)), key=lambda i: max(spans[i][0] - mid, mid - spans[i][1], 0.0))
        groups[best].append(word)
    return groups
