"""The work queue: transcription jobs in PostgreSQL, taken by worker processes on any number of machines.

Why PostgreSQL's own ``SELECT … FOR UPDATE SKIP LOCKED`` and not a queue library (procrastinate): the queue lives
in the same database as the history, and what matters most is that a job is saved to the history exactly once.
That needs the job's row locked while its record is written (see ``finish``), which is a few lines of SQL here
but would fight a library's own task life cycle; and the worker is a plain loop over a loaded engine, not async
tasks. Nothing else to install, no broker: the database every replica already reaches is the queue.

How a job lives:
- ``enqueue``: one row per (audio content hash, options as asked); the same file asked for again with the same
  options is the same job (queued, running or done: the caller gets that job back), so a nightly ingest never
  queues a call twice. A job holds either a path on storage every worker mounts, or the file's bytes.
- ``claim``: a worker takes the oldest ready job (queued, or running with an expired lease: its worker was
  killed or lost its network) with ``FOR UPDATE SKIP LOCKED``, so workers never wait on each other, and holds
  it for ``lease_s`` seconds, renewed by ``renew`` from the worker's heartbeat thread. ``attempts`` counts the
  claims: a job whose worker dies every time (a file that crashes the engine) stops at ``max_attempts``.
- ``finish``: the job's row is locked (``FOR UPDATE``) while the worker writes its record, then marked done with
  the record's id in the same transaction. A second worker finishing the same job (it took it over after the
  lease expired while the first was only slow) waits on that lock, then sees the job done and drops its result.
  If a worker dies between writing the record and marking the job, the next worker finds the record by the
  audio's hash and settings before transcribing (the same check ingest makes) and only marks the job: a job is
  never lost and never written twice to the history.
- ``release``: a job given back (the worker was stopped, or a retryable error) waits ``run_after`` and is
  taken again; a failed job has its error and its failed record in the history.

Workers register in ``queue_workers`` (host, pid, engines, last heartbeat, jobs done) for /health and the System
tab. The tables are versioned on their own (``queue_schema``), because only PostgreSQL databases have a queue:
the history's schema version means the same on SQLite and PostgreSQL. Creation and migrations run under an
advisory lock, so processes starting together apply them once. Times are the database's (``now()``), so the
machines' clocks need not agree.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from .connection import HistoryError

QUEUE_SCHEMA_VERSION = 1
_MIGRATION_LOCK = 0x66756E7177717565  # pg_advisory_xact_lock key of this schema ("funqwque")
STATES = ("queued", "running", "done", "failed")

_V1 = [
    """CREATE TABLE queue_workers (
        id BIGSERIAL PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        engines TEXT NOT NULL,                 -- the engines it loaded, comma-separated, the default first
        lease_s DOUBLE PRECISION NOT NULL,     -- live while last_seen is younger than this
        started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        last_seen TIMESTAMPTZ NOT NULL DEFAULT now(),
        jobs_done INTEGER NOT NULL DEFAULT 0,
        jobs_failed INTEGER NOT NULL DEFAULT 0,
        current_job BIGINT,
        stopped_at TIMESTAMPTZ
    )""",
    """CREATE TABLE queue_jobs (
        id BIGSERIAL PRIMARY KEY,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
        source TEXT NOT NULL,                  -- the record's source: a file's name (relative to its folder), 'api'
        name TEXT NOT NULL DEFAULT '',         -- the record's name: what the user calls the audio
        path TEXT,                             -- absolute path on shared storage; NULL when the bytes are here
        audio BYTEA,                           -- the uploaded file; dropped once the job has ended
        audio_hash TEXT NOT NULL,
        spec TEXT NOT NULL,                    -- JSON of the options as asked (JobSpec)
        engine TEXT NOT NULL DEFAULT '',       -- the engine asked for; '' = any worker's default
        attempts INTEGER NOT NULL DEFAULT 0,   -- claims so far
        max_attempts INTEGER NOT NULL,
        worker_id BIGINT,
        locked_until TIMESTAMPTZ,
        run_after TIMESTAMPTZ NOT NULL DEFAULT now(),
        started_at TIMESTAMPTZ,
        finished_at TIMESTAMPTZ,
        record_id BIGINT,                      -- the history record it ended as (done or failed)
        error TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE UNIQUE INDEX queue_jobs_identity ON queue_jobs (audio_hash, spec)",
    "CREATE INDEX queue_jobs_open ON queue_jobs (id) WHERE state IN ('queued', 'running')",
]
_MIGRATIONS: list[list[str]] = [_V1]  # append only: migration i takes the queue schema from i to i + 1

_JOB_COLS = (
    "id, state, source, name, path, audio IS NOT NULL, audio_hash, spec, engine, attempts, max_attempts,"
    " record_id, error, created_at, started_at, finished_at"
)


