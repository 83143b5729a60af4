"""The embedded offline engine: faster-whisper on Whisper base, segmented by FSMN-VAD."""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import opencc

from .audio import SAMPLE_RATE
from .engine import EngineResult, TranscribeOptions
from .metrics import strip_punctuation
from .transcript import Segment, Word
from .vad import SpeechDetector, SpeechFeed

# Whisper writes Chinese in traditional characters about as often as simplified; a simplified prompt steers it.
ZH_PROMPT = "以下是普通话的句子。"
_HALF_TO_FULL = str.maketrans({",": "，", "?": "？", "!": "！", ":": "：", ";": "；"})
_CJK = r"[\u3400-\u9fff]"

WINDOW_S = 30.0  # Whisper's input window
MIN_WINDOW_S = 10.0  # a clip is encoded in a window this long at least ...
# ... or this long in a file of more sentences than a batch (its sentences are packed): the encoder's cost
# follows the window, and there the lone sentences are most of it (same CER on the dense references).
DENSE_MIN_WINDOW_S = 7.0
PAD_S = 3.0  # ... with this much silence after the speech
# Neighbouring sentences share a window (so short ones do not each pay a >= 10 s window) up to this much audio,
# with this much silence put between them: Whisper closes a timestamped segment at each such pause, and the
# segment's time says whose text it is. Chosen by measurement (bench/bench_windows.py, bench/RESULTS.md).
PACK_S = 7.0
GAP_S = 0.6
# A timestamped segment reaching this far into two sentences holds text of both: they are decoded again alone.
STRADDLE_S = 0.4
# ... unless its text can be cut at a punctuation mark so that each part's length is within this factor of what
# the sentence's duration predicts.
CUT_RATIO = 2.0
_CUT_AFTER = re.compile(r"[。！？，、；,.!?;]\s*$")
# faster-whisper's defaults for gluing punctuation to the word before or after it
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
# A decode longer than this many tokens per second of speech (plus a margin) is looping, not transcribing.
# CTranslate2's CPU encoder costs less per window in small batches (the short-sentence file's 36 windows: 2.9 s
# two at a time against 4.1 s eight at a time), its decoder less in big ones: windows are encoded this many at a
# time and decoded in batches of `batch_size`.
CPU_ENCODE_BATCH = 2
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


@dataclass
class Window:
    """Sentences decoded together: their clips one after another with GAP_S of silence between them."""

    sentences: list[int]  # indexes of the sentences (VAD spans) it holds, in order
    offsets: list[float]  # where each starts in `audio`, seconds
    audio: np.ndarray
    gap: float = 0.0  # seconds of silence between them

    def slot_spans(self) -> list[tuple[float, float]]:
        ends = [*self.offsets[1:], self.audio.size / SAMPLE_RATE + self.gap]
        return [(start, end - self.gap) for start, end in zip(self.offsets, ends, strict=True)]


@dataclass
class SlotText:
    """One sentence's text from its window, and its words (times from the sentence's start) when asked for."""

    text: str
    tokens: list[int] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)


@dataclass
class DecodeStats:
    """How the last file was decoded (for benchmarks and logs)."""

    windows: int
    retried: int  # windows that looped and were decoded again in the full 30 s window
    alone: int  # sentences decoded again on their own (text not kept apart from a neighbour's, or empty)


@dataclass
class Round:
    """Windows ready to decode, and how much of the audio the VAD had read when they were (1.0: all of it, and
    these are the last)."""

    windows: list[Window]
    read: float

    @property
    def last(self) -> bool:
        return self.read >= 1.0


def _kinds(windows: list[Window]) -> tuple[list[Window], list[Window]]:
    """The windows of one sentence, and the packed ones (CTranslate2 decodes a batch with one prompt form)."""
    return [w for w in windows if len(w.sentences) == 1], [w for w in windows if len(w.sentences) > 1]


def _clip(audio: np.ndarray, span: tuple[float, float]) -> np.ndarray:
    return audio[int(span[0] * SAMPLE_RATE) : int(span[1] * SAMPLE_RATE)]


