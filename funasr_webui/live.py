"""Live dictation: audio arrives in small chunks; partial text follows the open utterance, and each utterance
is finalized (punctuation, ITN, hotwords) when the streaming VAD hears it end.

Every stream has its own `LiveState` (VAD cache, audio, sentences), so two browser tabs never mix their text.
The models are shared and used one call at a time under the pipeline's lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import soxr

from .audio import SAMPLE_RATE
from .engine import Engine, TranscribeOptions, does_own_itn
from .pipeline import Pipeline
from .transcript import Segment, Transcript, Word

LOOKBACK_S = 1.0  # audio kept before speech starts: the VAD reports a start up to ~0.4 s in the past


@dataclass
class LiveState:
    options: TranscribeOptions
    vad_cache: dict = field(default_factory=dict)
    buffer: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    buffer_start: float = 0.0  # stream time (s) of buffer[0]
    received: float = 0.0  # stream seconds received so far
    utterance_start: float | None = None  # stream time of the open utterance, None in silence
    sentences: list[Segment] = field(default_factory=list)
    partial: str = ""
    stream_cache: dict = field(default_factory=dict)  # streaming-Paraformer state of the open utterance
    streamed_to: float = 0.0  # stream time up to which the streaming model has heard the open utterance
    drafted_at: float = 0.0  # stream time the last partial covered
    draft_gap: float = 0.0  # stream seconds to wait before the next partial
    busy_s: float = 0.0  # processing time spent, for the record's RTF
    finished: bool = False
    record_id: int | None = None

    @property
    def text(self) -> str:
        """Finalized sentences, then the partial of the open utterance."""
        return self.joiner.join([s.text for s in self.sentences] + ([self.partial] if self.partial else []))

    @property
    def joiner(self) -> str:
        return " " if (self.options.language or "zh") not in ("zh", "ja", "ko", "yue") else ""


def to_mono_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    """A browser chunk (int16 or float, mono or interleaved channels) as 16 kHz mono float32."""
    x = np.asarray(samples)
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max + 1)
    x = x.astype(np.float32, copy=False)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if rate != SAMPLE_RATE and x.size:
        x = soxr.resample(x, rate, SAMPLE_RATE).astype(np.float32, copy=False)
    return x


def final_pass(engine: Engine, audio: np.ndarray, options: TranscribeOptions) -> tuple[str, list[Word]]:
    """A closed utterance's text, and its words' times (from its start) when they were asked for and the engine
    can give them: engines that can define `timed_utterance` (Paraformer, Whisper)."""
    timed = getattr(engine, "timed_utterance", None) if options.word_timestamps else None
    if timed is not None:
        return timed(audio, options)
    return engine.transcribe_utterance(audio, options, final=True), []


def shifted(words: list[Word], start: float, end: float) -> list[Word]:
    """Word times from an utterance's start moved to the stream's time base, kept within the utterance."""

    def at(t: float) -> float:
        return round(min(max(start + t, start), end), 3)

    return [Word(at(w.start), at(w.end), w.word) for w in words]


class LiveTranscriber:
    def __init__(self, pipeline: Pipeline, draft_every_s: float = 0.5, max_utterance_s: float = 20.0) -> None:
        self.pipeline = pipeline
        self.draft_every_s = draft_every_s  # bounds the partial re-decoding rate, so decoding keeps up
        self.max_utterance_s = max_utterance_s  # a monologue is cut into sentences of at most this length

    def start(self, options: TranscribeOptions) -> LiveState:
        return LiveState(options=options)

    def feed(self, state: LiveState, samples: np.ndarray, rate: int) -> LiveState:
        """Take one chunk; finalize what the VAD closed; refresh the partial at a bounded rate."""
        chunk = to_mono_16k(samples, rate)
        if state.finished or chunk.size == 0:
            return state
        started = time.perf_counter()
        state.buffer = np.concatenate([state.buffer, chunk])
        state.received += chunk.size / SAMPLE_RATE
        self._follow_vad(state, chunk, is_final=False)
        self._cut_monologue(state)
        engine = self.pipeline.engine_for(state.options.engine)
        if state.utterance_start is not None and engine.streaming is not None:
            self._stream_partial(state)
        elif state.utterance_start is not None and state.received - state.drafted_at >= state.draft_gap:
            began = time.perf_counter()
            with self.pipeline.lock:
                state.partial = engine.transcribe_utterance(
                    self._slice(state, state.utterance_start), state.options, final=False
                )
            # the next partial waits longer when decoding is slow, so the stream never falls behind real time
            state.draft_gap = max(self.draft_every_s, 1.25 * (time.perf_counter() - began))
            state.drafted_at = state.received
        self._trim(state)
        state.busy_s += time.perf_counter() - started
        return state

    def finish(self, state: LiveState) -> LiveState:
        """End of the stream: close the VAD and finalize an utterance still open."""
        if state.finished:
            return state
        started = time.perf_counter()
        self._follow_vad(state, np.zeros(0, dtype=np.float32), is_final=True)
        if state.utterance_start is not None:
            self._finalize(state, state.utterance_start, state.received)
        state.partial = ""
        state.finished = True
        state.busy_s += time.perf_counter() - started
        return state

    def transcript(self, state: LiveState) -> Transcript | None:
        """The whole session as one transcript, or None when nothing was said."""
        if not state.sentences:
            return None
        engine = self.pipeline.engine_for(state.options.engine)
        return Transcript(
            text=state.joiner.join(s.text for s in state.sentences),
            raw_text=state.joiner.join(s.text for s in state.sentences),
            segments=list(state.sentences),
            language=state.options.language or ("zh" if not state.joiner else ""),
            duration=round(state.received, 3),
            engine=engine.name,
            model=engine.model_name,
            device=engine.device,
            elapsed=round(state.busy_s, 3),
            hotwords=list(state.options.hotwords),
            itn=state.options.itn,
        )

    def _follow_vad(self, state: LiveState, chunk: np.ndarray, is_final: bool) -> None:
        with self.pipeline.lock:
            events = self.pipeline.vad.stream(chunk, state.vad_cache, is_final=is_final)
        for start, end in events:
            if start is not None and state.utterance_start is None:
                state.utterance_start = max(start, state.buffer_start)
            if end is not None and state.utterance_start is not None:
                self._finalize(state, state.utterance_start, end)
                state.utterance_start = None

    def _stream_partial(self, state: LiveState) -> None:
        """Two-pass with Paraformer: the streaming model hears each 600 ms of the utterance once (its cache
        carries the context), and its words are the partial until the offline model finalizes the sentence."""
        from .paraformer import STREAM_STRIDE

        stride_s = STREAM_STRIDE / SAMPLE_RATE
        state.streamed_to = max(state.streamed_to, state.utterance_start)
        while state.received - state.streamed_to >= stride_s:
            chunk = self._slice(state, state.streamed_to, state.streamed_to + stride_s)
            with self.pipeline.lock:
                engine = self.pipeline.engine_for(state.options.engine)
                state.partial += engine.stream_partial(chunk, state.stream_cache, is_final=False)
            state.streamed_to += stride_s
        state.drafted_at = state.streamed_to

    def _cut_monologue(self, state: LiveState) -> None:
        if state.utterance_start is not None and state.received - state.utterance_start >= self.max_utterance_s:
            self._finalize(state, state.utterance_start, state.received)
            state.utterance_start = state.received

    def _finalize(self, state: LiveState, start: float, end: float) -> None:
        audio = self._slice(state, start, end)
        if audio.size >= int(0.3 * SAMPLE_RATE):  # shorter is a click or a breath, not a sentence
            engine = self.pipeline.engine_for(state.options.engine)
            with self.pipeline.lock:
                text, words = final_pass(engine, audio, state.options)
            text = self.pipeline.itn(text) if state.options.itn and not does_own_itn(engine) else text
            if text:
                state.sentences.append(Segment(round(start, 3), round(end, 3), text, words=shifted(words, start, end)))
        state.partial = ""
        state.stream_cache = {}  # the next utterance starts the streaming model afresh
        state.streamed_to = end

    def _slice(self, state: LiveState, start: float, end: float | None = None) -> np.ndarray:
        a = max(0, int((start - state.buffer_start) * SAMPLE_RATE))
        b = state.buffer.size if end is None else max(a, int((end - state.buffer_start) * SAMPLE_RATE))
        return state.buffer[a:b]

    def _trim(self, state: LiveState) -> None:
        """Keep only the open utterance (or a short look-back in silence): memory stays flat however long."""
        keep_from = state.utterance_start if state.utterance_start is not None else state.received - LOOKBACK_S
        drop = int((keep_from - state.buffer_start) * SAMPLE_RATE)
        if drop > 0:
            state.buffer = state.buffer[drop:]
            state.buffer_start += drop / SAMPLE_RATE
