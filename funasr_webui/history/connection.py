"""Connections to the history database: opening them, their pragmas, transactions, the busy retry, and the
error type the store raises instead of ``sqlite3.Error`` or ``psycopg.Error``.

One connection per thread (and per process: connections inherited through fork are dropped, never closed).
SQLite: WAL mode, a 30 s busy timeout, and every write in ``BEGIN IMMEDIATE`` (retried while the database is
busy), so writers queue instead of failing with "database is locked". PostgreSQL (postgres.py): every write
transaction takes one advisory lock first, the same one-writer-at-a-time order on every machine.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import psycopg

from . import postgres

BUSY_TIMEOUT_S = 30.0

_P = ParamSpec("_P")
_T = TypeVar("_T")

_PRAGMAS = (
    f"busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}",
    "foreign_keys = ON",
    "synchronous = NORMAL",  # WAL + NORMAL: a killed process loses nothing committed
    "journal_size_limit = 67108864",  # truncate a large WAL back to 64 MiB after checkpoints
    "cache_size = -32768",  # 32 MiB per connection
    "temp_store = MEMORY",
)


class HistoryError(Exception):
    """The history database could not do what was asked (locked past every retry, read-only, full disk, corrupt).

    Raised by HistoryStore's public methods in place of ``sqlite3.Error`` or ``psycopg.Error`` (kept as
    ``__cause__``), so no code outside this package needs to know which database the store uses. The message is
    the database's own ("database or disk is full", "attempt to write a readonly database", "connection
    failed: ... Connection refused"): callers show it as the reason a record was not saved.
    """


DB_ERRORS = (sqlite3.Error, psycopg.Error)


def guarded(fn: Callable[_P, _T]) -> Callable[_P, _T]:
    """A public store method: a database error leaves it as HistoryError (nested guarded calls pass it on)."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return fn(*args, **kwargs)
        except DB_ERRORS as e:
            raise HistoryError(" ".join(str(e).split()) or type(e).__name__) from e

    return wrapper


def is_busy(e: sqlite3.OperationalError) -> bool:
    msg = str(e).lower()
    return "locked" in msg or "busy" in msg


def retry_busy(step: Callable[[], _T], pause: float = 0.05) -> _T:
    """Run ``step`` until the database is not busy, for up to twice the busy timeout.

    busy_timeout already waits inside SQLite; this covers what it does not: busy errors returned without calling
    the busy handler (e.g. during WAL recovery by another process), and statements that need a moment of
    exclusive access (switching to WAL, VACUUM).
    """
    deadline = time.monotonic() + 2 * BUSY_TIMEOUT_S
    while True:
        try:
            return step()
        except sqlite3.OperationalError as e:
            if not is_busy(e) or time.monotonic() > deadline:
                raise
            time.sleep(pause)


def connect(db_path: Path) -> sqlite3.Connection:
    # Autocommit mode (isolation_level None): every transaction is explicit, see write() and read().
    conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    for pragma in _PRAGMAS:
        conn.execute("PRAGMA " + pragma)
    return conn


@contextmanager
def write(conn: Any) -> Iterator[Any]:
    """A write transaction, taken at once (BEGIN IMMEDIATE) so it never fails half-way on a lock upgrade.
    PostgreSQL: the write lock, taken at once too (held until commit)."""
    if postgres.is_pg(conn):
        conn.execute("BEGIN")
        conn.execute("SELECT pg_advisory_xact_lock(?)", (postgres.WRITE_LOCK,))
    else:
        retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"))
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def read(conn: Any) -> Iterator[Any]:
    """A read transaction, so multi-statement reads see one snapshot."""
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ" if postgres.is_pg(conn) else "BEGIN")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


# Connections a forked child inherited: kept referenced, never closed or collected, since closing one (SQLite:
# a checkpoint; PostgreSQL: a goodbye on the shared socket) would break the parent's.
_INHERITED: list[Any] = []


class Connections:
    """One connection per thread to one database (a SQLite file, or a PostgreSQL URL); safe across fork (a child
    opens its own)."""

    def __init__(self, db: Path | str) -> None:
        self.db = db
        self._local = threading.local()
        self._conns: list[tuple[threading.Thread, Any]] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.closed = False

    def get(self) -> Any:
        """This thread's connection, opened on first use."""
        if self.closed:
            raise RuntimeError("HistoryStore is closed")
        if os.getpid() != self._pid:
            # Forked child: the parent's connections must not be used or closed here (closing could
            # checkpoint or delete the parent's WAL); forget them and open fresh ones.
            self._pid = os.getpid()
            _INHERITED.extend(c for _, c in self._conns)
            self._local = threading.local()
            self._conns = []
            self._lock = threading.Lock()
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(conn, "broken", False):  # PostgreSQL lost it: the next call reconnects
            self._drop(conn)
            conn = None
        if conn is None:
            conn = postgres.connect(self.db) if isinstance(self.db, str) else connect(self.db)
            self._local.conn = conn
            with self._lock:
                alive = []
                for thread, c in self._conns:
                    if thread.is_alive():
                        alive.append((thread, c))
                    else:
                        c.close()  # its thread has ended, nothing else uses it
                alive.append((threading.current_thread(), conn))
                self._conns = alive
        return conn

    def _drop(self, conn: Any) -> None:
        with self._lock:
            self._conns = [(t, c) for t, c in self._conns if c is not conn]
        try:
            conn.close()
        except DB_ERRORS:
            pass

    def close(self) -> None:
        with self._lock:
            if os.getpid() == self._pid:
                for _, c in self._conns:
                    c.close()
            self._conns = []
            self._local = threading.local()
            self.closed = True
