"""What the history hands out (Record, Page, Interrupted), and how text and times are stored."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..helpers import parse_datetime
from ..speakers import speaker_list
from ..transcript import Segment, Transcript, segment_dict

STATUSES = ("done", "failed", "interrupted")
INTERRUPTED_ERROR = "interrupted: the server stopped before this transcription finished"
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def ts(dt: datetime) -> str:
    """A datetime as stored: UTC text that sorts like the instant it names."""
    return dt.astimezone(timezone.utc).strftime(TS_FORMAT)


def parse_ts(s: str) -> datetime:
    """A stored time as an aware UTC datetime."""
    dt = parse_datetime(s)
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


@dataclass
class Record:
    """One stored transcription. ``created_at`` is an aware UTC datetime."""

    id: int
    created_at: datetime
    source: str
    audio_hash: str
    duration: float
    engine: str
    model: str
    device: str
    language: str
    hotwords: list[str]
    itn: bool
    text: str
    raw_text: str
    segments: list[Segment]
    elapsed: float
    rtf: float
    status: str  # "done", "failed" or "interrupted" (its process stopped before it finished)
    error: str
    audio_file: Path | None  # kept copy of the audio, or None
    settings_key: str
    # What failed, as a machine-readable code (e.g. "too_long", "engine_error") the page can show in the reader's
    # language; None for a record without one (done, interrupted, or failed before schema version 4).
    error_code: str | None = None
    speaker_names: dict[str, str] = field(default_factory=dict)  # label -> the name a user gave ("S1" -> "张经理")
    # What the user calls the audio (an upload's file name, a FunASR client's wav_name); '' before schema version 7.
    name: str = ""

    @property
    def title(self) -> str:
        """The name to show: the record's name, or its source for records saved without one."""
        return self.name or self.source

    def transcript(self) -> Transcript:
        return Transcript(
            text=self.text,
            raw_text=self.raw_text,
            segments=[replace(s) for s in self.segments],
            language=self.language,
            duration=self.duration,
            engine=self.engine,
            model=self.model,
            device=self.device,
            elapsed=self.elapsed,
            hotwords=list(self.hotwords),
            itn=self.itn,
            speaker_names=dict(self.speaker_names),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; the audio copy appears by file name only (no local paths in exports)."""
        return {
            "id": self.id,
            "created_at": self.created_at.strftime(TS_FORMAT),
            "status": self.status,
            "error": self.error,
            "error_code": self.error_code,
            "source": self.source,
            "name": self.title,
            "audio_hash": self.audio_hash,
            "duration": self.duration,
            "engine": self.engine,
            "model": self.model,
            "device": self.device,
            "language": self.language,
            "hotwords": list(self.hotwords),
            "itn": self.itn,
            "elapsed": self.elapsed,
            "rtf": self.rtf,
            "settings_key": self.settings_key,
            "audio_file": self.audio_file.name if self.audio_file else None,
            "text": self.text,
            "raw_text": self.raw_text,
            "segments": [segment_dict(s) for s in self.segments],
            "speakers": speaker_list(self.transcript()),
        }


@dataclass
class Interrupted:
    """A transcription a stopped process left unfinished, found when the store opened; now an 'interrupted' record."""

    record_id: int
    source: str
    name: str  # the file's own name: for an API upload (source "api") the name it was uploaded with


@dataclass
class Page:
    """One page of search results, newest first.

    ``total`` is exact when ``total_exact``; otherwise at least that many records match (counting
    stops at COUNT_CAP, or just past the current page, so broad queries stay fast at 1M rows).
    """

    records: list[Record]
    total: int
    limit: int
    offset: int
    total_exact: bool = True

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.records) < self.total
