"""`python -m funasr_webui worker --db postgresql://…`: a stateless worker that takes queued jobs until stopped.

It loads its engines once (the same loader as `transcribe` and `ingest`), registers itself in the queue, and
takes one job at a time (history/work_queue.py explains the queue). A heartbeat thread renews the job's lease and
the worker's "last seen" every third of ``--lease-seconds``: a worker killed mid-job (SIGKILL, a power cut) stops
renewing, and once the lease has expired another worker takes the job over. SIGTERM (systemd's stop) or Ctrl-C
gives the current job back at once, without counting the attempt, so a stop is prompt and the file is done by the
next worker. A file that cannot be decoded fails at once; a model error is retried (another worker may do better)
up to the job's attempts, then saved as a failed record, as `ingest` does.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from . import tempfiles
from .audio import AudioError
from .engine import TranscribeOptions
from .errors import UserError
from .helpers import printable
from .history import HistoryError
from .history.work_queue import Ending, Job, JobSpec, WorkQueue
from .service import TranscriptionService

log = logging.getLogger(__name__)

RETRY_DELAY_S = 10.0  # a job given back after a model or database error waits this long before it is taken again


def options_of(service: TranscriptionService, spec: JobSpec) -> TranscribeOptions:
    """The options of a job, checked against this worker's engines (UserError: e.g. a language its engine lacks)."""
    speakers = "auto" if spec.speakers == 0 else spec.speakers  # kept as TranscribeOptions has it (0 = auto)
    return service.options(spec.hotwords, spec.itn, spec.language, engine=spec.engine or None, speakers=speakers)


