"""Answers shared by the routers: a transcript as text or subtitles, and how OpenAPI describes it."""

from __future__ import annotations

from fastapi.responses import PlainTextResponse

from ..transcript import Transcript
from ..writers import WRITERS, render

TRANSCRIPT_CONTENT = {
    200: {
        "description": "the transcript (JSON), or the text / subtitles for text, srt, vtt",
        "content": {"text/plain": {}, "application/x-subrip": {}, "text/vtt": {}},
    }
}


def text_response(transcript: Transcript, fmt: str, record_id: int | None) -> PlainTextResponse:
    fmt = "txt" if fmt == "text" else fmt
    media_type = WRITERS[fmt].media_type
    if not media_type.startswith("text/"):
        media_type += "; charset=utf-8"
    headers = {"X-Record-Id": str(record_id)} if record_id is not None else None
    return PlainTextResponse(render(transcript, fmt), media_type=media_type, headers=headers)
