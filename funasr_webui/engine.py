"""What every engine takes and gives back."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .helpers import split_hotwords
from .transcript import Segment


@dataclass
class TranscribeOptions:
    hotwords: list[str] = field(default_factory=list)
    itn: bool = True
    language: str | None = None  # None: detect (engines that can); Paraformer is Chinese(-English) only
    speakers: int | None = None  # who spoke: None = not asked, 0 = find how many, N = exactly N voices
    word_timestamps: bool = False  # fill Segment.words (word or character times) where the engine can
    engine: str | None = None  # which loaded engine runs this request (a name of ENGINE_NAMES); None: the default
    # called with the fraction of the audio done, for progress bars; engines that cannot tell call it at the end
    progress: Callable[[float], None] | None = field(default=None, repr=False, compare=False)
    # set when nobody waits for the result any more (the API client hung up): engines stop at the next piece
    cancel: threading.Event | None = field(default=None, repr=False, compare=False)
    # a streamed response: called (from the engine's thread) with the transcript's text so far, each time more of
    # its sentences are final in time order; every call's text begins with the previous one's. Engines that
    # cannot tell (the whole file decodes at once) never call it.
    partial_text: Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    def text_so_far(self, text: str) -> None:
        if self.partial_text is not None and text:
            self.partial_text(text)

    def checkpoint(self, done: float | None = None) -> None:
        """Called by engines between pieces of work: raises Cancelled when the job was given up, else reports
        progress (`done`, the fraction finished) when there is some to report."""
        if self.cancel is not None and self.cancel.is_set():
            from .errors import Cancelled

            raise Cancelled()
        if done is not None and self.progress:
            self.progress(done)


@dataclass
class EngineResult:
    text: str  # punctuated, before ITN
    raw_text: str  # as recognized, before punctuation
    segments: list[Segment]
    language: str


class Engine(Protocol):
    name: str  # one of ENGINE_NAMES
    model_name: str
    device: str
    languages: tuple[str, ...]  # what `language` may be; empty: not selectable
    # Live dictation: with a streaming model, partials come from stream_partial chunk by chunk; without one
    # (None), the open utterance is re-decoded with transcribe_utterance(final=False).
    streaming: object | None

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> EngineResult: ...

    def transcribe_utterance(self, audio: np.ndarray, options: TranscribeOptions, final: bool) -> str: ...

    def stream_partial(self, chunk: np.ndarray, cache: dict, is_final: bool) -> str:
        """Words for the next stride of an open utterance (state in `cache`); only when `streaming` is set."""
        ...

    def describe(self) -> dict[str, str]: ...


# Every engine this app can load, in the order the page and /health list them.
ENGINE_NAMES = ("paraformer", "fun-asr-nano", "fun-asr-mlt-nano", "sensevoice", "whisper")


def does_own_itn(engine: Engine) -> bool:
    """Engines whose model writes numbers itself when asked (SenseVoice's use_itn, Fun-ASR-Nano's prompt) set
    `own_itn = True`: our ITN is then never applied on top (it would normalize twice)."""
    return bool(getattr(engine, "own_itn", False))


MAX_HOTWORD_CHARS = 50


def parse_hotwords(text: str | list[str] | None, max_count: int) -> list[str]:
    """Hotwords from a text box (one per line) or a CLI/API string (spaces or commas); duplicates dropped."""
    from .errors import UserError

    words = split_hotwords(text)
    if len(words) > max_count:
        raise UserError("too_many_hotwords", count=len(words), limit=max_count)
    too_long = [w for w in words if len(w) > MAX_HOTWORD_CHARS]
    if too_long:
        raise UserError("hotword_too_long", word=too_long[0][:20], limit=MAX_HOTWORD_CHARS)
    return words
