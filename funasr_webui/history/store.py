"""HistoryStore: the transcription history, the one object that reads and writes the database.

Its public methods raise HistoryError (never ``sqlite3.Error`` or ``psycopg.Error``) when the database fails
them; ValueError for bad arguments. Several threads and processes may share one file (see connection); with a
PostgreSQL URL, processes on any number of machines share one database.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from ..helpers import printable
from ..qa.matcher import Checker
from ..qa.rules import Hit, Located, Rule
from ..transcript import Transcript
from . import audio_copies, export, jobs, maintenance, qa, records, schema, schema_pg, search, search_pg, work_queue
from .connection import DB_ERRORS, Connections, HistoryError, guarded, read, write
from .hashing import hotword_list, key_of
from .heartbeat import Heartbeat
from .models import Interrupted, Page, Record, ts, utc_now
from .search import grams, id_bounds
from .target import db_target, is_postgres_url, without_password

log = logging.getLogger(__name__)

DEFAULT_DB = Path(__file__).resolve().parents[2] / "history.db"

DateFilter = datetime | date | str | None


def open_store(
    db: str | os.PathLike[str],
    *,
    keep_audio: bool = False,
    keep_days: float | None = None,
    audio_dir: str | os.PathLike[str] | None = None,
) -> HistoryStore:
    """The history of ``--db``: a SQLite file path, or a ``postgresql://user@host[:port]/db`` URL."""
    return HistoryStore(db, keep_audio=keep_audio, keep_days=keep_days, audio_dir=audio_dir)


def default_audio_dir(db: Path | str) -> Path:
    """Where kept audio copies go: "history.db" -> "history_audio/" beside it; for a PostgreSQL database
    "<name>_audio/" in the project folder (shared storage mounted there serves every machine's copies)."""
    if isinstance(db, Path):
        return db.with_name(db.stem + "_audio")
    name = re.sub(r"[^\w.-]", "_", db.rsplit("/", 1)[-1].split("?", 1)[0]) or "postgres"
    return DEFAULT_DB.parent / f"{name}_audio"


