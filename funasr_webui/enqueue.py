"""Submitting files to the work queue: what `ingest --queue`, the Batch tab and POST /api/v1/jobs share.

A job is asked with the options as the user gave them (``JobSpec``); the worker that takes it checks them against
its own engines. The same audio with the same options is one job: submitting it again returns that job (already
done: its record at once), except that a failed one is queued again when asked (``retry_failed``, the Batch tab
and the API always ask), and a done one whose record was deleted from the history is done again.
"""

from __future__ import annotations

import argparse

from .engine import TranscribeOptions, parse_hotwords
from .history import HistoryError, HistoryStore
from .history.work_queue import JobSpec, Submitted, WorkQueue
from .settings import Settings
from .speakers import parse_speakers


def spec_of(options: TranscribeOptions, asked_engine: str | None) -> JobSpec:
    """The job's options from validated ones; the engine only when the user chose one (else: any worker's
    default, not this replica's)."""
    chosen = (asked_engine or "").strip().lower()
    return JobSpec(
        engine=(options.engine or "") if chosen not in ("", "auto") else "",
        hotwords=list(options.hotwords),
        itn=options.itn,
        language=options.language or "",
        speakers=options.speakers,
    )


def spec_from_args(args: argparse.Namespace, settings: Settings) -> JobSpec:
    """The job's options from `ingest`'s command line (``cli.add_transcribe_options``), checked without loading
    a model: the language is checked by the worker, against the engine that runs the job. UserError for bad ones."""
    from .cli import read_hotwords

    language = (args.language or "").strip().lower()
    return JobSpec(
        engine="" if args.engine == "auto" else args.engine,
        hotwords=parse_hotwords(read_hotwords(args.hotwords), settings.max_hotwords),
        itn=not args.no_itn,
        language="" if language == "auto" else language,
        speakers=parse_speakers(args.speakers),
    )


def submit(
    queue: WorkQueue,
    history: HistoryStore,
    *,
    source: str,
    digest: str,
    spec: JobSpec,
    name: str = "",
    path: str | None = None,
    audio: bytes | None = None,
    retry_failed: bool = False,
    max_attempts: int = 3,
) -> Submitted:
    """Queue one file by its path on shared storage or by its bytes; see the module's docstring for repeats."""
    submitted = queue.enqueue(
        source=source, audio_hash=digest, spec=spec, name=name, path=path, audio=audio, max_attempts=max_attempts
    )
    job = submitted.job
    again = (job.state == "failed" and retry_failed) or (job.state == "done" and _gone(history, job))
    if submitted.new or not again:
        return submitted
    requeued = queue.requeue(job.id, source=source, name=name, path=path, audio=audio)
    return Submitted(requeued, True) if requeued is not None else submitted


def _gone(history: HistoryStore, job) -> bool:
    """Whether a done job's record was deleted from the history (then the file is done again)."""
    try:
        return job.record_id is None or history.get(job.record_id) is None
    except HistoryError:
        return False
