"""Answers shared by the routers: a transcript as text, subtitles or a document, and how OpenAPI describes it."""

from __future__ import annotations

from urllib.parse import quote

from fastapi.responses import PlainTextResponse, Response

from ..helpers import safe_file_name
from ..transcript import Transcript
from ..writers import BINARY_FORMATS, WRITERS, DocumentInfo, render, render_bytes

TRANSCRIPT_CONTENT = {
    200: {
        "description": "the transcript (JSON), or the text / subtitles / document for text, srt, vtt, md, docx",
        "content": {
            "text/plain": {},
            "application/x-subrip": {},
            "text/vtt": {},
            "text/markdown": {},
            WRITERS["docx"].media_type: {},
        },
    }
}


def text_response(
    transcript: Transcript, fmt: str, record_id: int | None, info: DocumentInfo | None = None
) -> Response:
    """The transcript in `fmt` ("text" = txt); a DOCX comes as an attachment named after `info.title`."""
    fmt = "txt" if fmt == "text" else fmt
    media_type = WRITERS[fmt].media_type
    headers = {"X-Record-Id": str(record_id)} if record_id is not None else {}
    if fmt in BINARY_FORMATS:
        stem = safe_file_name(info.title if info and info.title else "transcript", limit=80).rsplit(".", 1)[0]
        headers["Content-Disposition"] = (
            f"attachment; filename=\"transcript.{fmt}\"; filename*=UTF-8''{quote(stem or 'transcript')}.{fmt}"
        )
        return Response(render_bytes(transcript, fmt, info), media_type=media_type, headers=headers)
    if not media_type.startswith("text/"):
        media_type += "; charset=utf-8"
    return PlainTextResponse(render(transcript, fmt, info), media_type=media_type, headers=headers or None)
