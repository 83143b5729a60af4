"""The preloaded pipeline: decode → engine (VAD → ASR → punctuation) → ITN, one job at a time."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import models
from .audio import SAMPLE_RATE, decode_audio
from .engine import Engine, TranscribeOptions
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
    engine: Engine
    vad: SpeechDetector  # also used on its own by live dictation
    notice: str | None  # set when the embedded engine stands in for Paraformer


def build_engine(settings: Settings, device: str) -> EngineChoice:
    """Load the engine --engine names; `auto` = Paraformer if present or downloadable, else embedded Whisper."""
    from .paraformer import ParaformerEngine
    from .whisper import WhisperEngine

    models_dir = settings.models_dir
    notice = None
    want = settings.engine
    if want in ("auto", "paraformer") and not models.paraformer_present(models_dir):
        if settings.offline:
            reason = "offline mode (--offline): Paraformer models are not in " + str(models_dir)
        else:
            try:
                models.download_paraformer(models_dir, timeout=settings.download_timeout)
                reason = None
            except models.ModelUnavailable as e:
                reason = str(e)
        if reason is not None:
            if want == "paraformer":
                raise models.ModelUnavailable(reason)
            notice = f"Paraformer models unavailable ({reason}); using the embedded Whisper-base engine instead"
            log.warning(notice)
            want = "whisper"
    funasr_engine = want in ("auto", "paraformer")
    # The embedded engine's VAD runs on onnxruntime (no torch, no funasr); a FunASR engine keeps the VAD it runs
    # inside (the downloaded copy, through torch) for live dictation too.
    vad_dir = models.vad_model_dir(models_dir) if funasr_engine else models.onnx_vad_dir(models_dir)
    vad_dir = vad_dir or models.vad_model_dir(models_dir)
    if funasr_engine or not (vad_dir / "model.onnx").is_file():
        load_torch(settings, device)
    vad = SpeechDetector(
        vad_dir, device, settings.vad_max_end_silence_ms, settings.vad_max_segment_ms, settings.threads
    )
    if want in ("auto", "paraformer"):
        engine: Engine = ParaformerEngine(
            models.PARAFORMER.path(models_dir),
            models.vad_model_dir(models_dir),
            models.PUNC.path(models_dir),
            models.STREAMING.path(models_dir) if models.STREAMING.present(models_dir) else None,
            device=device,
            threads=settings.threads,
            fp16=settings.fp16,
            batch_size=settings.batch_size,
            max_end_silence_ms=settings.vad_max_end_silence_ms,
            max_segment_ms=settings.vad_max_segment_ms,
        )
    else:
        engine = WhisperEngine(
            models.embedded_whisper_dir(models_dir),
            vad,
            device,
            settings.threads,
            settings.fp16,
            settings.batch_size,
            settings.beam_size,
        )
    return EngineChoice(engine, vad, notice)


class Pipeline:
    """Everything loaded once; `transcribe` runs one job at a time (FunASR's AutoModel keeps per-call state)."""

    def __init__(
        self, engine: Engine, vad: SpeechDetector, itn: InverseNormalizer, settings: Settings, notice: str | None = None
    ) -> None:
        self.engine = engine
        self.vad = vad
        self.itn = itn
        self.settings = settings
        self.notice = notice
        self.lock = threading.Lock()

    @classmethod
    def load(cls, settings: Settings) -> Pipeline:
        device = resolve_device(settings.device)
        started = time.perf_counter()
        choice = build_engine(settings, device)
        itn = InverseNormalizer()
        log.info(
            "loaded %s (%s) on %s in %.1f s",
            choice.engine.name,
            choice.engine.model_name,
            device,
            time.perf_counter() - started,
        )
        return cls(choice.engine, choice.vad, itn, settings, choice.notice)

    def decode(self, source: str | Path | bytes, name: str | None = None) -> np.ndarray:
        return decode_audio(
            source, name=name, max_duration=self.settings.max_duration, max_bytes=self.settings.max_upload_bytes
        )

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> Transcript:
        started = time.perf_counter()
        with self.lock:
            try:
                result = self.engine.transcribe(audio, options)
            finally:
                self.free_gpu_cache()
        if options.progress:
            options.progress(1.0)
        normalize = self.itn if options.itn else (lambda s: s)
        segments = [replace(s, text=normalize(s.text)) for s in result.segments]
        return Transcript(
            text=normalize(result.text),
            raw_text=result.raw_text,
            segments=segments,
            language=result.language,
            duration=round(audio.size / SAMPLE_RATE, 3),
            engine=self.engine.name,
            model=self.engine.model_name,
            device=self.engine.device,
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
        if self.engine.device == "cuda" and "torch" in sys.modules:  # CTranslate2 frees its own memory
            sys.modules["torch"].cuda.empty_cache()

    def describe(self) -> dict[str, str]:
        info = dict(self.engine.describe())
        if self.notice:
            info["notice"] = self.notice
        return info
