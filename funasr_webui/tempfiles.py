"""Temporary files and folders of this process, named with its pid, so that a later start removes what a
killed server left behind (uploads in flight, download folders) without touching another running server's."""

from __future__ import annotations

import atexit
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


def gradio_cache() -> Path:
    """Gradio's upload and output cache: a private (0700) folder of this process, removed when it exits (and by
    the next start's sweep if it was killed). Set before the page is built: Gradio reads GRADIO_TEMP_DIR then.
    A folder the user chose (GRADIO_TEMP_DIR already set) is theirs and left alone."""
    chosen = os.environ.get("GRADIO_TEMP_DIR")
    if chosen:
        return Path(chosen)
    path = Path(tempfile.mkdtemp(prefix=prefix("gradio")))  # mkdtemp: mode 0700
    os.environ["GRADIO_TEMP_DIR"] = str(path)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


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
