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

WINDOW_S = 30.0  # Whisper's input window
MIN_WINDOW_S = 10.0  # a clip is encoded in a window this long at least ...
PAD_S = 3.0  # ... with this much silence after the speech
# A decode longer than this many tokens per second of speech (plus a margin) is looping, not transcribing.
MAX_TOKENS_PER_S = 10
MAX_TOKENS_MARGIN = 12
_LOOP = re.compile(r"(\S.{6,}?)\1")  # the same 7+ characters twice in a row
# faster-whisper's rule for a clip with no speech: the no-speech token is likely and the text is not
NO_SPEECH_PROB = 0.6
NO_SPEECH_LOGPROB = -1.0


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
        self,
        model_dir: Path,
        vad: SpeechDetector,
        device: str,
        threads: int,
        fp16: bool,
        batch_size: int,
        beam_size: int = 5,
    ) -> None:
        from faster_whisper import WhisperModel

        if device == "cuda":
            compute_type = "float16" if fp16 else "float32"
        else:
            compute_type = "int8"  # CTranslate2's int8 on CPU: ~2x faster than float32, same words on our refs
        self.model = WhisperModel(str(model_dir), device=device, compute_type=compute_type, cpu_threads=threads)
        self.vad = vad
        self.model_dir = model_dir
        self.device = device
        self.compute_type = compute_type
        self.batch_size = batch_size
        self.beam_size = beam_size  # 5 costs ~15% more than greedy here (decoding is cheap next to encoding)
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
            "beam_size": str(self.beam_size),
        }

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> EngineResult:
        spans = self.vad.segments(audio, options.checkpoint)
        if not spans:
            return EngineResult(text="", raw_text="", segments=[], language=options.language or "")
        clips = [audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)] for start, end in spans]
        language = options.language or self.detect_language(clips)
        # Each sentence is decoded on its own, so its times are VAD's; sentences of similar length share a batch,
        # since a batch is encoded in one window as long as its longest clip.
        order = sorted(range(len(clips)), key=lambda i: clips[i].size)
        texts = [""] * len(clips)
        done, total = 0.0, sum(c.size for c in clips)
        for g in range(0, len(order), self.batch_size):
            group = order[g : g + self.batch_size]
            decoded = self.decode([clips[i] for i in group], language, options.hotwords, self.beam_size)
            for i, text in zip(group, decoded, strict=True):
                texts[i] = text
                done += clips[i].size
            options.checkpoint(done / total)
        segments = [
            Segment(start=round(start, 3), end=round(end, 3), text=text)
            for (start, end), text in zip(spans, texts, strict=True)
            if text
        ]
        joiner = "" if language in ("zh", "ja", "ko", "yue") else " "
        text = joiner.join(s.text for s in segments)
        # Whisper punctuates as it decodes: there is no separate unpunctuated pass to report
        return EngineResult(text=text, raw_text=text, segments=segments, language=language)

    def transcribe_utterance(self, audio: np.ndarray, options: TranscribeOptions, final: bool) -> str:
        """Text of one short utterance (live dictation): partials decode greedily (they are redone every half
        second), a final sentence with the file path's beams."""
        clip = audio[-int(WINDOW_S * SAMPLE_RATE) :]
        return self.decode([clip], options.language or "zh", options.hotwords, self.beam_size if final else 1)[0]

    def stream_partial(self, chunk: np.ndarray, cache: dict, is_final: bool) -> str:
        raise RuntimeError("Whisper has no streaming model: live partials re-decode the open utterance")

    def detect_language(self, clips: list[np.ndarray]) -> str:
        """Language of the first ~10 s of speech, from one encoder pass over a window cut to it."""
        take, size = [], 0
        for clip in clips:
            take.append(clip)
            size += clip.size
            if size >= MIN_WINDOW_S * SAMPLE_RATE:
                break
        speech = np.concatenate(take)[: int((WINDOW_S - PAD_S) * SAMPLE_RATE)]
        encoded = self.model.encode(self._features([speech]))
        return self.model.model.detect_language(encoded)[0][0][0][2:-2]  # "<|zh|>" -> "zh"

    def decode(self, clips: list[np.ndarray], language: str, hotwords: list[str], beam_size: int) -> list[str]:
        """Text of each clip (at most 30 s of speech), decoded together.

        faster-whisper pads every clip to Whisper's 30 s window; here a batch is encoded in a window cut to its
        longest clip plus a little silence, several times cheaper for sentences of a few seconds. A clip whose
        decode loops (a known failure of short windows) is decoded again in the full 30 s window."""
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        model = self.model
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
        context = tokenizer.encode(" " + ZH_PROMPT) if language == "zh" else []
        prompt = model.get_prompt(tokenizer, context, without_timestamps=True, hotwords=" ".join(hotwords) or None)
        suppress = get_suppressed_tokens(tokenizer, [-1])

        def generate(batch: list[np.ndarray], window: float | None) -> list[tuple[str, bool]]:
            """(text, looping) of each clip."""
            longest = max(c.size for c in batch) / SAMPLE_RATE
            limit = min(model.max_length, len(prompt) + MAX_TOKENS_MARGIN + int(MAX_TOKENS_PER_S * longest))
            results = model.model.generate(
                model.encode(self._features(batch, window)),
                [prompt] * len(batch),
                beam_size=beam_size,
                max_length=limit,
                suppress_blank=True,
                suppress_tokens=suppress,
                return_scores=True,
                return_no_speech_prob=True,
            )
            out = []
            for r in results:
                tokens = [t for t in r.sequences_ids[0] if t < tokenizer.eot]
                if r.no_speech_prob > NO_SPEECH_PROB and r.scores[0] < NO_SPEECH_LOGPROB:  # scores: mean log-prob
                    out.append(("", False))
                    continue
                text = self._tidy(tokenizer.decode(tokens), language)
                hit_limit = len(prompt) + len(tokens) >= limit
                out.append((text, hit_limit or _LOOP.search(text.replace(" ", "")) is not None))
            return out

        clips = [c[: int(WINDOW_S * SAMPLE_RATE)] for c in clips]
        decoded = generate(clips, None)
        for i, (_text, looping) in enumerate(decoded):
            if looping:
                decoded[i] = generate([clips[i]], WINDOW_S)[0]
        return [text for text, _looping in decoded]

    def _features(self, clips: list[np.ndarray], window: float | None = None) -> np.ndarray:
        """Log-mel features of each clip padded with silence to one window: the given one, else the longest
        clip plus PAD_S, at least MIN_WINDOW_S, at most Whisper's 30 s."""
        longest = max(c.size for c in clips) / SAMPLE_RATE
        window = window or min(WINDOW_S, max(MIN_WINDOW_S, math.ceil(longest + PAD_S)))
        samples = int(window * SAMPLE_RATE)
        frames = samples // self.model.feature_extractor.hop_length
        padded = [np.pad(c[:samples], (0, samples - min(samples, c.size))) for c in clips]
        return np.stack([self.model.feature_extractor(p)[:, :frames] for p in padded])

    @staticmethod
    def _tidy(text: str, language: str) -> str:
        text = text.strip()
        if language == "zh":
            # on a clip with no words Whisper may answer with its own prompt: that is not speech
            text = tidy_chinese(text).replace(ZH_PROMPT, "").replace(ZH_PROMPT.rstrip("。"), "").strip()
        return text
