"""The Paraformer engine: funasr.AutoModel with SeACo-Paraformer, FSMN-VAD and CT-Transformer punctuation."""

from __future__ import annotations

import re
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import numpy as np

from .audio import SAMPLE_RATE
from .campplus import unify
from .engine import EngineResult, TranscribeOptions
from .transcript import Segment, Word
from .vad import load_funasr_model

# FunASR's streaming setting [0, 10, 5]: 600 ms chunks with 300 ms look-ahead
STREAM_CHUNK = [0, 10, 5]
STREAM_STRIDE = STREAM_CHUNK[1] * 960  # samples per streaming call

# Audio handed to FunASR in one call. AutoModel holds the whole input's VAD features and results at once, so
# a long file goes in pieces of this length, cut at the quietest moment near each boundary.
PIECE_S = 300.0
CUT_SEARCH_S = 5.0  # how far from the nominal boundary a cut may move to find a pause
CUT_FRAME = SAMPLE_RATE // 10  # 100 ms frames for the quietness measure


class ParaformerEngine:
    name = "paraformer"
    languages: tuple[str, ...] = ()  # Mandarin with English words; nothing to choose

    def __init__(
        self,
        asr_dir: Path,
        vad_dir: Path,
        punc_dir: Path,
        streaming_dir: Path | None,
        device: str,
        threads: int,
        fp16: bool,
        batch_size: int,
        max_end_silence_ms: int,
        max_segment_ms: int,
        speaker_dir: Path | None = None,
    ) -> None:
        self.model = load_funasr_model(
            model=str(asr_dir),
            vad_model=str(vad_dir),
            punc_model=str(punc_dir),
            vad_kwargs={"max_single_segment_time": max_segment_ms},
            device=device,
            ncpu=threads,
            fp16=fp16,
            **({"spk_model": str(speaker_dir)} if speaker_dir is not None else {}),
        )
        # AutoModel runs its spk_model on every call once it has one: it is kept aside and lent to the calls
        # that ask for speakers (one call at a time: the pipeline's lock), so the others do not pay for it.
        self.speaker_model = self.model.spk_model
        self.model.spk_model = None
        # two-pass live dictation: the streaming model gives partials chunk by chunk, the offline model finals
        self.streaming = None
        if streaming_dir is not None:
            self.streaming = load_funasr_model(
                model=str(streaming_dir),
                device=device,
                ncpu=threads,
            )
        self.paths = {"model_path": str(asr_dir), "vad_model": str(vad_dir), "punc_model": str(punc_dir)}
        if streaming_dir is not None:
            self.paths["streaming_model"] = str(streaming_dir)
        if speaker_dir is not None:
            self.paths["speaker_model"] = str(speaker_dir)
        self.device = device
        self.model_name = asr_dir.name
        # batch_size_s: seconds of speech decoded together; 60 s per batch slot keeps memory bounded on long files
        self.batch_size_s = max(60, 60 * batch_size)
        self.max_end_silence_ms = max_end_silence_ms
        self.piece_s = PIECE_S

    def describe(self) -> dict[str, str]:
        return {"engine": self.name, "model": self.model_name, "device": self.device, **self.paths}

    def stream_partial(self, chunk: np.ndarray, cache: dict, is_final: bool) -> str:
        """Feed STREAM_STRIDE samples of an open utterance to the streaming model (state in `cache`, one per
        utterance); returns the text these samples added."""
        result = self.streaming.generate(
            input=chunk,
            cache=cache,
            is_final=is_final,
            chunk_size=STREAM_CHUNK,
            encoder_chunk_look_back=4,
            decoder_chunk_look_back=1,
            disable_pbar=True,
        )
        return result[0]["text"] if result else ""

    def transcribe_utterance(self, audio: np.ndarray, options: TranscribeOptions, final: bool) -> str:
        """Text of one utterance (live dictation): the offline model re-decodes it, punctuated."""
        return self.transcribe(audio, options).text

    def timed_utterance(self, audio: np.ndarray, options: TranscribeOptions) -> tuple[str, list[Word]]:
        """A finished utterance with FunASR's character times from its start (the same decode as above)."""
        result = self.transcribe(audio, replace(options, word_timestamps=True))
        return result.text, [w for s in result.segments for w in s.words]

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> EngineResult:
        if audio.size < SAMPLE_RATE // 100:
            return EngineResult(text="", raw_text="", segments=[], language="zh")
        texts, raws, pieces = [], [], []
        cuts = piece_bounds(audio, int(self.piece_s * SAMPLE_RATE))
        with_speakers = options.speakers is not None and self.speaker_model is not None
        for a, b in pairwise(cuts):
            text, raw, piece_segments, centers = self._transcribe_piece(
                audio[a:b], options, offset=a / SAMPLE_RATE, with_speakers=with_speakers
            )
            texts.append(text)
            raws.append(raw)
            pieces.append((piece_segments, centers))
            options.checkpoint(b / audio.size)
            options.text_so_far("".join(texts))
        if with_speakers:
            segments = unify(pieces, options.speakers or 0)
        else:
            segments = [s for piece_segments, _ in pieces for s in piece_segments]
        return EngineResult(text="".join(texts), raw_text="".join(raws), segments=segments, language="zh")

    def _transcribe_piece(
        self, audio: np.ndarray, options: TranscribeOptions, offset: float, with_speakers: bool = False
    ) -> tuple[str, str, list[Segment], np.ndarray | None]:
        speaker_args = {}
        if with_speakers:  # CAM++ clusters this piece; preset_spk_num fixes the count
            self.model.spk_model = self.speaker_model
            speaker_args = {"preset_spk_num": options.speakers or None, "return_spk_center": True}
        try:
            result = self.model.generate(
                input=audio,
                fs=SAMPLE_RATE,
                # None, not "": SeACo treats an empty hotword string as a (different) bias list
                hotword=" ".join(options.hotwords) or None,
                sentence_timestamp=True,
                return_raw_text=True,
                batch_size_s=self.batch_size_s,
                max_end_silence_time=self.max_end_silence_ms,
                disable_pbar=True,
                **speaker_args,
            )
        finally:
            self.model.spk_model = None
        item = result[0] if result else {}
        segments = []
        for s in item.get("sentence_info", []):
            text = (s.get("text") or s.get("sentence") or "").strip()  # vad_segment mode calls it "sentence"
            if any(ch.isalnum() for ch in text):  # drop a sentence that is only punctuation
                start, end = round(offset + s["start"] / 1000.0, 3), round(offset + s["end"] / 1000.0, 3)
                speaker = str(s["spk"]) if with_speakers and "spk" in s else ""
                words = token_words(s, offset) if options.word_timestamps else []
                segments.append(Segment(start, end, text, speaker, words=words))
        text = item.get("text", "").strip()
        # FunASR joins raw tokens with spaces; Chinese is written without them
        raw = re.sub(r"(?<=[\u3400-\u9fff])\s+(?=[\u3400-\u9fff])", "", item.get("raw_text", text)).strip()
        return text, raw, segments, item.get("spk_embedding_center")


