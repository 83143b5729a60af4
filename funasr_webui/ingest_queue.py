"""`ingest DIR --queue`: put a folder's new files on the work queue for the workers, instead of transcribing here.

No model is loaded: the files are listed, hashed and queued (by path on storage every worker mounts, or with
``--upload`` their bytes, so workers need no shared folder). The same skipping as `ingest`: a file already queued
or done with the same options is left alone, a failed one too unless ``--retry-failed``; a file still being
written waits for the next round (``--settle``), and ``--watch`` keeps polling. Workers (`worker`) do the rest.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .helpers import printable
from .history import HistoryError, audio_hash, settings_key
from .history.work_queue import JobSpec, WorkQueue
from .ingest import Candidate, watch_folder


@dataclass
class EnqueueResult:
    queued: int = 0
    already_queued: int = 0  # the same audio and options is a job already (queued, running or ended)
    in_history: int = 0  # done before (or failed before) without the queue: `transcribe`, `ingest`, the page
    failed: int = 0

    @property
    def skipped(self) -> int:
        return self.already_queued + self.in_history

    def summary(self, elapsed: float, waiting: int) -> str:
        return (
            f"ingest --queue: {self.queued} queued, {self.skipped} skipped ({self.already_queued} queued before,"
            f" {self.in_history} in the history), {self.failed} failed; {waiting} job(s) waiting for workers,"
            f" {elapsed:.1f} s"
        )


def past_status(history, digest: str, spec: JobSpec) -> str | None:
    """How the history ended this audio with these options, whoever did it: 'done', 'failed' or None. The model
    a worker will load is not known here, so a record counts when its key is that of its own engine and model
    with the job's options (and its engine is the one asked for, when one was)."""

    def key_for(engine: str, model: str) -> str:
        return settings_key(engine, model, spec.hotwords, spec.itn, spec.language, spec.speakers)

    return history.status_by_options(digest, key_for, spec.engine)


def enqueue_files(
    queue: WorkQueue,
    history,
    todo: list[Candidate],
    spec: JobSpec,
    *,
    upload: bool,
    retry_failed: bool,
    max_attempts: int,
    result: EnqueueResult,
    say: Callable[[str], None],
) -> None:
    """Hash and queue each file, or count it skipped: in the history with these options already (done, or
    failed unless ``retry_failed``), or queued before."""
    from .enqueue import submit

    for c in todo:
        try:
            data = c.path.read_bytes() if upload else None
            digest = audio_hash(data if data is not None else c.path)
        except OSError as e:
            result.failed += 1
            say(f"failed: {printable(c.name)}: cannot read the file ({e.strerror or e})")
            continue
        past = past_status(history, digest, spec)
        if past == "done" or (past == "failed" and not retry_failed):
            result.in_history += 1
            say(f"skipped: {printable(c.name)} ({past} before, in the history)")
            continue
        submitted = submit(
            queue,
            history,
            source=c.name,
            name=c.name,  # as ingest names its records: the path under the folder
            digest=digest,
            spec=spec,
            path=None if upload else str(c.path.resolve()),
            audio=data,
            retry_failed=retry_failed,
            max_attempts=max_attempts,
        )
        if submitted.new:
            result.queued += 1
            say(f"queued: {printable(c.name)} (job {submitted.job.id})")
        else:
            result.already_queued += 1


def run_enqueue(args) -> int:
    """Exit codes as `ingest`: 0 when every file was queued or skipped, 1 when one could not be read, 2 for bad
    options (no PostgreSQL --db, bad transcription options), 130 when a one-shot run is stopped."""
    from .cli import settings_from_args
    from .enqueue import spec_from_args
    from .history import is_postgres_url
    from .service import open_history

    folder: Path = args.folder
    if not folder.is_dir():
        print(f"error: {folder} is not a folder", file=sys.stderr)
        return 2
    settings = settings_from_args(args)
    url = str(settings.db)
    if not is_postgres_url(url):
        print("error: --queue needs the queue's database: --db postgresql://user@host/db", file=sys.stderr)
        return 2
    try:
        spec = spec_from_args(args, settings)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    history = open_history(settings)  # UserError (one line, from main) when the database is out of reach
    try:
        queue = WorkQueue(url)
    except HistoryError as e:
        history.close()
        print(f"error: {e}", file=sys.stderr)
        return 2

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    result = EnqueueResult()
    options = {"upload": args.upload, "retry_failed": args.retry_failed, "max_attempts": args.max_attempts}

    def enqueue(ready: list[Candidate]) -> None:
        enqueue_files(queue, history, ready, spec, **options, result=result, say=say)

    code = 0
    try:
        watch_folder(folder, args, enqueue, say)
    except KeyboardInterrupt:
        say("stopped: the files queued so far stay queued; run again to queue the rest")
        code = 0 if args.watch else 130
    except HistoryError as e:
        say(f"error: {e}")
        code = 1
    try:
        waiting_jobs = queue.pending()
    except HistoryError:
        waiting_jobs = -1
    print(result.summary(time.perf_counter() - started, waiting_jobs))
    if code == 0 and result.failed:
        code = 1
    queue.close()
    history.close()
    return code
