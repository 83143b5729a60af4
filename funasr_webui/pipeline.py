"""The preloaded pipeline: decode → engine (VAD → ASR → punctuation) → ITN, one job at a time."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import models
from .audio import SAMPLE_RATE, decode_audio
from .diarization import SpeakerLabeller
from .engine import Engine, TranscribeOptions, does_own_itn
from .itn import InverseNormalizer
from .settings import Settings
from .transcript import Transcript
from .vad import SpeechDetector

log = logging.getLogger(__name__)


def configure_torch_env() -> None:
    """Set before torch is imported: fewer fragmented CUDA blocks on long jobs (the user's own value wins)."""
    os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "max_split_size_mb:128")


def resolve_device(requested: str) -> str:
    if requested == "cpu":
        return "cpu"
    if cuda_available():  # honours CUDA_VISIBLE_DEVICES
        return "cuda"
    if requested == "cuda":
        raise RuntimeError(
            "--device cuda was asked for, but no CUDA GPU is visible (check drivers/CUDA_VISIBLE_DEVICES)"
        )
    return "cpu"


def cuda_available() -> bool:
    """Asked of torch when it is loaded, else of CTranslate2 (the embedded engine needs no torch: importing it
    costs ~2 s of every CLI run and server start)."""
    if "torch" in sys.modules:
        return sys.modules["torch"].cuda.is_available()
    import ctranslate2

    return ctranslate2.get_cuda_device_count() > 0


def load_torch(settings: Settings, device: str) -> None:
    """Import torch for a FunASR model, with its environment and CPU threads set first."""
    configure_torch_env()
    import torch

    if device == "cpu":
        torch.set_num_threads(max(1, settings.threads))


@dataclass
class EngineChoice:
    engine: Engine  # the default one
    vad: SpeechDetector  # also used on its own by live dictation
    notice: str | None  # set when the embedded engine stands in for Paraformer
    engines: list[Engine] = field(default_factory=list)  # every engine loaded, the default first


def build_engine(settings: Settings, device: str) -> EngineChoice:
    """Load the engines --engine and --engines name (see engines.py for `auto`), each once."""
    from . import engines

    load = engines.plan(settings, device)
    notice = None
    if load.fallback_auto:
        try:
            engines.ensure_models("paraformer", settings)
        except models.ModelUnavailable as e:
            notice = f"Paraformer models unavailable ({e}); using the embedded Whisper-base engine instead"
            log.warning(notice)
            load.names[0] = "whisper"
            load.names = list(dict.fromkeys(load.names))
    for name in load.names:
        engines.ensure_models(name, settings)
    funasr_engine = any(name != "whisper" for name in load.names)
    # The embedded engine's VAD runs on onnxruntime (no torch, no funasr: seconds off every start); FunASR
    # engines keep FunASR's torch VAD (the downloaded copy), as they load torch anyway.
    md = settings.models_dir
    vad_dir = (models.vad_model_dir(md) if funasr_engine else models.onnx_vad_dir(md)) or models.vad_model_dir(md)
    if funasr_engine or not (vad_dir / "model.onnx").is_file():
        load_torch(settings, device)
    vad = SpeechDetector(
        vad_dir, device, settings.vad_max_end_silence_ms, settings.vad_max_segment_ms, settings.threads
    )
    loaded = [engines.load_engine(name, settings, device, vad) for name in load.names]
    return EngineChoice(loaded[0], vad, notice, loaded)


