"""Connections to a PostgreSQL history database (psycopg 3), shaped like the SQLite connections the rest of the
package uses, so one SQL text serves both where the two dialects agree.

``PgConnection.execute`` takes the SQLite form of a statement (``?`` placeholders) and sends it with ``%s`` ones;
a ``%`` in the SQL text is a literal percent sign, as in SQLite. Text values lose any NUL character (PostgreSQL's
text type cannot hold one; it becomes U+FFFD). Connections are in autocommit mode: every transaction is explicit
(see connection.write and connection.read), as on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import pq

CONNECT_TIMEOUT_S = 10
# Advisory lock keys (any 64-bit numbers, fixed for this program): one writer at a time, as SQLite's BEGIN
# IMMEDIATE gives (ids, created_at order and rule names stay consistent across machines), and the migrations.
WRITE_LOCK = 0x66756E6173720001
SCHEMA_LOCK = 0x66756E6173720002


def _param(value: Any) -> Any:
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def _params(params: Sequence[Any] | None) -> tuple:
    return tuple(_param(v) for v in params or ())


def _sql(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class PgConnection:
    """One psycopg connection with the small part of sqlite3.Connection's interface the store uses."""

    dialect = "postgres"

    def __init__(self, raw: psycopg.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> psycopg.Cursor:
        cur = self.raw.cursor()
        cur.execute(_sql(sql), _params(params))
        return cur

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = [_params(r) for r in rows]
        if rows:
            with self.raw.cursor() as cur:
                cur.executemany(_sql(sql), rows)

    def copy(self, target: str, rows: Iterable[Sequence[Any]]) -> None:
        """COPY ``rows`` into ``target`` ("table (col, ...)"): the bulk path, far faster than INSERTs."""
        with self.raw.cursor() as cur, cur.copy(f"COPY {target} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(_params(row))

    @property
    def broken(self) -> bool:
        """The server went away (restarted, failed over, network cut): this connection is done, open another."""
        return self.raw.broken or self.raw.closed

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != pq.TransactionStatus.IDLE

    def close(self) -> None:
        self.raw.close()


def connect(url: str) -> PgConnection:
    """A connection in autocommit mode; psycopg.OperationalError (e.g. connection refused) when the server cannot
    be reached within CONNECT_TIMEOUT_S."""
    raw = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, application_name="funasr-webui")
    return PgConnection(raw)


def is_pg(conn: object) -> bool:
    return getattr(conn, "dialect", "") == "postgres"