class Worker:
    def __init__(
        self,
        service: TranscriptionService,
        url: str,
        *,
        lease_s: float = 60.0,
        poll_s: float = 2.0,
        report: Callable[[str], None] = print,
    ) -> None:
        self.service = service
        self.url = url
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.report = report
        self.engines = [e.name for e in service.engines]
        self.queue = WorkQueue(url)
        self.id = self.queue.register(socket.gethostname(), os.getpid(), self.engines, lease_s)
        self.current: int | None = None  # the job being done (the heartbeat renews its lease)
        self.done = self.failed = 0
        self._stop_beating = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, name="queue-heartbeat", daemon=True)
        self._heartbeat.start()

    # ---- the loop

    def run(self, until_empty: bool = False) -> None:
        """Take jobs until stopped (KeyboardInterrupt: the current job is given back); ``until_empty``: return
        once no job this worker could do is queued or running."""
        try:
            while True:
                job = self._claim()
                if job is not None:
                    self.do(job)
                elif until_empty and self._nothing_left():
                    return
                else:
                    time.sleep(self.poll_s)
        finally:
            self.close()

    def _claim(self) -> Job | None:
        try:
            return self.queue.claim(self.id, self.engines, self.lease_s)
        except HistoryError as e:  # the database is away (restart, network): wait and ask again
            log.warning("cannot take a job: %s", e)
            return None

    def _nothing_left(self) -> bool:
        try:
            return self.queue.pending(self.engines) == 0
        except HistoryError:
            return False

    def close(self) -> None:
        self._stop_beating.set()
        self._heartbeat.join(timeout=5)
        try:
            self.queue.unregister(self.id)
        except HistoryError as e:
            log.warning("could not sign off from the queue: %s", e)
        self.queue.close()

    def _beat(self) -> None:
        """Renew the current job's lease and this worker's last-seen time (its own connection: the main one may
        be busy saving)."""
        beat = WorkQueue(self.url, create=False)
        while not self._stop_beating.wait(self.lease_s / 3):
            job = self.current
            try:
                if not beat.renew(self.id, job, self.lease_s) and job is not None:
                    log.warning("job %d was taken over by another worker (our lease expired)", job)
            except HistoryError as e:
                log.warning("heartbeat failed: %s", e)
        beat.close()

    # ---- one job

    def do(self, job: Job) -> None:
        self.current = job.id
        try:
            self._do(job)
        except KeyboardInterrupt:  # stopped: the job goes back at once, this attempt not counted
            self._give_back(job.id)
            raise
        except HistoryError as e:  # the database went away between two steps: the job is taken again later
            log.error("job %d: %s", job.id, e)
            self._give_back(job.id, delay_s=RETRY_DELAY_S)
        finally:
            self.current = None

    def _do(self, job: Job) -> None:
        name = printable(job.label)
        if job.attempts > job.max_attempts:  # its workers died each time (a file that kills the engine?)
            reason = f"given up after {job.max_attempts} attempts" + (f": {job.error}" if job.error else "")
            self._fail(job, None, reason, "engine_error")
            return
        try:
            options = options_of(self.service, job.spec)
        except UserError as e:  # e.g. a language this worker's engine does not have
            self._fail(job, None, e.message("en"), e.key)
            return
        key = self.service.key(options)
        if self._already_saved(job, key):
            return
        try:
            with self._audio(job) as path:
                transcript = self.service.transcribe_for_job(path, name=job.label, options=options)

                def save() -> Ending:
                    previous = self.service.history.find_previous(job.audio_hash, key)
                    if previous is not None:  # saved by a worker that died before it could mark the job
                        return Ending("done", previous.id)
                    outcome = self.service.save_transcript(
                        transcript, source=job.source, name=job.name, digest=job.audio_hash, audio_path=path, key=key
                    )
                    if outcome.record_id is None:
                        raise HistoryError(outcome.save_error or "not saved")
                    return Ending("done", outcome.record_id)

                ending = self.queue.finish(self.id, job.id, save)
        except AudioError as e:  # the file itself: another attempt would fail the same way
            self._fail(job, options, e.message("en").removeprefix(f"{job.label}: "), e.key)
            return
        except UserError as e:  # a model error: another attempt, on this worker or another, may succeed
            self._retry(job, options, e.message("en"), e.key)
            return
        except OSError as e:  # shared storage away or the file gone: maybe back on the next attempt
            self._retry(job, options, f"cannot read the file ({e.strerror or e})", "file_not_found")
            return
        except HistoryError as e:  # the record could not be saved: give the job back, it is not the file's fault
            log.error("job %d: not saved: %s", job.id, e)
            self._give_back(job.id, delay_s=RETRY_DELAY_S)
            return
        if ending is None:
            self.report(f"done elsewhere: {name} (job {job.id} was finished by another worker)")
            return
        self.done += 1
        t = transcript
        self.report(
            f"done: {name} (job {job.id}, record {ending.record_id}, {t.duration:.1f} s audio, RTF {t.rtf:.3f})"
        )

    def _already_saved(self, job: Job, key: str) -> bool:
        """A job whose record is in the history already (its worker died before marking it): just mark it."""
        previous = self.service.history.find_previous(job.audio_hash, key)
        if previous is None:
            return False
        if self.queue.finish(self.id, job.id, lambda: Ending("done", previous.id)) is not None:
            self.report(f"done before: {printable(job.label)} (job {job.id}, record {previous.id})")
        return True

    @contextmanager
    def _audio(self, job: Job) -> Iterator[Path]:
        """The job's file: its path on shared storage, or its uploaded bytes in a temporary file of this process."""
        if not job.uploaded:
            path = Path(job.path or "")
            if not path.is_file():
                raise FileNotFoundError(2, "no such file on this machine", str(path))
            yield path
            return
        data = self.queue.audio_of(job.id)
        if data is None:
            raise FileNotFoundError(2, "the uploaded audio is no longer in the queue", job.label)
        suffix = Path(job.label).suffix.lower()
        suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""
        with tempfile.NamedTemporaryFile(prefix=tempfiles.prefix("job"), suffix=suffix) as f:
            f.write(data)
            f.flush()
            yield Path(f.name)

    def _retry(self, job: Job, options: TranscribeOptions, error: str, code: str) -> None:
        if job.attempts >= job.max_attempts:
            self._fail(job, options, error, code)
            return
        self.report(f"retry later: {printable(job.label)} (attempt {job.attempts} of {job.max_attempts}): {error}")
        try:
            self.queue.release(self.id, job.id, error=error, delay_s=RETRY_DELAY_S)
        except HistoryError as e:
            log.error("could not give job %d back (its lease will expire): %s", job.id, e)

    def _fail(self, job: Job, options: TranscribeOptions | None, error: str, code: str) -> None:
        """The job has failed for good: a failed record in the history, and the job marked failed with it."""

        def save() -> Ending:
            rid = self.service.save_failed(
                source=job.source, name=job.name, digest=job.audio_hash, options=options, error=error, code=code
            )
            return Ending("failed", rid, error)

        try:
            ending = self.queue.finish(self.id, job.id, save)
        except HistoryError as e:
            log.error("job %d: the failure could not be saved: %s", job.id, e)
            self._give_back(job.id, delay_s=RETRY_DELAY_S)
            return
        if ending is not None:
            self.failed += 1
            self.report(f"failed: {printable(job.label)} (job {job.id}): {error}")

    def _give_back(self, job_id: int, delay_s: float = 0.0) -> None:
        for last in (False, True):
            try:
                self.queue.release(self.id, job_id, delay_s=delay_s, count=False)
                return
            except HistoryError as e:
                if last:
                    log.error("could not give job %d back (its lease will expire): %s", job_id, e)
                self.queue.close()  # an interrupted statement may have left the connection unusable: a new one


# --------------------------------------------------------------------------- the command


def run_worker(args) -> int:
    """Exit 0 when stopped by SIGTERM / Ctrl-C or, with --until-empty, once the queue is empty; 2 for bad
    options (the database is not PostgreSQL, or cannot be reached)."""
    from .cli import settings_from_args
    from .history import is_postgres_url
    from .service import build_service

    settings = settings_from_args(args)
    url = str(settings.db)
    if not is_postgres_url(url):
        print("error: the worker needs the queue's database: --db postgresql://user@host/db", file=sys.stderr)
        return 2
    if args.lease_seconds < 3:
        print("error: --lease-seconds must be at least 3", file=sys.stderr)
        return 2
    service = build_service(settings, preload_speakers=False)
    if service.notice:
        print(service.notice, file=sys.stderr)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def stop(signum, frame):  # systemd stops with SIGTERM: like Ctrl-C, the current job goes back to the queue
        raise KeyboardInterrupt

    try:
        worker = Worker(service, url, lease_s=args.lease_seconds, poll_s=args.poll, report=say)
    except HistoryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, stop)
    engines = ", ".join(worker.engines)
    say(f"worker {worker.id} on {socket.gethostname()} (pid {os.getpid()}): taking jobs for {engines}")
    try:
        worker.run(until_empty=args.until_empty)
        say("the queue is empty")
    except KeyboardInterrupt:
        say("stopped: the job in hand (if any) went back to the queue")
    print(f"worker: {worker.done} done, {worker.failed} failed")
    service.history.close()
    return 0