def pack_sentences(
    clips: list[np.ndarray], pack_s: float | None = None, gap_s: float | None = None, first: int = 0
) -> list[Window]:
    """Neighbouring sentences in windows of at most `pack_s` seconds (gaps included); a longer one alone.
    `first`: the index of clips[0] among the file's sentences."""
    pack = int((pack_s or PACK_S) * SAMPLE_RATE)
    gap = np.zeros(int((GAP_S if gap_s is None else gap_s) * SAMPLE_RATE), np.float32)
    windows: list[Window] = []
    current: list[int] = []

    def close() -> None:
        parts, offsets, at = [], [], 0
        for k, i in enumerate(current):
            if k:
                parts.append(gap)
                at += gap.size
            offsets.append(at / SAMPLE_RATE)
            parts.append(clips[i - first])
            at += clips[i - first].size
        windows.append(Window(list(current), offsets, np.concatenate(parts), gap.size / SAMPLE_RATE))

    size = 0
    for i, clip in enumerate(clips, start=first):
        if current and size + gap.size + clip.size > pack:
            close()
            current, size = [], 0
        size += (gap.size if current else 0) + clip.size
        current.append(i)
    if current:
        close()
    return windows


def _within(start: float, end: float, low: float, high: float) -> tuple[float, float]:
    """A word's times kept inside its sentence (alignment can stray past a pause), rounded to milliseconds."""
    start = min(max(start, low), high)
    return round(start, 3), round(min(max(end, start), high), 3)


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
        self.last_stats = DecodeStats(0, 0, 0)

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
        with self.vad.feed(audio) as feed:
            # The first sentences tell whether the file is dense (more sentences than a batch); decoding starts
            # on them while the VAD reads on.
            first = feed.wait(lambda spans: len(spans) > self.batch_size, options.checkpoint)
            if not first:
                return EngineResult(text="", raw_text="", segments=[], language=options.language or "")
            dense = len(first) > self.batch_size
            clips: list[np.ndarray] = []
            rounds = self.packed_rounds(feed, audio, clips, options) if dense else self.lone_round(first, audio, clips)
            least = DENSE_MIN_WINDOW_S if dense else MIN_WINDOW_S
            slots, language = self.decode_windows(rounds, options.language, options, clips, least)
            spans = feed.spans
        segments = []
        for (start, end), slot in zip(spans, slots, strict=True):
            if slot.text:
                words = [Word(*_within(start + w.start, start + w.end, start, end), w.word) for w in slot.words]
                segments.append(Segment(start=round(start, 3), end=round(end, 3), text=slot.text, words=words))
        for s, marked in zip(segments, with_pauses([s.text for s in segments], language), strict=True):
            s.text = marked
        text = joined([s.text for s in segments], language)
        # Whisper punctuates as it decodes: there is no separate unpunctuated pass to report
        return EngineResult(text=text, raw_text=text, segments=segments, language=language)

    def windows(self, clips: list[np.ndarray]) -> list[Window]:
        """Packed windows, unless every sentence fits in one batch on its own: then a batch either way, packing
        would save only a little encoder time, and a sentence alone decodes as before packing (on the shared
        short references: one character better)."""
        if len(clips) <= self.batch_size:
            return [Window([i], [0.0], clip) for i, clip in enumerate(clips)]
        return pack_sentences(clips)

    def lone_round(
        self, spans: list[tuple[float, float]], audio: np.ndarray, clips: list[np.ndarray]
    ) -> Iterator[Round]:
        """A file of no more sentences than a batch (the VAD has read it all): its windows, one round."""
        clips.extend(_clip(audio, s) for s in spans)
        yield Round(self.windows(clips), 1.0)

    def packed_rounds(
        self, feed: SpeechFeed, audio: np.ndarray, clips: list[np.ndarray], options: TranscribeOptions
    ) -> Iterator[Round]:
        """Windows as the VAD finds their sentences, a round per minute it reads, each sentence's audio added to
        `clips`. A window is yielded once the sentence after it is known: packing is greedy, so it is the window
        that packing the whole file would make. A round holds what the VAD found in its minutes, however far it
        has read by then, so the batches (and the text) do not depend on how busy the machine is."""
        taken = 0  # sentences in windows yielded
        for minute in range(1, feed.minutes + 1):
            spans = feed.after_minute(minute, options.checkpoint)
            clips.extend(_clip(audio, s) for s in spans[len(clips) :])
            windows = pack_sentences(clips[taken:], first=taken)
            last = minute == feed.minutes
            if not last:
                windows = windows[:-1]  # its next sentence may still join it
            taken += sum(len(w.sentences) for w in windows)
            yield Round(windows, 1.0 if last else minute / feed.minutes)

    def decode_windows(
        self,
        rounds: Iterable[Round],
        language: str | None,
        options: TranscribeOptions,
        clips: list[np.ndarray],
        min_window: float = MIN_WINDOW_S,
    ) -> tuple[list[SlotText], str]:
        """The text of every sentence (indexed as `clips`, which holds every sentence once the last round is
        in). Windows of similar length share a batch, since a batch is encoded in one window as long as its
        longest: until the last round only early_batches() are decoded, the rest wait for more windows. A sentence
        whose text Whisper did not keep apart from its neighbour's (one timestamped segment across the pause),
        or left empty, is decoded again on its own. `language` None: the first batch's encoder output tells it
        (no encoder pass of its own). Returns the texts and the language."""
        decoder: WindowDecoder | None = None
        out: dict[int, SlotText] = {}
        again: list[int] = []
        # a streamed response wants its first sentences first: windows one at a time, in time order
        streamed = options.partial_text is not None
        pending: list[Window] = []
        count, decoded, seen, shown = 0, 0, 0, 0.0
        for round_ in rounds:
            pending += round_.windows
            count += len(round_.windows)
            seen += sum(w.audio.size for w in round_.windows)
            if streamed:
                groups = [[w] for w in pending]
            else:
                groups = self.batches(pending) if round_.last else self.early_batches(pending)
            for group in groups:
                encoded = None
                if decoder is None:
                    encoded = self.encode(self.features([w.audio for w in group], None, min_window))
                    language = language or self.language_of(encoded)
                    decoder = WindowDecoder(
                        self, language, options.hotwords, self.beam_size, options.word_timestamps, min_window
                    )
                for window, texts in zip(group, decoder.decode(group, encoded), strict=True):
                    for i, slot in zip(window.sentences, texts, strict=True):
                        if slot is None or (not slot.text and len(window.sentences) > 1):
                            again.append(i)
                        else:
                            out[i] = slot
                    decoded += window.audio.size
                pending = [w for w in pending if all(w is not g for g in group)]
                # of the audio read so far, the share decoded
                shown = max(shown, round_.read * decoded / seen)
                options.checkpoint(shown)
                if streamed:  # the sentences final so far from the start (one to decode again stops it there)
                    ready = [out[i].text for i in itertools.takewhile(lambda i: i in out, range(len(clips)))]
                    options.text_so_far(joined(with_pauses([t for t in ready if t], language), language))
        assert decoder is not None and language is not None  # there was a window: transcribe() saw a sentence
        self.last_stats = DecodeStats(count, decoder.retried, len(again))
        for group in self.batches([Window([i], [0.0], clips[i]) for i in again]):
            for window, texts in zip(group, decoder.decode(group), strict=True):
                out[window.sentences[0]] = texts[0] or SlotText("")
        return [out.get(i) or SlotText("") for i in range(len(clips))], language

    def early_batches(self, pending: list[Window]) -> list[list[Window]]:
        """While the VAD reads on: the shortest batch of each kind (packed or alone) of which two batches' worth
        are waiting. Taken from that many, it is the batch that sorting the whole file would make (the same
        text on the shared dense files); the rest wait for more windows."""
        return [b[0] for b in (self.batches(k) for k in _kinds(pending)) if len(b) > 1 and len(b[1]) == self.batch_size]

    def batches(self, windows: list[Window]) -> list[list[Window]]:
        """Batches of similar length, the windows of one sentence apart from the packed ones."""
        out = []
        for kind in _kinds(windows):
            kind = sorted(kind, key=lambda w: w.audio.size)
            out += [kind[g : g + self.batch_size] for g in range(0, len(kind), self.batch_size)]
        return out

    def transcribe_utterance(self, audio: np.ndarray, options: TranscribeOptions, final: bool) -> str:
        """Text of one short utterance (live dictation): partials decode greedily (they are redone every half
        second), a final sentence with the file path's beams."""
        clip = audio[-int(WINDOW_S * SAMPLE_RATE) :]
        return self.decode([clip], options.language or "zh", options.hotwords, self.beam_size if final else 1)[0]

    def timed_utterance(self, audio: np.ndarray, options: TranscribeOptions) -> tuple[str, list[Word]]:
        """A finished utterance as transcribe_utterance(final=True) decodes it, with its words' times from the
        utterance's start (live finals for FunASR's clients, which show a `timestamp`)."""
        clip = audio[-int(WINDOW_S * SAMPLE_RATE) :]
        decoder = WindowDecoder(self, options.language or "zh", options.hotwords, self.beam_size, words=True)
        slot = decoder.decode([Window([0], [0.0], clip)])[0][0] or SlotText("")
        shift = (audio.size - clip.size) / SAMPLE_RATE
        return slot.text, [Word(w.start + shift, w.end + shift, w.word) for w in slot.words]

    def stream_partial(self, chunk: np.ndarray, cache: dict, is_final: bool) -> str:
        raise RuntimeError("Whisper has no streaming model: live partials re-decode the open utterance")

    def language_of(self, encoded) -> str:
        """The language most likely over a batch's windows (each window's probabilities summed), from their
        encoder output."""
        votes: dict[str, float] = {}
        for ranked in self.model.model.detect_language(encoded):
            for token, prob in ranked:
                votes[token] = votes.get(token, 0.0) + prob
        return max(votes, key=lambda t: votes[t])[2:-2]  # "<|zh|>" -> "zh"

    def decode(self, clips: list[np.ndarray], language: str, hotwords: list[str], beam_size: int) -> list[str]:
        """Text of each clip (at most 30 s of speech) decoded on its own, without timestamps (live dictation)."""
        decoder = WindowDecoder(self, language, hotwords, beam_size, words=False)
        windows = [Window([i], [0.0], c[: int(WINDOW_S * SAMPLE_RATE)]) for i, c in enumerate(clips)]
        return [(texts[0] or SlotText("")).text for texts in decoder.decode(windows)]

    def features(
        self, clips: list[np.ndarray], window: float | None = None, min_window: float | None = None
    ) -> np.ndarray:
        """Log-mel features of each clip padded with silence to one window: the given one, else the longest
        clip plus PAD_S, at least `min_window` (MIN_WINDOW_S), at most Whisper's 30 s."""
        longest = max(c.size for c in clips) / SAMPLE_RATE
        least = MIN_WINDOW_S if min_window is None else min_window
        window = window or min(WINDOW_S, max(least, math.ceil(longest + PAD_S)))
        samples = int(window * SAMPLE_RATE)
        frames = samples // self.model.feature_extractor.hop_length
        padded = [np.pad(c[:samples], (0, samples - min(samples, c.size))) for c in clips]
        return np.stack([self.model.feature_extractor(p)[:, :frames] for p in padded])

    def encode(self, features: np.ndarray):
        """The encoder's output for a batch of features, as one StorageView (see CPU_ENCODE_BATCH)."""
        step = CPU_ENCODE_BATCH if self.device == "cpu" else len(features)
        if len(features) <= step:
            return self.model.encode(features)
        import ctranslate2

        parts = [np.array(self.model.encode(features[g : g + step])) for g in range(0, len(features), step)]
        return ctranslate2.StorageView.from_array(np.concatenate(parts))

    @staticmethod
    def tidy(text: str, language: str) -> str:
        text = text.strip()
        if language == "zh":
            # on a clip with no words Whisper may answer with its own prompt: that is not speech
            text = tidy_chinese(text).replace(ZH_PROMPT, "").replace(ZH_PROMPT.rstrip("。"), "").strip()
        return text


