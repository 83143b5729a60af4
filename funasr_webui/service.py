"""The service functions every entry point calls (web page, batch, microphone, CLI, API): transcribe and save."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import AudioError
from .engine import TranscribeOptions, parse_hotwords
from .errors import UserError
from .history import HistoryStore, Record, audio_hash, settings_key
from .pipeline import Pipeline
from .settings import Settings
from .transcript import Transcript

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    transcript: Transcript
    record_id: int | None  # None when saving failed (the transcript is still the user's)
    save_error: str | None = None


class TranscriptionService:
    def __init__(self, settings: Settings, pipeline: Pipeline, history: HistoryStore) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.history = history

    def options(
        self, hotwords: str | list[str] | None = None, itn: bool | None = None, language: str | None = None
    ) -> TranscribeOptions:
        """Validated options; raises UserError for what the user must change."""
        language = (language or "").strip().lower() or None
        if language in ("auto",):
            language = None
        engine = self.pipeline.engine
        if language is not None and language not in engine.languages:
            if not engine.languages and language in ("zh", "en"):
                language = None  # Paraformer handles Mandarin with English words: nothing to select
            else:
                raise UserError(
                    "bad_language",
                    f"language {language!r} is not supported by the {engine.name} engine",
                    f"{engine.name} 引擎不支持语言 {language!r}",
                )
        return TranscribeOptions(
            hotwords=parse_hotwords(hotwords, self.settings.max_hotwords),
            itn=self.settings.itn if itn is None else itn,
            language=language,
        )

    def key(self, options: TranscribeOptions) -> str:
        engine = self.pipeline.engine
        return settings_key(engine.name, engine.model_name, options.hotwords, options.itn, options.language or "")

    def previous(self, path: str | Path, options: TranscribeOptions) -> Record | None:
        """The newest finished transcript of the same audio with the same settings, if any."""
        return self.history.find_previous(audio_hash(Path(path)), self.key(options))

    def transcribe_file(self, path: str | Path, *, name: str, source: str, options: TranscribeOptions) -> Outcome:
        """Decode, transcribe and save one file. Bad input raises UserError after a failed record is saved."""
        path = Path(path)
        digest = audio_hash(path)
        try:
            transcript = self.pipeline.transcribe_file(path, options, name=name)
        except AudioError as e:
            self._save_failure(source, digest, options, e.message("en"))
            raise
        except UserError:
            raise
        except Exception as e:  # a model error fails this file only; the server keeps serving
            log.exception("transcription of %s failed", name)
            self._save_failure(source, digest, options, f"{type(e).__name__}: {e}")
            raise UserError(
                "engine_error",
                f"{name}: recognition failed ({type(e).__name__}: {e})",
                f"{name}：识别失败（{type(e).__name__}: {e}）",
                status=500,
            ) from e
        return self._save(transcript, source=source, digest=digest, audio_path=path, key=self.key(options))

    def transcribe_audio(self, audio: np.ndarray, *, source: str, options: TranscribeOptions) -> Outcome:
        """For audio already in memory (the microphone)."""
        transcript = self.pipeline.transcribe(audio, options)
        digest = audio_hash(audio.astype(np.float32).tobytes())
        return self._save(transcript, source=source, digest=digest, audio_path=None, key=self.key(options))

    def _save(
        self, transcript: Transcript, *, source: str, digest: str, audio_path: Path | None, key: str | None = None
    ) -> Outcome:
        # key: the settings as asked for (language "auto"), so a repeat request finds this record
        try:
            record_id = self.history.add(
                transcript, source=source, audio_hash=digest, audio_path=audio_path, settings_key=key
            )
            return Outcome(transcript, record_id)
        except (sqlite3.Error, OSError) as e:  # full disk, read-only file: the user still gets the text
            log.error("could not save transcript to history: %s", e)
            return Outcome(transcript, None, save_error=f"not saved to history: {e}")

    def _save_failure(self, source: str, digest: str, options: TranscribeOptions, error: str) -> None:
        engine = self.pipeline.engine
        try:
            self.history.add_failure(
                source=source,
                audio_hash=digest,
                error=error,
                engine=engine.name,
                model=engine.model_name,
                device=engine.device,
                hotwords=options.hotwords,
                itn=options.itn,
                language=options.language or "",
            )
        except (sqlite3.Error, OSError) as e:
            log.error("could not save failure to history: %s", e)


def build_service(settings: Settings) -> TranscriptionService:
    """Load every model and open the history: done once, before the server accepts requests."""
    history = HistoryStore(settings.db, keep_audio=settings.keep_audio)
    if settings.keep_days:
        removed = history.purge(settings.keep_days)
        if removed:
            log.info("purged %d history records older than %g days", removed, settings.keep_days)
    return TranscriptionService(settings, Pipeline.load(settings), history)


def save_live(service: TranscriptionService, transcriber, state) -> int | None:
    """Save a finished live session once (source "microphone"); nothing is saved when nothing was said."""
    if state.record_id is not None:
        return state.record_id
    transcript = transcriber.transcript(state)
    if transcript is None:
        return None
    outcome = service._save(transcript, source="microphone", digest="", audio_path=None)
    state.record_id = outcome.record_id
    return state.record_id
