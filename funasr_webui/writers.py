"""Output writers: one small class per format (TXT, SRT, VTT, JSON)."""

from __future__ import annotations

import json

from .transcript import Transcript


def format_timestamp(seconds: float, decimal: str = ".", always_hours: bool = True) -> str:
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    head = f"{hours:02d}:" if always_hours or hours else ""
    return f"{head}{minutes:02d}:{secs:02d}{decimal}{ms:03d}"


class Writer:
    extension = ""
    media_type = "text/plain"

    def render(self, transcript: Transcript) -> str:
        raise NotImplementedError


class TxtWriter(Writer):
    extension = "txt"

    def render(self, transcript: Transcript) -> str:
        return transcript.text + "\n"


class SrtWriter(Writer):
    extension = "srt"
    media_type = "application/x-subrip"

    def render(self, transcript: Transcript) -> str:
        blocks = []
        for i, seg in enumerate(transcript.segments, start=1):
            span = f"{format_timestamp(seg.start, ',')} --> {format_timestamp(seg.end, ',')}"
            blocks.append(f"{i}\n{span}\n{seg.text.strip()}\n")
        return "\n".join(blocks)


class VttWriter(Writer):
    extension = "vtt"
    media_type = "text/vtt"

    def render(self, transcript: Transcript) -> str:
        cues = [
            f"{format_timestamp(s.start)} --> {format_timestamp(s.end)}\n{s.text.strip()}\n"
            for s in transcript.segments
        ]
        return "WEBVTT\n\n" + "\n".join(cues)


class JsonWriter(Writer):
    extension = "json"
    media_type = "application/json"

    def render(self, transcript: Transcript) -> str:
        return json.dumps(transcript.to_dict(), ensure_ascii=False, indent=2)


WRITERS: dict[str, Writer] = {w.extension: w for w in (TxtWriter(), SrtWriter(), VttWriter(), JsonWriter())}
FORMATS = tuple(WRITERS)


def render(transcript: Transcript, fmt: str) -> str:
    try:
        return WRITERS[fmt].render(transcript)
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}") from None
