"""The service functions every entry point calls (web page, batch, microphone, CLI, API): transcribe and save.

Each transcription is a job in the history from the moment its audio has decoded until its record is saved, so
one cut short by a crash is reported after the restart ('interrupted'). Input refused before that leaves no job.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .audio import SAMPLE_RATE, AudioError
from .engine import Engine, TranscribeOptions, parse_hotwords
from .enqueue import spec_of, submit
from .errors import UserError
from .history import HistoryError, HistoryStore, Page, Record, audio_hash, open_store, settings_key
from .history.target import without_password
from .history.work_queue import Job, Submitted, WorkerInfo, WorkQueue
from .listening import Listening
from .live import LiveState, LiveTranscriber
from .pipeline import Pipeline
from .qa.rules import Hit
from .qa.service import QaService
from .settings import Settings
from .speakers import checked_names, parse_speakers
from .transcript import Transcript

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    transcript: Transcript
    record_id: int | None  # None when saving failed (the transcript is still the user's)
    save_error: str | None = None
    flags: list[Hit] = field(default_factory=list)  # what the quality rules found (saved with the record)


class TranscriptionService:
    def __init__(
        self, settings: Settings, pipeline: Pipeline, history: HistoryStore, work_queue: WorkQueue | None = None
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.history = history
        # The PostgreSQL work queue (serve --queue): the Batch tab and POST /api/v1/jobs submit to it (enqueue.py)
        self.work_queue = work_queue
        # One LiveTranscriber for all dictations (the models are shared, one call at a time under the pipeline's
        # lock); each dictation has its own LiveState.
        self.live = LiveTranscriber(pipeline)
        # Quality rules: every transcript is checked when it is saved (_save), whichever entry point made it.
        self.qa = QaService(history, pipeline.itn)
        # HTTPS and the FunASR listener, as the server set them up (for /health and the System tab)
        self.listening = Listening(settings)

    def options(
        self,
        hotwords: str | list[str] | None = None,
        itn: bool | None = None,
        language: str | None = None,
        engine: str | None = None,
        speakers: str | int | None = None,
    ) -> TranscribeOptions:
        """Validated options; raises UserError for what the user must change. `engine`: a loaded engine's name
        (None or "auto": the default one). speakers: None/"" = not asked, "auto" = find how many, N = exactly N
        voices."""
        chosen = self.pipeline.engine_for((engine or "").strip().lower() or None)
        language = (language or "").strip().lower() or None
        if language in ("auto",):
            language = None
        engine = chosen
        if language is not None and language not in engine.languages:
            if not engine.languages and language in ("zh", "en"):
                language = None  # Paraformer handles Mandarin with English words: nothing to select
            else:
                raise UserError("bad_language", language=language, engine=engine.name)
        return TranscribeOptions(
            hotwords=parse_hotwords(hotwords, self.settings.max_hotwords),
            itn=self.settings.itn if itn is None else itn,
            language=language,
            engine=chosen.name,
            speakers=parse_speakers(speakers),
        )

    def key(self, options: TranscribeOptions) -> str:
        engine = self.pipeline.engine_for(options.engine)
        return settings_key(
            engine.name, engine.model_name, options.hotwords, options.itn, options.language or "", options.speakers
        )

    def previous(self, path: str | Path, options: TranscribeOptions) -> Record | None:
        """The newest finished transcript of the same audio with the same settings, if any."""
        return self.history.find_previous(audio_hash(Path(path)), self.key(options))

    def transcribe_file(
        self, path: str | Path, *, name: str, source: str, options: TranscribeOptions, digest: str | None = None
    ) -> Outcome:
        """Decode, transcribe and save one file. A file that cannot be decoded raises UserError after a failed
        record is saved; nothing else of it is kept. ``digest``: the file's audio_hash, when the caller has it."""
        path = Path(path)
        digest = digest or audio_hash(path)
        started = time.perf_counter()
        try:
            audio = self.pipeline.decode(path, name)
        except AudioError as e:
            self._save_failure(source, digest, options, e.message("en"), e.key, name=name)
            raise
        except Exception as e:  # not a known file problem: reported like a model error
            raise self._engine_failure(e, name, source, digest, options, None) from e
        transcript, job = self._run(audio, name=name, source=source, digest=digest, options=options)
        transcript.elapsed = round(time.perf_counter() - started, 3)  # decoding is part of the user's wait
        return self._save(
            transcript, source=source, name=name, digest=digest, audio_path=path, key=self.key(options), job=job
        )

    def transcribe_unsaved(self, path: str | Path, *, name: str, options: TranscribeOptions) -> Transcript:
        """Decode and transcribe without a trace in the history (the CLI's --no-history)."""
        return self.pipeline.transcribe_file(path, options, name=name)

    def transcribe_audio(
        self, audio: np.ndarray, *, source: str, options: TranscribeOptions, name: str | None = None
    ) -> Outcome:
        """For audio already in memory (the microphone, a FunASR WebSocket stream)."""
        digest = audio_hash(audio.astype(np.float32).tobytes())
        name = name or source
        transcript, job = self._run(audio, name=name, source=source, digest=digest, options=options)
        return self._save(
            transcript, source=source, name=name, digest=digest, audio_path=None, key=self.key(options), job=job
        )

    def _run(
        self, audio: np.ndarray, *, name: str, source: str, digest: str, options: TranscribeOptions
    ) -> tuple[Transcript, int | None]:
        """Transcribe decoded audio under a job (returned, for _save to close); a model failure is saved in its
        place and raised as UserError."""
        job = self.start_job(source, digest, options, name=name, duration=audio.size / SAMPLE_RATE)
        engine_options = self._with_rule_hotwords(options)
        try:
            transcript = self.pipeline.transcribe(audio, engine_options)
        except UserError:
            self.cancel_job(job)
            raise
        except Exception as e:  # a model error fails this file only; the server keeps serving
            raise self._engine_failure(e, name, source, digest, options, job, audio.size / SAMPLE_RATE) from e
        return transcript, job

    def start_job(
        self, source: str, digest: str, options: TranscribeOptions, *, name: str = "", duration: float = 0.0
    ) -> int | None:
        """Note in the history that a transcription has begun; None when the history cannot be written."""
        try:
            return self.history.start_job(
                source=source,
                name=name,
                audio_hash=digest,
                settings_key=self.key(options),
                duration=round(duration, 3),
                **self._how(options),
            )
        except (HistoryError, OSError) as e:  # full disk, read-only file: transcribe anyway
            log.error("could not note the transcription in history: %s", e)
            return None

    def _how(self, options: TranscribeOptions) -> dict:
        """What a job or failure record says about how it was transcribed."""
        engine = self.pipeline.engine_for(options.engine)
        return {
            "engine": engine.name,
            "model": engine.model_name,
            "device": engine.device,
            "hotwords": options.hotwords,
            "itn": options.itn,
            "language": options.language or "",
        }

    def cancel_job(self, job: int | None) -> None:
        """A job that ends without a record (nothing to save, or saving failed)."""
        if job is None:
            return
        try:
            self.history.cancel_job(job)
        except (HistoryError, OSError) as e:
            log.error("could not close transcription job %d in history: %s", job, e)

    def _engine_failure(
        self,
        e: Exception,
        name: str,
        source: str,
        digest: str,
        options: TranscribeOptions,
        job: int | None,
        duration: float = 0.0,
    ) -> UserError:
        """Save a model failure (in place of its job) and return the error the user sees."""
        log.exception("transcription of %s failed", name)
        self._save_failure(
            source, digest, options, f"{type(e).__name__}: {e}", "engine_error", job=job, duration=duration, name=name
        )
        return UserError("engine_error", filename=name, error=f"{type(e).__name__}: {e}")

    def _save(
        self,
        transcript: Transcript,
        *,
        source: str,
        digest: str,
        audio_path: Path | None,
        key: str | None = None,
        job: int | None = None,
        name: str = "",
    ) -> Outcome:
        # key: the settings as asked for (language "auto"), so a repeat request finds this record;
        # name: what the user calls the audio (an upload's file name, a FunASR client's wav_name)
        hits = self.qa.check(transcript)  # None: no active rules
        try:
            record_id = self.history.add(
                transcript,
                source=source,
                audio_hash=digest,
                audio_path=audio_path,
                settings_key=key,
                job=job,
                hits=hits,
                name=name,
            )
            return Outcome(transcript, record_id, flags=hits or [])
        except (HistoryError, OSError) as e:  # full disk, read-only file: the user still gets the text
            log.error("could not save transcript to history: %s", e)
            self.cancel_job(job)  # not interrupted: the user has the text
            return Outcome(transcript, None, save_error=f"not saved to history: {e}", flags=hits or [])

    def _save_failure(
        self,
        source: str,
        digest: str,
        options: TranscribeOptions,
        error: str,
        error_code: str,
        job: int | None = None,
        duration: float = 0.0,
        name: str = "",
    ) -> None:
        """Save a failed transcription: its English text for reading, its code for the page to show it in any
        language."""
        try:
            self.history.add_failure(
                source=source,
                audio_hash=digest,
                error=error,
                error_code=error_code,
                duration=round(duration, 3),
                job=job,
                name=name,
                **self._how(options),
            )
        except (HistoryError, OSError) as e:
            log.error("could not save failure to history: %s", e)
            self.cancel_job(job)

    # ------------------------------------------------------------------ queue workers (they save under the job's lock)

    def transcribe_for_job(self, path: str | Path, *, name: str, options: TranscribeOptions) -> Transcript:
        """Decode and transcribe one file of a queued job, writing nothing to the history: the worker saves the
        result with ``save_transcript`` or ``save_failed`` while it holds the job (so a job taken over by another
        worker is saved once). UserError for a file that cannot be transcribed or a model failure."""
        started = time.perf_counter()
        try:
            audio = self.pipeline.decode(Path(path), name)
            transcript = self.pipeline.transcribe(audio, self._with_rule_hotwords(options))
        except UserError:
            raise
        except Exception as e:  # a model error fails this attempt only
            log.exception("transcription of %s failed", name)
            raise UserError("engine_error", filename=name, error=f"{type(e).__name__}: {e}") from e
        transcript.elapsed = round(time.perf_counter() - started, 3)
        return transcript

    def save_transcript(
        self, transcript: Transcript, *, source: str, name: str, digest: str, audio_path: Path | None, key: str
    ) -> Outcome:
        """Save a finished transcript (quality rules checked, audio copy kept when asked), as every entry point
        does; ``record_id`` None with ``save_error`` when the history could not be written."""
        return self._save(transcript, source=source, name=name, digest=digest, audio_path=audio_path, key=key)

    def save_failed(
        self, *, source: str, name: str, digest: str, options: TranscribeOptions | None, error: str, code: str
    ) -> int:
        """Save a failed transcription (``options`` None: they were refused); returns the record's id,
        HistoryError when the history cannot be written."""
        how = self._how(options) if options else {}
        return self.history.add_failure(
            source=source, name=name, audio_hash=digest, error=error, error_code=code, **how
        )

    # ------------------------------------------------------------------ the work queue, for the page and the API

    def _queue(self) -> WorkQueue:
        if self.work_queue is None:
            raise UserError("queue_not_configured")
        return self.work_queue

    def enqueue_upload(
        self, path: str | Path, *, name: str, source: str, options: TranscribeOptions, asked_engine: str | None
    ) -> Submitted:
        """Put an uploaded file on the work queue, its bytes with it (the worker may be on another machine). A
        file that failed before is queued again (a person asked); one done before comes back with its record.
        UserError when there is no queue or it cannot be reached."""
        data = Path(path).read_bytes()
        try:
            return submit(
                self._queue(),
                self.history,
                source=source,
                name=name,
                digest=audio_hash(data),
                spec=spec_of(options, asked_engine),
                audio=data,
                retry_failed=True,
            )
        except HistoryError as e:
            raise UserError("queue_unavailable", error=str(e)) from e

    def queued_jobs(self, ids: Iterable[int]) -> dict[int, Job]:
        """The queue's jobs by id (those that exist); UserError as ``enqueue_upload``."""
        try:
            return self._queue().many(list(ids))
        except HistoryError as e:
            raise UserError("queue_unavailable", error=str(e)) from e

    def queue_status(self) -> tuple[dict[str, int], list[WorkerInfo]]:
        """Jobs per state and the live workers; UserError as ``enqueue_upload``."""
        try:
            return self._queue().counts(), self._queue().live_workers()
        except HistoryError as e:
            raise UserError("queue_unavailable", error=str(e)) from e

    def _with_rule_hotwords(self, options: TranscribeOptions) -> TranscribeOptions:
        # The quality rules' phrases join the hotwords here (when switched on), not in options(): the settings key
        # stays the user's, so a rule change never makes a call "new" (ingest, "done before"); apply re-checks.
        return replace(options, hotwords=self.qa.hotwords(options.hotwords, self.settings.max_hotwords))

    # ------------------------------------------------------------------ live dictation

    def save_live(
        self, state: LiveState, job: int | None = None, source: str = "microphone", name: str = ""
    ) -> int | None:
        """Save a finished live session once (source "microphone", or "websocket" with the client's wav_name as
        ``name``); nothing is saved when nothing was said. ``job``: the session's job (opened at its first
        sentence), closed by the save."""
        if state.record_id is not None:
            return state.record_id
        transcript = self.live.transcript(state)
        if transcript is None:
            self.cancel_job(job)
            return None
        outcome = self._save(transcript, source=source, name=name, digest="", audio_path=None, job=job)
        state.record_id = outcome.record_id
        return state.record_id

    # ------------------------------------------------------------------ the history, for page, API and CLI

    def search(self, q: str = "", *, limit: int = 20, offset: int = 0, **filters: Any) -> Page:
        """Records matching `q` and the filters (date_from, date_to, engine, source, status, speaker), newest
        first."""
        return self.history.search(q, **filters, limit=limit, offset=offset)

    def search_ids(self, q: str = "", **filters: Any) -> list[int]:
        return self.history.search_ids(q, **filters)

    def get(self, record_id: int) -> Record | None:
        return self.history.get(record_id)

    def rename_speakers(self, record_id: int, names: dict[str, str]) -> Record:
        """Give a record's speakers display names ({"S1": "张经理"}; "" = the default name again); every output
        of the record uses them from then on. UserError for a missing record or a speaker it does not have."""
        record = self.history.get(record_id)
        if record is None:
            raise UserError("record_not_found", id=record_id)
        updated = self.history.set_speaker_names(record_id, checked_names(record_id, record.segments, names))
        if updated is None:  # deleted meanwhile
            raise UserError("record_not_found", id=record_id)
        return updated

    def speaker_names(self) -> list[str]:
        """Names given to speakers anywhere in the history (the History search's speaker filter)."""
        return self.history.speaker_names()

    def delete(self, ids: Iterable[int]) -> int:
        return self.history.delete(list(ids))

    def export(self, fmt: str, ids: Iterable[int] | None = None) -> bytes:
        return self.history.export(fmt, ids)

    def purge(self, older_than_days: float) -> int:
        return self.history.purge(older_than_days)

    def history_stats(self) -> dict[str, Any]:
        return self.history.stats()

    @property
    def history_path(self) -> Path | str:
        """The database file, or the PostgreSQL URL without its password."""
        return self.history.db_path

    # ------------------------------------------------------------------ the loaded engine

    @property
    def engine(self) -> Engine:
        """The default engine."""
        return self.pipeline.engine

    def engine_named(self, name: str | None) -> Engine:
        """A loaded engine by name (None or "auto": the default); UserError naming the loaded ones otherwise."""
        return self.pipeline.engine_for(name)

    @property
    def engines(self) -> list[Engine]:
        """Every loaded engine, the default first."""
        return list(self.pipeline.engines.values())

    @property
    def notice(self) -> str | None:
        """Why the embedded engine stands in for Paraformer, when it does."""
        return self.pipeline.notice

    def describe(self) -> dict[str, str]:
        """Engine, models and device, for the System tab and /health."""
        return self.pipeline.describe()

    def free_gpu_memory(self) -> tuple[int, int] | None:
        """Give cached CUDA memory back to the driver: bytes reserved (before, after); None without a GPU."""
        if all(e.device != "cuda" for e in self.engines):
            return None
        import torch

        before = torch.cuda.memory_reserved()
        self.pipeline.free_gpu_cache()
        return before, torch.cuda.memory_reserved()


