"""Keys that find an earlier result: the audio's content hash and the key of the settings that change a result."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from typing import BinaryIO

from ..helpers import printable
from ..transcript import Transcript


def audio_hash(path_or_bytes: str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO) -> str:
    """SHA-256 hex digest of the audio content; files are streamed in 1 MiB blocks."""
    h = hashlib.sha256()
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        h.update(path_or_bytes)
    elif hasattr(path_or_bytes, "read"):
        for block in iter(lambda: path_or_bytes.read(1 << 20), b""):  # type: ignore[union-attr]
            h.update(block)
    else:
        with open(path_or_bytes, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def hotword_list(hotwords: str | Iterable[str] | None) -> list[str]:
    """Hotwords as a clean list; a single string is split on whitespace (FunASR's own convention)."""
    if not hotwords:
        return []
    items = hotwords.split() if isinstance(hotwords, str) else hotwords
    return [printable(str(w)).strip() for w in items if str(w).strip()]


def settings_key(
    engine: str,
    model: str,
    hotwords: str | Iterable[str] | None,
    itn: bool,
    language: str,
    speakers: int | None = None,
) -> str:
    """Stable key of the settings that change a result. Hotword order and the device do not count. `speakers`
    (0 = auto, N) counts only when asked for, so keys made before it existed still match."""
    canon = [
        (engine or "").strip(),
        (model or "").strip(),
        sorted(set(hotword_list(hotwords))),
        bool(itn),
        (language or "").strip().lower(),
    ]
    if speakers is not None:
        canon.append({"speakers": int(speakers)})
    blob = json.dumps(canon, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def key_of(t: Transcript) -> str:
    """The settings key of the settings a transcript itself reports."""
    return settings_key(t.engine, t.model, t.hotwords, t.itn, t.language)
