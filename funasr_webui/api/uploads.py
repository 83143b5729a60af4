"""Uploads: the multipart form streamed straight into a temp file while its size is counted.

A request body is never held in memory, and an oversized one is refused as soon as it passes the limit (or at
once, when its Content-Length says so). The file's name is kept for display only; it never becomes a path.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect, Request

from .. import tempfiles
from ..errors import UserError
from ..helpers import base_name

FORM_OVERHEAD = 1 << 20  # Content-Length allowance on top of the file: boundaries and option fields
MAX_FIELD_BYTES = 64 * 1024  # one option value (100 hotwords of 50 characters fit easily)
MAX_FIELDS = 32
MAX_NAME_CHARS = 200


def display_name(raw: str) -> str:
    """The uploaded file's name for display only: basename, printable characters, bounded length."""
    base = base_name(raw)
    base = "".join(c for c in base if c.isprintable()).strip()
    if not base.strip("."):
        return "upload"
    if len(base) > MAX_NAME_CHARS:
        stem, dot, ext = base.rpartition(".")
        base = stem[: MAX_NAME_CHARS - 10] + dot + ext[:8] if dot and len(ext) <= 8 else base[:MAX_NAME_CHARS]
    return base


def _temp_suffix(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def too_big(size: int | None, limit: int) -> UserError:
    return UserError("upload_too_big", size=size, max_bytes=limit)


@dataclass
class Upload:
    path: Path  # the temp file holding the audio
    name: str  # display name (never a path)
    size: int
    fields: dict[str, list[str]] = field(default_factory=dict)


class FormReader:
    """Streaming multipart/form-data parser: one `file` part goes to a temp file, the rest are small fields."""

    def __init__(self, boundary: bytes, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.fields: dict[str, list[str]] = {}
        self.path: Path | None = None
        self.name = ""
        self.size = 0
        self.file_done = False
        self.ended = False
        self._file: BinaryIO | None = None
        self._in_file = False
        self._part = ""
        self._data = bytearray()
        self._header = [b"", b""]
        self._disposition = b""
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": lambda d, s, e: self._add_header(0, d[s:e]),
                "on_header_value": lambda d, s, e: self._add_header(1, d[s:e]),
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
        )

    def _on_part_begin(self) -> None:
        self._disposition, self._data, self._in_file = b"", bytearray(), False

    def _add_header(self, i: int, data: bytes) -> None:
        self._header[i] += data
        if len(self._header[i]) > 8192:
            raise UserError("form_header_too_long")

    def _on_header_end(self) -> None:
        if self._header[0].strip().lower() == b"content-disposition":
            self._disposition = self._header[1]
        self._header = [b"", b""]

    def _on_headers_finished(self) -> None:
        _, params = parse_options_header(self._disposition)
        if b"name" not in params:
            raise UserError("form_part_unnamed")
        self._part = _decode(params[b"name"])
        if b"filename" not in params:
            if sum(len(v) for v in self.fields.values()) >= MAX_FIELDS:
                raise UserError("form_too_many_fields")
            return
        if self._part != "file":
            raise UserError("unknown_file_field", name=self._part)
        if self.path is not None:
            raise UserError("form_two_files")
        self._in_file = True
        self.name = display_name(_decode(params[b"filename"]))
        # The user's name never becomes part of the path; only a plain extension is kept, to help the decoder.
        fd, path = tempfile.mkstemp(prefix=tempfiles.prefix("upload"), suffix=_temp_suffix(self.name))
        self.path = Path(path)
        self._file = os.fdopen(fd, "wb")

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.size += end - start
            if self.size > self.max_bytes:
                raise too_big(None, self.max_bytes)
            assert self._file is not None
            self._file.write(data[start:end])  # page-cache writes of <=64 KiB: not worth a thread hop
            return
        self._data += data[start:end]
        if len(self._data) > MAX_FIELD_BYTES:
            raise UserError("form_field_too_long", name=self._part)

    def _on_part_end(self) -> None:
        if self._in_file:
            assert self._file is not None
            self._file.close()
            self.file_done = True
        else:
            self.fields.setdefault(self._part, []).append(_decode(bytes(self._data)))

    def _on_end(self) -> None:
        self.ended = True

    def feed(self, chunk: bytes) -> None:
        try:
            self.parser.write(chunk)
        except FormParserError as e:
            raise UserError("form_malformed", detail=str(e)) from e

    def upload(self) -> Upload:
        if not self.ended:
            raise UserError("form_incomplete")
        if self.path is None or not self.file_done:
            raise UserError("missing_file")
        return Upload(self.path, self.name or "upload", self.size, self.fields)

    def cleanup(self) -> None:
        if self._file is not None:
            self._file.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _boundary(request: Request) -> bytes:
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise UserError("not_multipart")
    return params[b"boundary"]


@asynccontextmanager
async def receive_upload(request: Request, max_bytes: int) -> AsyncIterator[Upload]:
    """Stream the form into a temp file (removed on exit); refuse early on Content-Length when it is given."""
    boundary = _boundary(request)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes + FORM_OVERHEAD:
        raise too_big(int(length), max_bytes)
    try:
        reader = FormReader(boundary, max_bytes)
    except ValueError as e:  # e.g. a boundary over multipart's 256-character limit
        raise UserError("form_bad_header", detail=str(e)) from e
    try:
        try:
            async for chunk in request.stream():
                reader.feed(chunk)
        except ClientDisconnect as e:
            raise UserError("form_disconnected") from e
        yield reader.upload()
    finally:
        reader.cleanup()
