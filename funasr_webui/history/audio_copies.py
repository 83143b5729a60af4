"""Kept copies of the audio (``keep_audio``): one file per record in the store's audio folder, named by id only,
so the user's file name never becomes part of a path."""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

_SUFFIX_RE = re.compile(r"\.[a-z0-9]{1,8}")


def copy_path(audio_dir: Path, name: str | None) -> Path | None:
    """The copy a record names, always inside ``audio_dir``; None when it has none."""
    return audio_dir / Path(name).name if name else None


def keep(audio_dir: Path, rid: int, src: Path) -> str | None:
    """Copy ``src`` for record ``rid``; returns the copy's name, or None when it could not be written."""
    suffix = src.suffix.lower()
    name = f"{rid}{suffix if _SUFFIX_RE.fullmatch(suffix) else '.bin'}"
    tmp = audio_dir / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        audio_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, tmp)
        os.replace(tmp, audio_dir / name)
    except OSError as e:  # the transcript is saved; only the playback copy is missing
        log.warning("could not keep a copy of the audio for record %d: %s", rid, e)
        tmp.unlink(missing_ok=True)
        return None
    return name


def remove(audio_dir: Path, names: Iterable[str]) -> None:
    for name in names:
        path = copy_path(audio_dir, name)
        if path is not None:
            try:
                path.unlink(missing_ok=True)
            except OSError as e:
                log.warning("could not delete %s: %s", path, e)


def total_bytes(audio_dir: Path) -> int:
    if not audio_dir.is_dir():
        return 0
    return sum(p.stat().st_size for p in audio_dir.iterdir() if p.is_file())
