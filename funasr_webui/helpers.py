"""Small helpers several modules need, written once: durations, byte sizes, names, dates, hotwords, torch."""

from __future__ import annotations

import re
import sys
from datetime import date, datetime
from pathlib import Path


def format_duration(seconds: float | None, lang: str) -> str:
    """ "12.3 s" / "12.3 秒" under a minute, else m:ss or h:mm:ss; "—" when unknown."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} 秒" if lang == "zh" else f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_size(n: float) -> str:
    """A byte count for people: "3.0 MB", "1.5 GB", "256.0 KB", "500 bytes" (binary units)."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} bytes"


def base_name(path: str) -> str:
    """The last part of a path, Windows paths from browsers included; never a directory the server knows."""
    return str(path).replace("\\", "/").rsplit("/", 1)[-1]


def printable(text: str) -> str:
    """Text any terminal or database can take: lone surrogates (bytes of a non-UTF-8 file name smuggled in by
    surrogateescape) become U+FFFD, one per byte."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def safe_stem(name: str, fallback: str = "transcript", limit: int = 80) -> str:
    """A download file name from a user's file name, extension off: letters (CJK too), digits, - and _ only."""
    stem = Path(str(name).replace("\\", "/")).stem
    stem = re.sub(r"[^\w\-]+", "_", stem).strip("._-")
    return stem[:limit] or fallback


def safe_file_name(name: str, fallback: str = "record", limit: int = 60) -> str:
    """A file name safe inside a zip from a user's file name, extension kept: letters, digits, . - and _ only."""
    base = re.sub(r"[^\w.\-]+", "_", base_name(name)).strip("._")
    return base[:limit] or fallback


def parse_datetime(text: str) -> datetime:
    """datetime.fromisoformat that also takes a trailing "Z" (Python 3.10 does not)."""
    return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)


def parse_date_or_datetime(text: str) -> date | datetime:
    """An ISO date ("2024-05-01") or date-time ("2024-05-01T08:00:00+08:00", "...Z"); ValueError otherwise."""
    text = text.strip()
    return date.fromisoformat(text) if len(text) == 10 else parse_datetime(text)


def split_hotwords(text: str | list[str] | None) -> list[str]:
    """Hotwords from a text box (one per line) or a CLI/API string (spaces or commas), duplicates dropped."""
    if not text:
        return []
    if isinstance(text, list):
        items = text
    else:
        text = text.replace("，", ",").replace(",", "\n")
        # one per line keeps multi-word English terms whole; a single line is split on spaces
        items = text.splitlines() if "\n" in text.strip() else text.split()
    return list(dict.fromkeys(w.strip() for w in items if w.strip()))


def loaded_torch():
    """The torch module when something already imported it in full, else None (never imports it: ~2 s). A
    thread still importing it (the speaker model's warm-up) leaves a half-built module in sys.modules."""
    torch = sys.modules.get("torch")
    if torch is None or getattr(getattr(torch, "__spec__", None), "_initializing", False):
        return None
    return torch