def build_service(settings: Settings, preload_speakers: bool = True) -> TranscriptionService:
    """Load every model and open the history: done once, before the server accepts requests.
    `preload_speakers`: warm the speaker model up in the background now, or at first use (the server starts it
    once its page is built; the CLI when it is asked for speakers)."""
    history = open_history(settings)
    report_interrupted(history)
    if settings.keep_days:
        removed = history.purge(settings.keep_days)
        if removed:
            log.info("purged %d history records older than %g days", removed, settings.keep_days)
    work_queue = WorkQueue(str(settings.db)) if settings.queue else None
    return TranscriptionService(settings, Pipeline.load(settings, preload_speakers), history, work_queue)


def open_history(settings: Settings) -> HistoryStore:
    """The history of ``--db``, opened first so that an unreachable PostgreSQL server or an unreadable file fails
    the start at once, before any model loads: UserError("history_unavailable") saying which and why."""
    try:
        return open_store(settings.db, keep_audio=settings.keep_audio)
    except HistoryError as e:
        db = without_password(settings.db) if isinstance(settings.db, str) else str(settings.db)
        raise UserError("history_unavailable", db=db, reason=str(e)) from e


def report_interrupted(history: HistoryStore) -> None:
    """One warning line naming the transcriptions a stopped process left unfinished (now 'interrupted' records)."""
    if not history.interrupted:
        return
    names = ", ".join(
        f"#{job.record_id} {job.source}" + (f" ({job.name})" if job.name != job.source else "")
        for job in history.interrupted
    )
    names = re.sub(r"[\x00-\x1f\x7f]", "?", names)  # file names are the user's: one log line stays one line
    log.warning(
        "%d transcription(s) were interrupted when the server stopped before they finished: %s;"
        " they are in History with status 'interrupted'",
        len(history.interrupted),
        names,
    )