class HistoryStore:
    """The transcription history database. Safe to share between threads; several processes may open
    the same file, or the same PostgreSQL database from several machines."""

    @guarded
    def __init__(
        self,
        db_path: str | os.PathLike[str],
        keep_audio: bool = False,
        keep_days: float | None = None,
        audio_dir: str | os.PathLike[str] | None = None,
    ):
        target = db_target(db_path)
        self.postgres = is_postgres_url(target)
        # A file's path; a PostgreSQL URL without its password (what logs and the System tab show).
        self.db_path: Path | str = without_password(target) if isinstance(target, str) else target
        self.keep_audio = keep_audio
        # Named after the database so two databases never share it.
        self.audio_dir = Path(audio_dir) if audio_dir is not None else default_audio_dir(target)
        self._conns = Connections(target)
        self._stale_jobs: set[int] = set()  # jobs whose cancel failed (e.g. a full disk); dropped by the next job
        self._select = search_pg.select if self.postgres else search.select
        self._heartbeat: Heartbeat | None = None
        try:
            if isinstance(target, Path):
                target.parent.mkdir(parents=True, exist_ok=True)
                schema.init(self._conn(), target)
            else:
                schema_pg.init(self._conn(), str(self.db_path))
                # Jobs of this process stay leased while it runs (other machines cannot see its pid).
                self._heartbeat = Heartbeat(self._conns)
        except BaseException:
            self.close()
            raise
        # Transcriptions a stopped process left unfinished, now 'interrupted' records (for the start-up report).
        self.interrupted: list[Interrupted] = []
        try:
            self.interrupted = self.reap_interrupted()
        except HistoryError as e:  # a read-only or full database still opens; a later open reports them
            log.warning("could not mark interrupted transcriptions in %s: %s", self.db_path, e)
        if keep_days is not None and keep_days > 0:
            self.purge(keep_days)

    def _conn(self) -> Any:
        return self._conns.get()

    def _write(self) -> AbstractContextManager[Any]:
        return write(self._conn())

    def _read(self) -> AbstractContextManager[Any]:
        return read(self._conn())

    @guarded
    def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.stop()
        self._conns.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- writing

    @guarded
    def add(
        self,
        transcript: Transcript,
        *,
        source: str,
        audio_hash: str,
        audio_path: str | os.PathLike[str] | None = None,
        settings_key: str | None = None,
        job: int | None = None,
        hits: Iterable[Hit] | None = None,
        name: str = "",
    ) -> int:
        """Save a finished transcription; returns its id. With keep_audio, copies ``audio_path``.

        ``source``: where the audio came from (a file name, 'microphone', 'api', 'websocket'…); ``name``: what the
        user calls it (an API upload's file name, a FunASR client's wav_name; '' = its source says it).

        ``settings_key`` defaults to the key of the transcript's own settings; pass the key of the
        requested settings when they differ (e.g. language "auto" but the transcript says "zh").
        ``job``: the job (see start_job) this record ends, deleted in the same transaction.
        ``hits``: what the quality rules found on it, saved with it (None: not checked, no rules were active).
        """
        t = transcript
        gram_text = grams(printable(t.text))  # CPU work outside the write lock
        with self._write() as conn:
            jobs.end(conn, job)
            rid = records.insert(
                conn,
                records.created_floor(conn),
                status="done",
                source=source,
                audio_hash=audio_hash,
                key=settings_key or key_of(t),
                t=t,
                gram_text=gram_text,
                name=name,
            )
            if hits is not None:
                qa.write_hits(conn, rid, hits)
        if self.keep_audio and audio_path is not None:
            self._keep_audio_copy(rid, Path(audio_path))
        return rid

    @guarded
    def add_many(
        self,
        items: Iterable[
            tuple[Transcript, str, str]
            | tuple[Transcript, str, str, datetime | None]
            | tuple[Transcript, str, str, datetime | None, str]
        ],
    ) -> list[int]:
        """Save many finished transcriptions in one transaction (imports, benchmarks); no audio copies.

        Each item is ``(transcript, source, audio_hash)``, ``(transcript, source, audio_hash, created_at)`` or
        ``(transcript, source, audio_hash, created_at, name)``; created_at None is now, and one earlier than the
        newest record's is raised to it (created_at never decreases with id).
        """
        rows = [  # CPU work outside the lock
            {
                "status": "done",
                "source": item[1],
                "audio_hash": item[2],
                "key": key_of(item[0]),
                "t": item[0],
                "gram_text": grams(printable(item[0].text)),
                "created_at": item[3] if len(item) > 3 else None,
                "name": item[4] if len(item) > 4 else "",
            }
            for item in items
        ]
        with self._write() as conn:
            floor = records.created_floor(conn)
            if self.postgres:  # COPY: rows as insert writes them
                return records.insert_many_pg(conn, floor, rows)
            return [records.insert(conn, floor, **row) for row in rows]

    @guarded
    def add_failure(
        self,
        *,
        source: str,
        audio_hash: str,
        error: str,
        error_code: str | None = None,
        engine: str = "",
        model: str = "",
        device: str = "",
        hotwords: str | Iterable[str] = (),
        itn: bool = True,
        language: str = "",
        duration: float = 0.0,
        elapsed: float = 0.0,
        job: int | None = None,
        name: str = "",
    ) -> int:
        """Save a failed transcription with its error (English text) and the error's code (e.g. "too_long");
        returns its id. ``job``, ``name``: as for ``add``."""
        t = Transcript(
            text="",
            raw_text="",
            language=language,
            duration=duration,
            engine=engine,
            model=model,
            device=device,
            elapsed=elapsed,
            hotwords=hotword_list(hotwords),
            itn=itn,
        )
        with self._write() as conn:
            jobs.end(conn, job)
            return records.insert(
                conn,
                records.created_floor(conn),
                status="failed",
                source=source,
                audio_hash=audio_hash,
                key=key_of(t),
                t=t,
                error=error,
                error_code=error_code,
                gram_text="",
                name=name,
            )

    # ---- jobs: transcriptions in progress

    @guarded
    def start_job(
        self,
        *,
        source: str,
        audio_hash: str,
        settings_key: str,
        name: str = "",
        engine: str = "",
        model: str = "",
        device: str = "",
        hotwords: str | Iterable[str] = (),
        itn: bool = True,
        language: str = "",
        duration: float = 0.0,
    ) -> int:
        """Note a transcription that has begun; returns its job id. ``name``: what the user calls the audio (as
        for ``add``): an interrupted record of it keeps that name.

        ``add``/``add_failure`` with ``job=`` turn it into its record; ``cancel_job`` drops it. A job left
        behind by a process that died becomes an 'interrupted' record when a store next opens the file.
        """
        stale = sorted(self._stale_jobs)
        with self._write() as conn:
            for job in stale:
                jobs.end(conn, job)
            job_id = jobs.insert(
                conn,
                source=source,
                name=name,
                audio_hash=audio_hash,
                settings_key=settings_key,
                duration=duration,
                engine=engine,
                model=model,
                device=device,
                hotwords=hotwords,
                itn=itn,
                language=language,
            )
        self._stale_jobs.difference_update(stale)
        return job_id

    @guarded
    def cancel_job(self, job: int) -> None:
        """Drop a job without a record (input refused, nothing said, or its record could not be saved)."""
        try:
            with self._write() as conn:
                jobs.end(conn, job)
        except DB_ERRORS:
            self._stale_jobs.add(job)  # a job of a live process is never reaped: the next start_job drops it
            raise

    @guarded
    def reap_interrupted(self) -> list[Interrupted]:
        """Turn the jobs of processes that are gone into 'interrupted' records; returns what was turned.

        Called when the store opens. Jobs of live processes (this one, or another server or CLI sharing the
        file) are left alone. Writes nothing when there is nothing to reap, so a read-only file still opens.
        """
        with self._read() as conn:
            if not jobs.any_orphaned(conn):
                return []
        with self._write() as conn:  # read again under the write lock: another process may have reaped them
            return jobs.reap(conn)

    # ---- audio copies, deleting

    def _keep_audio_copy(self, rid: int, src: Path) -> None:
        name = audio_copies.keep(self.audio_dir, rid, src)
        if name is None:
            return
        with self._write() as conn:
            n = conn.execute("UPDATE records SET audio_file = ? WHERE id = ?", (name, rid)).rowcount
        if n == 0:  # deleted meanwhile
            audio_copies.remove(self.audio_dir, [name])

    @guarded
    def delete(self, ids: Iterable[int]) -> int:
        """Delete records (and their audio copies); returns how many existed."""
        with self._write() as conn:
            deleted, files = records.delete(conn, sorted({int(i) for i in ids}))
        audio_copies.remove(self.audio_dir, files)
        return deleted

    # ---- reading

    @guarded
    def get(self, record_id: int) -> Record | None:
        with self._read() as conn:
            recs = records.fetch(conn, [int(record_id)], self.audio_dir)
        return recs[0] if recs else None

    @guarded
    def find_previous(self, audio_hash: str, key: str) -> Record | None:
        """The newest successful record of the same audio content with the same settings key."""
        with self._read() as conn:
            rid = records.newest_done(conn, audio_hash, key)
            return records.fetch(conn, [rid], self.audio_dir)[0] if rid is not None else None

    @guarded
    def status_by_options(self, audio_hash: str, key_for: Callable[[str, str], str], engine: str = "") -> str | None:
        """The status of the newest finished record of this audio whose settings key is ``key_for(engine, model)``
        of its own engine and model (with ``engine``: only records of that engine); None when there is none. For
        callers that know the options but not which model will run them (``ingest --queue`` loads none)."""
        with self._read() as conn:
            found = records.results_of(conn, audio_hash)
        for status, rec_engine, model, key in found:
            if (not engine or rec_engine == engine) and key == key_for(rec_engine, model):
                return status
        return None

    @guarded
    def status_of(self, audio_hash: str, key: str) -> str | None:
        """The status of the newest record of this audio content with this settings key, or None."""
        with self._read() as conn:
            return records.newest_status(conn, audio_hash, key)

    @guarded
    def search(
        self,
        q: str = "",
        *,
        date_from: DateFilter = None,
        date_to: DateFilter = None,
        engine: str | None = None,
        source: str | None = None,
        status: str | None = None,
        speaker: str | None = None,
        flagged: bool = False,
        rule: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> Page:
        """Records matching every term of ``q`` and every filter, newest first.

        A term of 3+ characters matches as a case-insensitive substring; a term of 1-2 characters
        matches a character or a pair of adjacent characters within a run of letters/digits (so
        punctuation-only short terms are ignored). "double quotes" group words into one term.
        ``total`` counts up to about COUNT_CAP matches (see Page.total_exact). ``speaker``: only records with a
        speaker of that given name (any case). ``flagged``: only records a quality rule found something on;
        ``rule``: only those with a hit of the rule of this name.
        """
        limit = max(1, int(limit))
        offset = max(0, int(offset))
        filters = {"date_from": date_from, "date_to": date_to, "engine": engine, "source": source, "status": status}
        filters |= {"speaker": speaker, "flagged": flagged, "rule": rule}
        with self._read() as conn:
            ids, total, exact = self._select(conn, q, filters, offset + limit)
            return Page(records.fetch(conn, ids[offset:], self.audio_dir), total, limit, offset, exact)

    @guarded
    def search_ids(
        self,
        q: str = "",
        *,
        date_from: DateFilter = None,
        date_to: DateFilter = None,
        engine: str | None = None,
        source: str | None = None,
        status: str | None = None,
        speaker: str | None = None,
        flagged: bool = False,
        rule: str | None = None,
    ) -> list[int]:
        """Every id matching ``search``'s query and filters, newest first (for the exports)."""
        filters = {"date_from": date_from, "date_to": date_to, "engine": engine, "source": source, "status": status}
        filters |= {"speaker": speaker, "flagged": flagged, "rule": rule}
        with self._read() as conn:
            return self._select(conn, q, filters, None, 0)[0]

    def _iter_records(self, ids: Iterable[int] | None) -> Iterator[Record]:
        """Records in ascending id order, a chunk at a time (all of them when ``ids`` is None).

        No transaction stays open across a yield, so the consumer may use the store meanwhile.
        """
        id_list = None if ids is None else sorted({int(i) for i in ids})
        last, pos = 0, 0
        while True:
            with self._read() as conn:
                if id_list is None:
                    chunk = records.ids_after(conn, last)
                else:
                    chunk, pos = id_list[pos : pos + records.CHUNK], pos + records.CHUNK
                recs = records.fetch(conn, chunk, self.audio_dir)
            if not chunk:
                return
            yield from recs
            last = chunk[-1]

    # ---- speakers

    @guarded
    def set_speaker_names(self, record_id: int, names: dict[str, str]) -> Record | None:
        """Give speakers of a record display names ("S1" -> "张经理"; "" = the default name again); returns the
        record as it is now, None when there is no such record."""
        with self._write() as conn:
            if not conn.execute("SELECT 1 FROM records WHERE id = ?", (int(record_id),)).fetchone():
                return None
            records.set_speaker_names(conn, int(record_id), names)
        return self.get(record_id)

    @guarded
    def speaker_names(self) -> list[str]:
        """Names given to speakers anywhere in the history, most used first."""
        with self._read() as conn:
            return records.speaker_names(conn)

    # ---- quality rules and their hits (tables in qa.py; the checking itself is funasr_webui.qa's)

    @guarded
    def rules(self, enabled_only: bool = False) -> list[Rule]:
        with self._read() as conn:
            return qa.list_rules(conn, enabled_only)

    @guarded
    def rule(self, rule_id: int) -> Rule | None:
        with self._read() as conn:
            return qa.get_rule(conn, int(rule_id))

    @guarded
    def rule_id(self, name: str) -> int | None:
        with self._read() as conn:
            return qa.rule_id_by_name(conn, name)

    @guarded
    def add_rule(self, rule: Rule) -> int:
        """Store a new rule (its name must be free: ValueError otherwise); returns its id."""
        with self._write() as conn:
            if qa.rule_id_by_name(conn, rule.name) is not None:
                raise ValueError(f"a rule named {rule.name!r} exists already")
            return qa.insert_rule(conn, rule)

    @guarded
    def update_rule(self, rule_id: int, rule: Rule) -> bool:
        """Replace a rule; False if there is none with this id; ValueError if another rule has the name."""
        with self._write() as conn:
            other = qa.rule_id_by_name(conn, rule.name)
            if other is not None and other != rule_id:
                raise ValueError(f"a rule named {rule.name!r} exists already")
            return qa.update_rule(conn, int(rule_id), rule)

    @guarded
    def delete_rule(self, rule_id: int) -> bool:
        """Delete a rule (the hits it left stay until the records are checked again)."""
        with self._write() as conn:
            return qa.delete_rule(conn, int(rule_id))

    @guarded
    def import_rules(self, rules: list[Rule], replace: bool = False) -> tuple[int, int, int]:
        """Add the rules, updating those of the same name, in one transaction; with ``replace`` the rules not
        named are deleted. Returns (added, updated, deleted)."""
        added = updated = deleted = 0
        with self._write() as conn:
            names = {r.name for r in rules}
            if replace:
                for old in qa.list_rules(conn):
                    if old.name not in names and old.id is not None:
                        deleted += qa.delete_rule(conn, old.id)
            for rule in rules:
                rid = qa.rule_id_by_name(conn, rule.name)
                if rid is None:
                    qa.insert_rule(conn, rule)
                    added += 1
                else:
                    qa.update_rule(conn, rid, rule)
                    updated += 1
        return added, updated, deleted

    @guarded
    def qa_setting(self, name: str) -> str | None:
        with self._read() as conn:
            return qa.get_setting(conn, name)

    @guarded
    def set_qa_setting(self, name: str, value: str) -> None:
        with self._write() as conn:
            qa.set_setting(conn, name, value)

    @guarded
    def hits(self, ids: Iterable[int]) -> dict[int, list[Hit]]:
        """The quality hits of each record (records without any are left out)."""
        with self._read() as conn:
            return qa.hits_of(conn, sorted({int(i) for i in ids}))

    @guarded
    def save_hits(self, record_id: int, hits: Iterable[Hit]) -> None:
        with self._write() as conn:
            qa.write_hits(conn, int(record_id), hits)

    @guarded
    def apply_rules(
        self,
        checker: Checker,
        *,
        date_from: DateFilter = None,
        date_to: DateFilter = None,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[int, int]:
        """Check every finished record of the date range again with ``checker``, replacing its hits; the
        transcripts are not touched. Returns (records checked, hits). One read, one check (outside any
        transaction) and one write per chunk, so other writers are never blocked for long."""
        with self._read() as conn:
            bounds = id_bounds(conn, date_from, date_to)
        if bounds is None:
            return 0, 0
        lo, hi = bounds
        done = n_hits = 0
        after = lo - 1
        while True:
            with self._read() as conn:
                rows = qa.calls_in(conn, lo, hi, after)
            if not rows:
                return done, n_hits
            results = qa.check_rows(rows, checker)
            with self._write() as conn:
                qa.write_many(conn, results)
            done += len(results)
            n_hits += sum(len(h) for _, h in results)
            after = rows[-1][0]
            if progress:
                progress(done)

    @guarded
    def qa_report(
        self, *, date_from: DateFilter = None, date_to: DateFilter = None, rule: str | None = None
    ) -> list[Located]:
        """Every hit in the date range (of one rule, if given), oldest call first."""
        with self._read() as conn:
            bounds = id_bounds(conn, date_from, date_to)
            return [] if bounds is None else qa.report(conn, *bounds, rule=rule or None)

    @guarded
    def qa_summary(self, *, date_from: DateFilter = None, date_to: DateFilter = None) -> dict[str, Any]:
        """Calls checked, calls flagged, and hits and calls per rule, in the date range."""
        with self._read() as conn:
            bounds = id_bounds(conn, date_from, date_to)
            return {"checked": 0, "flagged": 0, "rules": []} if bounds is None else qa.summary(conn, *bounds)

    @guarded
    def flagged(
        self, *, date_from: DateFilter = None, date_to: DateFilter = None, rule: str | None = None, limit: int = 200
    ) -> list[tuple[Record, list[Hit]]]:
        """Flagged records of the date range, newest first, each with its hits."""
        with self._read() as conn:
            bounds = id_bounds(conn, date_from, date_to)
            if bounds is None:
                return []
            ids = [rid for rid, _ in qa.flagged(conn, *bounds, rule or None, max(1, int(limit)))]
            recs = records.fetch(conn, ids, self.audio_dir)
            hits = qa.hits_of(conn, ids)
        return [(r, hits.get(r.id, [])) for r in recs]

    @guarded
    def hit_rules(self) -> list[str]:
        """Names of the rules that have hits in the history (a deleted rule's too)."""
        with self._read() as conn:
            return qa.hit_rules(conn)

    # ---- export (formats in export.py; records oldest first, ``ids=None`` exports everything)

    @guarded
    def export_json(self, ids: Iterable[int] | None = None) -> bytes:
        return export.export_json(self._iter_records(ids))

    @guarded
    def export_csv(self, ids: Iterable[int] | None = None) -> bytes:
        return export.export_csv(self._iter_records(ids))

    @guarded
    def export_zip(self, ids: Iterable[int] | None = None, fmt: str = "srt") -> bytes:
        return export.export_zip(self._iter_records(ids), fmt)

    @guarded
    def export(self, fmt: str, ids: Iterable[int] | None = None) -> bytes:
        """Export by format name: json, csv, zip-srt, zip-txt, zip-vtt, zip-json."""
        return export.export_records(fmt, self._iter_records(ids))

    # ---- maintenance

    @guarded
    def purge(self, older_than_days: float) -> int:
        """Delete records created more than ``older_than_days`` days ago (on PostgreSQL, the work queue's jobs
        that ended as long ago too); returns how many records."""
        if older_than_days < 0:
            raise ValueError("older_than_days must be >= 0")
        cutoff = ts(utc_now() - timedelta(days=older_than_days))
        total = 0
        while True:  # small transactions: other writers are never blocked for long, the WAL stays small
            with self._read() as conn:
                ids = records.ids_before(conn, cutoff)
            if not ids:
                break
            total += self.delete(ids)
        if self.postgres:
            jobs_gone = work_queue.purge_finished(self._conn(), older_than_days)
            if jobs_gone:
                log.info("purged %d finished work-queue jobs older than %g days", jobs_gone, older_than_days)
        return total

    @guarded
    def backup(self, target: str | os.PathLike[str]) -> Path:
        """A consistent copy of the database (safe while others write); returns its path."""
        return maintenance.backup(self._conn(), self.db_path, target)

    @guarded
    def vacuum(self) -> None:
        """Merge FTS segments, rebuild the file compactly, and truncate the WAL."""
        maintenance.vacuum(self._conn())

    @guarded
    def stats(self) -> dict[str, Any]:
        """count, done, failed, interrupted, audio_hours, db_bytes (database + WAL), audio_bytes (kept copies).
        Running transcriptions are jobs, not records: they are not counted."""
        return maintenance.stats(self._conn(), self.db_path, self.audio_dir)
