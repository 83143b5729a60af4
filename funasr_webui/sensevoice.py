"""The SenseVoice-Small engine: funasr.AutoModel with SenseVoiceSmall, on the clips of our FSMN-VAD.

SenseVoice writes four tags before each clip's text (language, emotion, sound event, with/without ITN), e.g.
"<|en|><|HAPPY|><|Laughter|><|withitn|>Hello.": they are parsed out, never shown as text; the emotion and event
ones that say something (not NEUTRAL, not plain Speech) go to Segment.tags. Punctuation and ITN come from the
model itself (use_itn=True does both), so neither CT-punc nor our ITN is applied on top."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio import SAMPLE_RATE
from .engine import EngineResult, TranscribeOptions
from .speech_clips import decode_in_batches, describe_clip_engine, join_texts, speech_clips
from .transcript import Segment, Word
from .vad import SpeechDetector, load_funasr_model

LANGUAGES = ("zh", "en", "yue", "ja", "ko")  # SenseVoiceSmall's lid_dict, besides auto and nospeech
EMOTIONS = ("HAPPY", "SAD", "ANGRY", "FEARFUL", "DISGUSTED", "SURPRISED")  # NEUTRAL and EMO_UNKNOWN say nothing
EVENTS = ("BGM", "Applause", "Laughter", "Cry", "Sneeze", "Breath", "Cough", "Sing", "Speech_Noise")
_TAG = re.compile(r"<\|([^|<>]*)\|>")


@dataclass
class Tagged:
    """One clip's output: its text without tags, its language tag, its emotion/event tags."""

    text: str
    language: str
    tags: list[str]
    words: list[tuple[float, float, str]] = field(default_factory=list)  # seconds into the clip, when asked


def parse_tagged(raw: str) -> Tagged:
    """SenseVoice's text with its <|...|> tags taken out (wherever they are): language, emotion and event tags
    kept apart; the other tags (Speech, NEUTRAL, withitn, ...) dropped."""
    names = _TAG.findall(raw)
    text = re.sub(r"\s{2,}", " ", _TAG.sub(" ", raw)).strip()
    language = next((n for n in names if n in LANGUAGES or n == "nospeech"), "")
    tags = list(dict.fromkeys(n for n in names if n in EMOTIONS or n in EVENTS))
    return Tagged(text, language, tags)


class SenseVoiceEngine:
    name = "sensevoice"
    languages = LANGUAGES
    streaming = None  # no streaming model: live partials re-decode the open utterance
    own_itn = True  # use_itn: the model writes numbers (and punctuates) itself

    def __init__(
        self, model_dir: Path, vad: SpeechDetector, device: str, threads: int, fp16: bool, batch_size: int
    ) -> None:
        self.fp16 = fp16 and device == "cuda"  # half precision only when asked, and only on a GPU
        self.model = load_funasr_model(model=str(model_dir), device=device, ncpu=threads, fp16=self.fp16)
        self.model_dir = model_dir
        self.vad = vad
        self.device = device
        self.batch_size = batch_size
        self.model_name = model_dir.name

    def describe(self) -> dict[str, str]:
        return describe_clip_engine(self)

    def decode(self, clips: list[np.ndarray], options: TranscribeOptions) -> list[Tagged]:
        results = self.model.generate(
            input=list(clips),
            fs=SAMPLE_RATE,
            language=options.language or "auto",
            use_itn=options.itn,
            batch_size=len(clips),
            output_timestamp=options.word_timestamps,  # token times from the CTC alignment
            disable_pbar=True,
        )
        decoded = []
        for r in results:
            tagged = parse_tagged(r.get("text", ""))
            times = r.get("timestamp") or []
            tagged.words = [(b / 1000.0, e / 1000.0, w) for (b, e), w in zip(times, r.get("words") or [], strict=False)]
            decoded.append(tagged)
        return decoded

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> EngineResult:
        spans, clips = speech_clips(self.vad, audio, options)
        decoded = decode_in_batches(clips, self.batch_size, lambda group: self.decode(group, options), options)
        segments = [
            Segment(
                round(start, 3),
                round(end, 3),
                d.text,
                tags=d.tags,
                words=[Word(round(start + b, 3), round(start + e, 3), w) for b, e, w in d.words],
            )
            for (start, end), d in zip(spans, decoded, strict=True)
            if d.text
        ]
        heard = Counter(d.language for d in decoded if d.text and d.language in LANGUAGES)
        language = options.language or (heard.most_common(1)[0][0] if heard else "zh")
        text = join_texts([s.text for s in segments])
        return EngineResult(text=text, raw_text=text, segments=segments, language=language)

    def transcribe_utterance(self, audio: np.ndarray, options: TranscribeOptions, final: bool) -> str:
        if audio.size < SAMPLE_RATE // 100:
            return ""
        return self.decode([audio], options)[0].text

    def stream_partial(self, chunk: np.ndarray, cache: dict, is_final: bool) -> str:
        raise RuntimeError("SenseVoice has no streaming model: live partials re-decode the open utterance")