@dataclass(frozen=True)
class JobSpec:
    """The options a job was asked with, as given (a worker validates them against its own engines)."""

    engine: str = ""  # '' = the worker's default
    hotwords: list[str] = field(default_factory=list)
    itn: bool = True
    language: str = ""
    speakers: int | None = None  # None = not asked, 0 = find how many, N = exactly N

    def to_json(self) -> str:
        body = {
            "engine": self.engine,
            "hotwords": sorted(set(self.hotwords)),
            "itn": self.itn,
            "language": self.language,
            "speakers": self.speakers,
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        d = json.loads(text)
        return cls(d["engine"], list(d["hotwords"]), bool(d["itn"]), d["language"], d["speakers"])


@dataclass
class Job:
    id: int
    state: str
    source: str
    name: str
    path: str | None
    uploaded: bool  # the bytes are in the queue (``audio_of``)
    audio_hash: str
    spec: JobSpec
    attempts: int
    max_attempts: int
    record_id: int | None
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def label(self) -> str:
        """The file as its user calls it (an API upload's source is just 'api')."""
        return self.name or self.source

    def to_dict(self) -> dict[str, Any]:
        """What the API answers for a job."""
        return {
            "id": self.id,
            "state": self.state,
            "source": self.source,
            "name": self.name,
            "record_id": self.record_id,
            "attempts": self.attempts,
            "error": self.error or None,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }


@dataclass
class Submitted:
    job: Job
    new: bool  # False: the same audio with the same options was queued before (this is that job)


@dataclass
class Ending:
    """How a job ended, as the worker's save step reports it to ``finish``."""

    state: str  # done | failed
    record_id: int | None
    error: str = ""


@dataclass
class WorkerInfo:
    id: int
    host: str
    pid: int
    engines: str
    started_at: datetime
    last_seen: datetime
    jobs_done: int
    jobs_failed: int
    current_job: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "pid": self.pid,
            "engines": self.engines,
            "started_at": _iso(self.started_at),
            "last_seen": _iso(self.last_seen),
            "jobs_done": self.jobs_done,
            "jobs_failed": self.jobs_failed,
            "current_job": self.current_job,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _job(row: tuple) -> Job:
    jid, state, source, name, path, uploaded, ahash, spec, _engine, attempts, max_attempts, rid, error, *times = row
    return Job(
        jid,
        state,
        source,
        name,
        path,
        uploaded,
        ahash,
        JobSpec.from_json(spec),
        attempts,
        max_attempts,
        rid,
        error,
        *times,
    )


class WorkQueue:
    """The queue tables of one PostgreSQL database, over one connection (shared by threads under a lock; a
    worker's heartbeat thread opens its own). Database failures raise HistoryError."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        """``create``: make or migrate the tables (False: another connection of this process did)."""
        self.url = url
        self._lock = threading.RLock()
        self._conn: psycopg.Connection | None = None
        if create:
            with self._guard() as conn:
                create_schema(conn)

    @contextmanager
    def _guard(self) -> Iterator[psycopg.Connection]:
        """The connection (opened again after a failure), under the lock; psycopg errors become HistoryError."""
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
                yield self._conn
            except psycopg.Error as e:
                if self._conn is not None and self._conn.broken:
                    self._conn = None
                raise HistoryError(f"work queue: {str(e).strip() or type(e).__name__}") from e

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # ---- submitting

    def enqueue(
        self,
        *,
        source: str,
        audio_hash: str,
        spec: JobSpec,
        name: str = "",
        path: str | None = None,
        audio: bytes | None = None,
        max_attempts: int = 3,
    ) -> Submitted:
        """Queue a file by ``path`` or by its bytes (``audio``); the same audio with the same options already
        queued (in any state) is returned instead (``new`` False) and left as it is."""
        if (path is None) == (audio is None):
            raise ValueError("give a path or the audio bytes")
        with self._guard() as conn:
            row = conn.execute(
                "INSERT INTO queue_jobs (state, source, name, path, audio, audio_hash, spec, engine, max_attempts)"
                " VALUES ('queued', %s, %s, %s, %s, %s, %s, %s, %s)"
                f" ON CONFLICT (audio_hash, spec) DO NOTHING RETURNING {_JOB_COLS}",
                (source, name, path, audio, audio_hash, spec.to_json(), spec.engine, max(1, int(max_attempts))),
            ).fetchone()
            if row is not None:
                return Submitted(_job(row), True)
            sql = f"SELECT {_JOB_COLS} FROM queue_jobs WHERE audio_hash = %s AND spec = %s"
            row = conn.execute(sql, (audio_hash, spec.to_json())).fetchone()
        if row is None:  # deleted between the two statements: try once more
            return self.enqueue(source=source, audio_hash=audio_hash, spec=spec, name=name, path=path, audio=audio)
        return Submitted(_job(row), False)

    def requeue(
        self, job_id: int, *, source: str, name: str = "", path: str | None = None, audio: bytes | None = None
    ) -> Job | None:
        """Queue an ended job again (a failed file asked for again, or a done one whose record was deleted),
        with a fresh count of attempts; None when it is not ended (it is being done already)."""
        with self._guard() as conn:
            row = conn.execute(
                "UPDATE queue_jobs SET state = 'queued', source = %s, name = %s, path = %s, audio = %s, attempts = 0,"
                " error = '', record_id = NULL, run_after = now(), started_at = NULL, finished_at = NULL"
                f" WHERE id = %s AND state IN ('done', 'failed') RETURNING {_JOB_COLS}",
                (source, name, path, audio, int(job_id)),
            ).fetchone()
        return _job(row) if row else None

    # ---- reading

    def get(self, job_id: int) -> Job | None:
        with self._guard() as conn:
            row = conn.execute(f"SELECT {_JOB_COLS} FROM queue_jobs WHERE id = %s", (int(job_id),)).fetchone()
        return _job(row) if row else None

    def many(self, ids: list[int]) -> dict[int, Job]:
        with self._guard() as conn:
            rows = conn.execute(f"SELECT {_JOB_COLS} FROM queue_jobs WHERE id = ANY(%s)", ([int(i) for i in ids],))
            return {j.id: j for j in map(_job, rows)}

    def audio_of(self, job_id: int) -> bytes | None:
        with self._guard() as conn:
            row = conn.execute("SELECT audio FROM queue_jobs WHERE id = %s", (int(job_id),)).fetchone()
        return bytes(row[0]) if row and row[0] is not None else None

    def counts(self) -> dict[str, int]:
        """Jobs per state (every state present, 0 when none)."""
        with self._guard() as conn:
            found = dict(conn.execute("SELECT state, count(*) FROM queue_jobs GROUP BY state").fetchall())
        return {s: int(found.get(s, 0)) for s in STATES}

    def pending(self, engines: list[str] | None = None) -> int:
        """Jobs not ended yet (queued or running): all of them, or those a worker with ``engines`` could do."""
        sql = "SELECT count(*) FROM queue_jobs WHERE state IN ('queued', 'running')"
        with self._guard() as conn:
            if engines is None:
                return conn.execute(sql).fetchone()[0]
            return conn.execute(sql + " AND (engine = '' OR engine = ANY(%s))", (list(engines),)).fetchone()[0]

    def live_workers(self) -> list[WorkerInfo]:
        """Workers that have not stopped and whose last heartbeat is younger than their lease."""
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT id, host, pid, engines, started_at, last_seen, jobs_done, jobs_failed, current_job"
                " FROM queue_workers WHERE stopped_at IS NULL"
                " AND last_seen > now() - make_interval(secs => lease_s) ORDER BY host, pid"
            ).fetchall()
        return [WorkerInfo(*r) for r in rows]

    # ---- the worker's side

    def register(self, host: str, pid: int, engines: list[str], lease_s: float) -> int:
        """A worker starting; returns its id. Rows of workers gone for a day are dropped."""
        with self._guard() as conn:
            conn.execute("DELETE FROM queue_workers WHERE last_seen < now() - interval '1 day'")
            return conn.execute(
                "INSERT INTO queue_workers (host, pid, engines, lease_s) VALUES (%s, %s, %s, %s) RETURNING id",
                (host, int(pid), ",".join(engines), float(lease_s)),
            ).fetchone()[0]

    def unregister(self, worker_id: int) -> None:
        with self._guard() as conn:
            conn.execute(
                "UPDATE queue_workers SET stopped_at = now(), current_job = NULL WHERE id = %s", (int(worker_id),)
            )

    def claim(self, worker_id: int, engines: list[str], lease_s: float) -> Job | None:
        """Take the oldest ready job this worker can do (its engine asked for, or any); None when there is none.
        A running job whose lease expired is ready: its worker is gone."""
        with self._guard() as conn, conn.transaction():
            row = conn.execute(
                "WITH next AS (SELECT id FROM queue_jobs"
                " WHERE ((state = 'queued' AND run_after <= now()) OR (state = 'running' AND locked_until < now()))"
                " AND (engine = '' OR engine = ANY(%(engines)s)) ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
                " UPDATE queue_jobs j SET state = 'running', worker_id = %(worker)s, attempts = j.attempts + 1,"
                " locked_until = now() + make_interval(secs => %(lease)s), started_at = now()"
                f" FROM next WHERE j.id = next.id RETURNING {', '.join('j.' + c for c in _JOB_COLS.split(', '))}",
                {"engines": list(engines), "worker": int(worker_id), "lease": float(lease_s)},
            ).fetchone()
            if row is not None:
                conn.execute(
                    "UPDATE queue_workers SET current_job = %s, last_seen = now() WHERE id = %s",
                    (row[0], int(worker_id)),
                )
        return _job(row) if row else None

    def renew(self, worker_id: int, job_id: int | None, lease_s: float) -> bool:
        """The heartbeat: the worker is alive, and its job's lease runs ``lease_s`` more seconds. False when the
        job is no longer this worker's (its lease expired and another took it over)."""
        with self._guard() as conn:
            conn.execute("UPDATE queue_workers SET last_seen = now() WHERE id = %s", (int(worker_id),))
            if job_id is None:
                return True
            cur = conn.execute(
                "UPDATE queue_jobs SET locked_until = now() + make_interval(secs => %s)"
                " WHERE id = %s AND worker_id = %s AND state = 'running'",
                (float(lease_s), int(job_id), int(worker_id)),
            )
            return cur.rowcount == 1

    def finish(self, worker_id: int, job_id: int, save: Callable[[], Ending]) -> Ending | None:
        """End a job exactly once: with its row locked, ``save`` writes its record to the history and says how it
        ended; the job is marked so (its bytes dropped) in the same transaction. None, and ``save`` not called,
        when another worker ended it first. An exception from ``save`` leaves the job as it was."""
        with self._guard() as conn, conn.transaction():
            row = conn.execute("SELECT state FROM queue_jobs WHERE id = %s FOR UPDATE", (int(job_id),)).fetchone()
            if row is None or row[0] in ("done", "failed"):
                return None
            ending = save()
            conn.execute(
                "UPDATE queue_jobs SET state = %s, record_id = %s, error = %s, finished_at = now(), audio = NULL,"
                " locked_until = NULL WHERE id = %s",
                (ending.state, ending.record_id, ending.error, int(job_id)),
            )
            counter = "jobs_done" if ending.state == "done" else "jobs_failed"
            conn.execute(
                f"UPDATE queue_workers SET {counter} = {counter} + 1, current_job = NULL, last_seen = now()"
                " WHERE id = %s",
                (int(worker_id),),
            )
        return ending

    def release(
        self, worker_id: int, job_id: int, *, error: str = "", delay_s: float = 0.0, count: bool = True
    ) -> None:
        """Give a job back to the queue, to be taken again after ``delay_s`` (a retryable error: ``error`` says
        which). ``count`` False: this attempt does not count (the worker was stopped, not the file's fault)."""
        with self._guard() as conn, conn.transaction():
            conn.execute(
                "UPDATE queue_jobs SET state = 'queued', worker_id = NULL, locked_until = NULL, error = %s,"
                " run_after = now() + make_interval(secs => %s), attempts = attempts - %s"
                " WHERE id = %s AND worker_id = %s AND state = 'running'",
                (error, float(delay_s), 0 if count else 1, int(job_id), int(worker_id)),
            )
            conn.execute("UPDATE queue_workers SET current_job = NULL WHERE id = %s", (int(worker_id),))


def purge_finished(conn: Any, older_than_days: float) -> int:
    """Delete the jobs that ended more than ``older_than_days`` ago; how many. The history's purge calls it, so a
    job goes when records of its age go (skipping a file done before needs its record, not its job: see
    ingest_queue.past_status). ``conn``: the history store's connection (``?`` placeholders, autocommit); 0 where
    the queue's tables were never made."""
    if conn.execute("SELECT to_regclass('queue_jobs')").fetchone()[0] is None:
        return 0
    cur = conn.execute(
        "DELETE FROM queue_jobs WHERE state IN ('done', 'failed') AND finished_at < now() - make_interval(secs => ?)",
        (float(older_than_days) * 86400.0,),
    )
    return cur.rowcount


def create_schema(conn: psycopg.Connection) -> None:
    """Create or bring up to date the queue's tables, once, however many processes start at the same moment."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS queue_schema (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM queue_schema").fetchone()
        version = row[0] if row else 0
        if version > QUEUE_SCHEMA_VERSION:
            raise HistoryError(
                f"the work queue's tables are of a newer version ({version}) than this program knows"
                f" ({QUEUE_SCHEMA_VERSION}): update this program"
            )
        for statements in _MIGRATIONS[version:]:
            for sql in statements:
                conn.execute(sql)
        if row is None:
            conn.execute("INSERT INTO queue_schema (version) VALUES (%s)", (QUEUE_SCHEMA_VERSION,))
        elif version != QUEUE_SCHEMA_VERSION:
            conn.execute("UPDATE queue_schema SET version = %s", (QUEUE_SCHEMA_VERSION,))
