"""Which database a ``--db`` value names: a SQLite file (a path, the default) or a PostgreSQL server (a URL)."""

from __future__ import annotations

import os
import re
from pathlib import Path

_PG_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(db: object) -> bool:
    """Whether ``db`` is a PostgreSQL URL (``postgresql://user@host[:port]/db``) rather than a SQLite file."""
    return isinstance(db, str) and db.strip().lower().startswith(_PG_SCHEMES)


def db_target(value: str | os.PathLike[str]) -> Path | str:
    """A ``--db`` value as the store takes it: the URL as given, or a file path. (``Path`` would fold a URL's
    ``//`` to ``/``, so a URL must never become one.)"""
    if isinstance(value, str) and is_postgres_url(value):
        return value.strip()
    return Path(value)


def without_password(url: str) -> str:
    """A URL fit for logs and the System tab: a password in it becomes ``***``."""
    return re.sub(r"^([a-z]+://[^:@/]*):[^@/]*@", r"\1:***@", url, flags=re.I)