_TOKEN = re.compile(r"[\u3400-\u9fff]|[^\s\u3400-\u9fff]+")  # a Chinese character, or a word of other letters


def token_words(sentence: dict, offset: float) -> list[Word]:
    """FunASR's character timestamps of one sentence (one [start_ms, end_ms] per token of its raw text) as
    words. Without a pair for every token the times cannot be told apart: none are given rather than wrong ones."""
    tokens = _TOKEN.findall(sentence.get("raw_text", ""))
    stamps = sentence.get("timestamp") or []
    if not tokens or len(tokens) != len(stamps):
        return []
    return [
        Word(round(offset + a / 1000.0, 3), round(offset + b / 1000.0, 3), t)
        for t, (a, b) in zip(tokens, stamps, strict=True)
    ]


def piece_bounds(audio: np.ndarray, piece: int) -> list[int]:
    """Sample positions cutting `audio` into pieces of about `piece` samples, each cut moved to the quietest
    100 ms within CUT_SEARCH_S of its nominal place (a pause between words, not the middle of one)."""
    bounds = [0]
    radius = int(CUT_SEARCH_S * SAMPLE_RATE)
    while audio.size - bounds[-1] > piece + radius:
        lo = bounds[-1] + piece - radius
        window = audio[lo : lo + 2 * radius]
        frames = window[: window.size // CUT_FRAME * CUT_FRAME].reshape(-1, CUT_FRAME)
        quietest = int(np.argmin(np.square(frames, dtype=np.float64).mean(axis=1)))
        bounds.append(lo + quietest * CUT_FRAME + CUT_FRAME // 2)
    bounds.append(audio.size)
    return bounds
