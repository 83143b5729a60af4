"""Temporary files and folders of this process, named with its pid, so that a later start removes what a
killed server left behind (uploads in flight, download folders) without touching another running server's."""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from .history.ownership import pid_alive

log = logging.getLogger(__name__)

PREFIX = "funasr-webui-"
_OWNED = re.compile(rf"^{re.escape(PREFIX)}[a-z]+-(\d+)-")


def prefix(kind: str) -> str:
    """Name prefix for this process's temporary `kind` ("upload", "page", ...)."""
    return f"{PREFIX}{kind}-{os.getpid()}-"


def sweep_orphans(folder: Path | None = None) -> int:
    """Remove temporary files and folders whose owning process is gone; returns how many."""
    folder = Path(folder or tempfile.gettempdir())
    removed = 0
    try:
        entries = list(folder.iterdir())
    except OSError:
        return 0
    for entry in entries:
        m = _OWNED.match(entry.name)
        if not m or pid_alive(int(m.group(1))):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
        except OSError as e:
            log.warning("could not remove %s left by a stopped server: %s", entry, e)
    if removed:
        log.info("removed %d temporary file(s) left by a stopped server", removed)
    return removed
