"""The Batch tab on a server with a work queue (serve --db postgresql://… --queue): the files go to the queue
(their bytes: the workers may be on other machines) and the table fills in as workers end their jobs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from ...engine import TranscribeOptions
from ...helpers import format_duration
from ...history.work_queue import Job
from ...i18n import t
from ...service import TranscriptionService
from ..format import preview, stored_error

POLL_S = 1.0  # how often the table asks the queue how its jobs are doing


def queued_batch(
    service: TranscriptionService,
    files: list[str],
    names: list[str],
    options: TranscribeOptions,
    asked_engine: str,
    lang: str,
    on_record: Callable[[str, object], None],
) -> Iterator[tuple[str, list[list[str]], int]]:
    """Submit every file, then follow the jobs until each has ended. Yields (status line, table rows, files
    ended); ``on_record(name, record)`` is called once per ended job with its history record (for the zip).
    UserError("queue_unavailable") when the queue cannot be reached."""
    rows = [[name, "", t("st_queued", lang), "", ""] for name in names]
    ids = [
        service.enqueue_upload(path, name=name, source=name, options=options, asked_engine=asked_engine).job.id
        for path, name in zip(files, names, strict=True)
    ]
    pending = set(range(len(files)))
    done = failed = 0
    while True:
        jobs = service.queued_jobs(ids)
        for i in sorted(pending):
            job = jobs.get(ids[i])
            if job is None or job.state in ("done", "failed"):
                pending.discard(i)
                ok = _ended_row(service, job, rows[i], lang, on_record)
                done, failed = done + ok, failed + (not ok)
            elif job.state == "running":
                rows[i][2] = t("st_running", lang)
        status = t("msg_batch_queued", lang, total=len(files), done=done, failed=failed, waiting=len(pending))
        if pending and not service.queue_status()[1]:
            status += " " + t("msg_no_workers", lang)
        yield status, rows, len(files) - len(pending)
        if not pending:
            return
        time.sleep(POLL_S)


def _ended_row(
    service: TranscriptionService, job: Job | None, row: list[str], lang: str, on_record: Callable[[str, object], None]
) -> bool:
    """Fill a finished file's row from its record; False when it failed."""
    name = row[0]
    record = service.get(job.record_id) if job is not None and job.record_id is not None else None
    if record is None:  # the job or its record was deleted meanwhile
        reason = job.error if job is not None and job.error else t("msg_record_gone", lang)
        row[1:] = ["—", t("st_failed", lang, reason=reason), "", "—"]
        return False
    on_record(name, record)
    if record.status != "done":
        row[1:] = ["—", t("st_failed", lang, reason=stored_error(record, lang)), "", "—"]
        return False
    duration, elapsed = format_duration(record.duration, lang), format_duration(record.elapsed, lang)
    row[1:] = [duration, t("st_done", lang), preview(record.text), elapsed]
    return True