class Pipeline:
    """Everything loaded once; `transcribe` runs one job at a time (FunASR's AutoModel keeps per-call state)."""

    def __init__(
        self,
        engine: Engine,
        vad: SpeechDetector,
        itn: InverseNormalizer,
        settings: Settings,
        notice: str | None = None,
        engines: list[Engine] | None = None,
        speakers: SpeakerLabeller | None = None,
    ) -> None:
        self.engine = engine  # the default engine: requests that name none
        # every loaded engine by name, the default first (a request chooses with TranscribeOptions.engine)
        self.engines: dict[str, Engine] = {e.name: e for e in [engine, *(engines or [])]}
        self.vad = vad
        self.itn = itn
        self.settings = settings
        self.notice = notice
        self.lock = threading.Lock()
        # who spoke when, for engines that do not tell (loads in the background; see SpeakerLabeller)
        self.speakers = speakers if speakers is not None else SpeakerLabeller(engine.device, start=False)

    @classmethod
    def load(cls, settings: Settings, preload_speakers: bool = True) -> Pipeline:
        """Every model, loaded; the speaker model in the background (see SpeakerLabeller) unless
        `preload_speakers` is off (then at the first request that asks for speakers)."""
        device = resolve_device(settings.device)
        started = time.perf_counter()
        choice = build_engine(settings, device)
        itn = InverseNormalizer()
        log.info(
            "loaded %s on %s in %.1f s",
            ", ".join(f"{e.name} ({e.model_name})" for e in choice.engines),
            device,
            time.perf_counter() - started,
        )
        speakers = SpeakerLabeller(device, start=preload_speakers)
        return cls(choice.engine, choice.vad, itn, settings, choice.notice, choice.engines, speakers)

    def engine_for(self, name: str | None) -> Engine:
        """The loaded engine a request names (None, "" or "auto": the default); UserError when it is not loaded."""
        if not name or name == "auto":
            return self.engine
        engine = self.engines.get(name)
        if engine is None:
            from .errors import UserError

            loaded = ", ".join(f"{e.name!r} ({e.model_name})" for e in self.engines.values())
            raise UserError("engine_unavailable", requested=name, loaded=loaded)
        return engine

    def decode(self, source: str | Path | bytes, name: str | None = None) -> np.ndarray:
        return decode_audio(
            source, name=name, max_duration=self.settings.max_duration, max_bytes=self.settings.max_upload_bytes
        )

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> Transcript:
        started = time.perf_counter()
        engine = self.engine_for(options.engine)
        # an engine that normalizes numbers itself (when asked) is not normalized again
        normalize = self.itn if options.itn and not does_own_itn(engine) else (lambda s: s)
        if options.partial_text is not None:  # a streamed response gets its text as the final one will read
            report = options.partial_text
            options = replace(options, partial_text=lambda text: report(normalize(text)))
        with self.lock:
            try:
                result = engine.transcribe(audio, options)
                segments = result.segments
                if options.speakers is not None and segments and not any(s.speaker for s in segments):
                    segments = self.speakers.label(audio, segments, options.speakers, options.checkpoint)
            finally:
                self.free_gpu_cache()
        if options.progress:
            options.progress(1.0)
        segments = [replace(s, text=normalize(s.text)) for s in segments]
        return Transcript(
            text=normalize(result.text),
            raw_text=result.raw_text,
            segments=segments,
            language=result.language,
            duration=round(audio.size / SAMPLE_RATE, 3),
            engine=engine.name,
            model=engine.model_name,
            device=engine.device,
            elapsed=round(time.perf_counter() - started, 3),
            hotwords=list(options.hotwords),
            itn=options.itn,
        )

    def transcribe_file(self, path: str | Path, options: TranscribeOptions, name: str | None = None) -> Transcript:
        started = time.perf_counter()
        audio = self.decode(path, name)
        transcript = self.transcribe(audio, options)
        transcript.elapsed = round(time.perf_counter() - started, 3)  # decoding is part of the user's wait
        return transcript

    def free_gpu_cache(self) -> None:
        # CTranslate2 frees its own memory; torch is loaded only with a FunASR engine
        if "torch" in sys.modules and any(e.device == "cuda" for e in self.engines.values()):
            sys.modules["torch"].cuda.empty_cache()

    def describe(self) -> dict[str, str]:
        info = dict(self.engine.describe())
        if self.notice:
            info["notice"] = self.notice
        return info

    def describe_all(self) -> list[dict[str, str]]:
        """Every loaded engine's description, the default first."""
        return [dict(e.describe()) for e in self.engines.values()]