def with_pauses(texts: list[str], language: str) -> list[str]:
    """Chinese sentences but the last end in a pause mark: a packed sentence cut where Whisper wrote a space
    keeps one. (So the text of the first sentences is where the whole text begins.)"""
    if language != "zh":
        return list(texts)
    last = len(texts) - 1
    return [t if i == last or re.search(r"[。！？，、；：…]$", t) else t + "，" for i, t in enumerate(texts)]


def joined(texts: list[str], language: str) -> str:
    return ("" if language in ("zh", "ja", "ko", "yue") else " ").join(texts)


class WindowDecoder:
    """Decodes windows of packed sentences for one language, hotword list and beam size."""

    def __init__(
        self,
        engine: WhisperEngine,
        language: str,
        hotwords: list[str],
        beam_size: int,
        words: bool,
        min_window: float | None = None,
    ) -> None:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self.engine = engine
        model = engine.model
        self.tokenizer = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language
        )
        context = self.tokenizer.encode(" " + ZH_PROMPT) if language == "zh" else []
        # A sentence alone is decoded without timestamps, exactly as before packing (with them: within one
        # character on the shared references); packed ones need them to be told apart.
        self.prompts = {
            stamped: model.get_prompt(
                self.tokenizer, context, without_timestamps=not stamped, hotwords=" ".join(hotwords) or None
            )
            for stamped in (False, True)
        }
        self.suppress = get_suppressed_tokens(self.tokenizer, [-1])
        self.language = language
        self.beam_size = beam_size
        self.words = words
        self.min_window = min_window  # None: MIN_WINDOW_S
        self.retried = 0  # windows decoded again in the full window

    def decode(self, windows: list[Window], encoded=None) -> list[list[SlotText | None]]:
        """Windows all alone (one sentence each) or all packed: CTranslate2 decodes a batch with one prompt form.
        Per window, each sentence's text; None for a sentence whose text ran into its neighbour's. A window
        whose decode loops (a known failure of short windows) is decoded again in the full 30 s window.
        `encoded`: the windows' encoder output, when the caller has it already."""
        decoded = self.generate(windows, None, encoded)
        for i, (_texts, looping) in enumerate(decoded):
            if looping:
                self.retried += 1
                decoded[i] = self.generate([windows[i]], WINDOW_S)[0]
        return [texts for texts, _looping in decoded]

    def generate(
        self, windows: list[Window], window_s: float | None, encoded=None
    ) -> list[tuple[list[SlotText | None], bool]]:
        """(texts, looping) of each window."""
        model, tok = self.engine.model, self.tokenizer
        longest = max(w.audio.size for w in windows) / SAMPLE_RATE
        slots = max(len(w.sentences) for w in windows)
        prompt = self.prompts[slots > 1]
        stamps = 3 * slots if slots > 1 else 0  # a segment's two timestamps, and a spare
        limit = min(model.max_length, len(prompt) + MAX_TOKENS_MARGIN + int(MAX_TOKENS_PER_S * longest) + stamps)
        if encoded is None:
            encoded = self.engine.encode(self.engine.features([w.audio for w in windows], window_s, self.min_window))
        results = model.model.generate(
            encoded,
            [prompt] * len(windows),
            beam_size=self.beam_size,
            max_length=limit,
            suppress_blank=True,
            suppress_tokens=self.suppress,
            return_scores=True,
            return_no_speech_prob=True,
        )
        out: list[tuple[list[SlotText | None], bool]] = []
        for window, r in zip(windows, results, strict=True):
            tokens = [t for t in r.sequences_ids[0] if t != tok.eot]
            if r.no_speech_prob > NO_SPEECH_PROB and r.scores[0] < NO_SPEECH_LOGPROB:  # scores: mean log-prob
                out.append(([SlotText("") for _ in window.sentences], False))
                continue
            texts = [
                None if t is None else SlotText(self.engine.tidy(tok.decode(t), self.language), t)
                for t in self.split(window, tokens)
            ]
            hit_limit = len(prompt) + len(tokens) >= limit
            looping = any(t is not None and _LOOP.search(t.text.replace(" ", "")) for t in texts)
            out.append((texts, hit_limit or looping))
        if self.words:
            self.add_words(windows, out, encoded)
        return out

    def split(self, window: Window, tokens: list[int]) -> list[list[int] | None]:
        """Each sentence's text tokens, from the timestamped segments Whisper closed: a segment belongs to the
        sentence it overlaps; one reaching STRADDLE_S into two sentences leaves both None."""
        begin = self.tokenizer.timestamp_begin
        text = [t for t in tokens if t < begin]
        if len(window.sentences) == 1:
            return [text]
        pieces: list[tuple[float, float | None, list[int]]] = []
        start, current = 0.0, []
        for t in tokens:
            if t < begin:
                current.append(t)
                continue
            at = (t - begin) * 0.02  # Whisper's timestamp step
            if current:
                pieces.append((start, at, current))
                current = []
            start = at
        if current:  # the last segment was not closed
            pieces.append((start, None, current))
        spans = window.slot_spans()
        out: list[list[int] | None] = [[] for _ in spans]
        broken: set[int] = set()
        for begin_s, end_s, piece in pieces:
            end_s = window.audio.size / SAMPLE_RATE if end_s is None else end_s
            overlap = [max(0.0, min(end_s, b) - max(begin_s, a)) for a, b in spans]
            reach = [
                k for k, (o, (a, b)) in enumerate(zip(overlap, spans, strict=True)) if o > min(STRADDLE_S, (b - a) / 2)
            ]
            if len(reach) > 1:  # Whisper did not close its segment at the pause: cut its text at punctuation
                covered = range(reach[0], reach[-1] + 1)
                parts = self.cut_at_punctuation(piece, [spans[k][1] - spans[k][0] for k in covered])
                if parts is None:
                    broken.update(covered)
                for k, part in zip(covered, parts or [], strict=False):
                    out[k].extend(part)  # type: ignore[union-attr]
                continue
            middle = (begin_s + end_s) / 2
            k = reach[0] if reach else min(range(len(spans)), key=lambda k: abs(middle - sum(spans[k]) / 2))
            out[k].extend(piece)  # type: ignore[union-attr]
        return [None if k in broken else t for k, t in enumerate(out)]

    def cut_at_punctuation(self, tokens: list[int], seconds: list[float]) -> list[list[int]] | None:
        """The text of consecutive sentences (their lengths `seconds`) cut at the punctuation marks Whisper wrote
        at their pauses: the cuts whose parts' lengths best match the sentences' (speech runs at a steady
        rate), None when no choice of cuts comes within CUT_RATIO of it everywhere."""
        text = self.tokenizer.decode(tokens)
        prefixes = [self.tokenizer.decode(tokens[:j]) for j in range(len(tokens) + 1)]
        cuts = [
            j
            for j in range(1, len(tokens))
            if not prefixes[j].endswith("\ufffd")  # not inside a character split over tokens
            and (
                _CUT_AFTER.search(prefixes[j])
                or (re.search(f"{_CJK}$", prefixes[j]) and re.match(rf"\s+{_CJK}", text[len(prefixes[j]) :]))
            )
        ]  # after a punctuation mark, or at a space between Chinese words (how Whisper marks a pause without one)
        n = len(seconds)
        if len(cuts) < n - 1:
            return None
        chars = [len(strip_punctuation(p)) for p in prefixes]
        total, length = chars[-1], sum(seconds)
        expected = [total * s / length for s in seconds]

        def cost(a: int, b: int, k: int) -> float:  # tokens a..b as sentence k
            return abs(math.log((chars[b] - chars[a] + 1) / (expected[k] + 1)))

        # best[k][j]: least cost of sentences 0..k with sentence k ending at boundary j (cuts + the end)
        ends = [*cuts, len(tokens)]
        best = [{j: (cost(0, e, 0), [e]) for j, e in enumerate(ends)}]
        for k in range(1, n):
            row = {}
            for j, e in enumerate(ends):
                options = [(c + cost(ends[i], e, k), path + [e]) for i, (c, path) in best[-1].items() if i < j]
                if options:
                    row[j] = min(options)
            best.append(row)
        if len(ends) - 1 not in best[-1]:
            return None
        _cost, path = best[-1][len(ends) - 1]
        bounds = [0, *path]
        parts = [tokens[a:b] for a, b in itertools.pairwise(bounds)]
        if any(cost(a, b, k) > math.log(CUT_RATIO) for k, (a, b) in enumerate(itertools.pairwise(bounds))):
            return None
        return parts

    def add_words(self, windows: list[Window], out: list[tuple[list[SlotText | None], bool]], encoded) -> None:
        """Whisper's word timestamps (cross-attention alignment of the decoded tokens to the window's audio),
        each word given to the sentence its first token came from, times from that sentence's start."""
        from faster_whisper.transcribe import merge_punctuations

        tok = self.tokenizer
        batch = [[t for slot in texts if slot is not None for t in slot.tokens] or [tok.eot] for texts, _ in out]
        frames = [max(1, int(w.audio.size / SAMPLE_RATE * 100)) for w in windows]  # mel frames of audio
        aligned = self.engine.model.find_alignment(tok, batch, encoded, frames)
        for window, (texts, _looping), words in zip(windows, out, aligned, strict=True):
            merge_punctuations(words, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)
            owner = [k for k, slot in enumerate(texts) if slot is not None for _ in slot.tokens]
            used = 0
            for w in words:
                if not w["word"] or used >= len(owner):
                    used += len(w["tokens"])
                    continue
                k = owner[used]
                used += len(w["tokens"])
                text = w["word"].strip()
                if self.language == "zh":
                    text = tidy_chinese(text)
                offset = window.offsets[k]
                slot = texts[k]
                if text and slot is not None:
                    slot.words.append(Word(float(w["start"]) - offset, float(w["end"]) - offset, text))
