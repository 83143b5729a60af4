"""FSMN-VAD speech segmentation (FunASR's own weights): through FunASR's ONNX runtime package when the model folder
has model.onnx (the embedded path: no torch, no funasr import, loads in well under a second), else through
funasr.AutoModel (torch)."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
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
# The (begin, end) events of one call, milliseconds; -1 = not in this call (speech began or ends elsewhere).
Events = list[list[int]]
FRAME = SAMPLE_RATE * 25 // 1000  # FSMN-VAD's fbank frame


class OnnxFsmnVad:
    """funasr_onnx.Fsmn_vad_online, FunASR's own streaming FSMN-VAD on onnxruntime. Its offline `Fsmn_vad` is
    not used: its `__call__` does `range(..., min(step, feats_len - t_offset))` with `feats_len` a numpy array,
    which numpy 2 refuses; the streaming class, fed a minute at a time as the torch path is, gives the same
    segments."""

    def __init__(self, model_dir: Path, max_end_silence_ms: int, max_segment_ms: int, threads: int) -> None:
        from funasr_onnx.vad_bin import Fsmn_vad_online

        self.model = Fsmn_vad_online(
            model_dir=str(model_dir), intra_op_num_threads=threads, max_end_sil=max_end_silence_ms
        )
        # read by every new stream's E2EVadModel; FunASR's AutoModel takes it as max_single_segment_time
        self.model.config["model_conf"]["max_single_segment_time"] = max_segment_ms

    def events(self, chunk: np.ndarray, cache: dict, is_final: bool) -> Events:
        if "frontend" not in cache and chunk.size < FRAME:  # it cannot start a stream on less than one frame
            return []
        cache["is_final"] = is_final  # funasr_onnx keeps a stream's state in the param_dict it is given
        try:
            result = self.model(chunk.astype(np.float32, copy=False), param_dict=cache)
        except UnboundLocalError:  # a chunk too short to add a feature frame: its samples wait in the cache
            return []
        return result[0] if result else []


class TorchFsmnVad:
    """FSMN-VAD through funasr.AutoModel: for model folders without model.onnx (a downloaded ModelScope copy,
    the tests' tiny random-weight models)."""

    def __init__(self, model_dir: Path, device: str, max_end_silence_ms: int, max_segment_ms: int) -> None:
        self.model = load_funasr_model(model=str(model_dir), device=device, max_single_segment_time=max_segment_ms)
        self.max_end_silence_ms = max_end_silence_ms

    def events(self, chunk: np.ndarray, cache: dict, is_final: bool) -> Events:
        result = self.model.generate(
            input=chunk,
            fs=SAMPLE_RATE,
            cache=cache,
            is_final=is_final,
            chunk_size=max(1, len(chunk) * 1000 // SAMPLE_RATE),
            disable_pbar=True,
            max_end_silence_time=self.max_end_silence_ms,
        )
        return result[0]["value"] if result else []


class SpeechDetector:
    def __init__(
        self,
        model_dir: Path,
        device: str,
        max_end_silence_ms: int,
        max_segment_ms: int,
        threads: int = 1,
        onnx: bool = True,  # False: FunASR's torch path even where model.onnx is there
    ) -> None:
        self.model_dir = model_dir
        self.backend: OnnxFsmnVad | TorchFsmnVad
        if onnx and (model_dir / "model.onnx").is_file():
            self.backend = OnnxFsmnVad(model_dir, max_end_silence_ms, max_segment_ms, threads)
            self.runtime = "onnxruntime"
        else:
            self.backend = TorchFsmnVad(model_dir, device, max_end_silence_ms, max_segment_ms)
            self.runtime = "torch"

    def segments(self, audio: np.ndarray, between: Callable[[], None] | None = None) -> list[tuple[float, float]]:
        """Speech spans in seconds, in order. `between` runs after each minute (it raises to stop early)."""
        return list(self.spans(audio, between))

    def spans(self, audio: np.ndarray, between: Callable[[], None] | None = None) -> Iterator[tuple[float, float]]:
        """segments(), each span as soon as the minute it ends in has been read."""
        if audio.size < SAMPLE_RATE // 100:  # under 10 ms: nothing a VAD frame can judge
            return
        # Streamed a minute at a time: the whole-file call builds features for all of it at once
        # (~570 MB for an hour), the streaming state stays the same size however long the audio is.
        cache: dict = {}
        start = None
        for i in range(0, audio.size, VAD_CHUNK):
            for b, e in self.stream(audio[i : i + VAD_CHUNK], cache, is_final=i + VAD_CHUNK >= audio.size):
                start = b if b is not None else start
                if e is not None and start is not None and e > start:
                    yield (start, e)
                    start = None
            if between is not None:
                between()

    def feed(self, audio: np.ndarray) -> SpeechFeed:
        """spans() run on a thread: the caller decodes the first sentences while the rest is read."""
        return SpeechFeed(self, audio)

    def stream(self, chunk: np.ndarray, cache: dict, is_final: bool) -> list[tuple[float | None, float | None]]:
        """Feed one chunk of a live stream (state kept in `cache`, one per stream). Returns the events it
        completes: (start, None) when speech begins, (None, end) when it ends, (start, end) for both, seconds."""
        events = self.backend.events(chunk, cache, is_final)
        return [(None if b < 0 else b / 1000.0, None if e < 0 else e / 1000.0) for b, e in events]


class _Stopped(Exception):
    pass


class SpeechFeed:
    """A SpeechDetector reading one audio on its own thread, a minute at a time; the caller waits for the
    sentences it needs. On 2 cores FSMN-VAD (~1 s per 3 minutes) then runs beside CTranslate2's decoding of
    the sentences already found instead of before it. A context manager: leaving it stops the thread and waits
    for it."""

    def __init__(self, detector: SpeechDetector, audio: np.ndarray) -> None:
        self.spans: list[tuple[float, float]] = []  # found so far, in order (appended by the thread only)
        self.done = False  # the thread has ended: the audio read to its end, or an error
        self.minutes = -(-audio.size // VAD_CHUNK)  # the pieces it reads (ceil)
        self._found: list[int] = []  # how many spans were found once each minute was read
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, args=(detector, audio), name="vad-feed", daemon=True)
        self._thread.start()

    def _run(self, detector: SpeechDetector, audio: np.ndarray) -> None:
        try:
            for span in detector.spans(audio, self._minute_read):
                with self._changed:
                    self.spans.append(span)
                    self._changed.notify_all()
        except _Stopped:
            pass
        except BaseException as e:  # handed to the caller's next wait()
            self._error = e
        finally:
            with self._changed:
                self.done = True
                self._changed.notify_all()

    def _minute_read(self) -> None:
        with self._changed:
            self._found.append(len(self.spans))
            self._changed.notify_all()
        if self._stop.is_set():
            raise _Stopped()

    def after_minute(self, minute: int, between: Callable[[], None]) -> list[tuple[float, float]]:
        """The spans found once `minute` minutes (1, 2, ...) were read, the same whenever it is asked, however
        far the thread has read by then; all of them for the last minute. `between` as for wait()."""
        last = minute >= self.minutes
        spans = self.wait(lambda _spans: not last and len(self._found) >= minute, between)
        return spans if last else spans[: self._found[minute - 1]]

    def wait(
        self, enough: Callable[[list[tuple[float, float]]], bool], between: Callable[[], None]
    ) -> list[tuple[float, float]]:
        """The spans found so far once `enough(spans)` holds or the whole audio is read; `between` runs every
        half second meanwhile (it raises to give up)."""
        with self._changed:
            while not (self.done or enough(self.spans)):
                self._changed.wait(0.5)
                between()
            if self._error is not None:
                raise self._error
            return list(self.spans)

    def __enter__(self) -> SpeechFeed:
        return self

    def __exit__(self, *exc: object) -> None:
        # wait for the thread (at most the minute it is reading): a process exiting while it is inside
        # onnxruntime aborts ("terminate called without an active exception")
        self._stop.set()
        self._thread.join()
