"""Exports of records (JSON, CSV, a zip of transcripts), and the transcript zip the batch page offers too."""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from ..helpers import safe_file_name
from ..transcript import Transcript
from ..writers import FORMATS, DocumentInfo, render_bytes
from .models import Record

EXPORT_FORMATS = ("json", "csv", "zip-srt", "zip-txt", "zip-vtt", "zip-json", "zip-md", "zip-docx")

_CSV_COLUMNS = (
    "id",
    "created_at",
    "status",
    "error",
    "error_code",
    "source",
    "name",
    "audio_hash",
    "duration",
    "engine",
    "model",
    "device",
    "language",
    "hotwords",
    "itn",
    "elapsed",
    "rtf",
    "audio_file",
    "text",
    "raw_text",
    "segments",
    "speakers",
)

# What makes a spreadsheet read a cell as a formula or a command (DDE), in ASCII and fullwidth forms.
_FORMULA_STARTS = frozenset("=+-@|\uff1d\uff0b\uff0d\uff20")


def _csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe. Spreadsheets skip leading
    whitespace (a no-break space too) before they look, so the check does as well."""
    if value is None:
        return ""
    if isinstance(value, str) and (value[:1] in ("\t", "\r") or value.lstrip()[:1] in _FORMULA_STARTS):
        return "'" + value
    return value


def _zip_stem(name: str, limit: int = 60) -> str:
    """A file-name-safe stem of a user-supplied name (for zip entry names only)."""
    return Path(safe_file_name(name, limit=limit)).stem or "record"


def export_json(records: Iterable[Record]) -> bytes:
    """A JSON array of records, one per line, in the order given."""
    out = io.StringIO()
    out.write("[")
    for n, rec in enumerate(records):
        out.write(",\n" if n else "\n")
        out.write(json.dumps(rec.to_dict(), ensure_ascii=False))
    out.write("\n]\n")
    return out.getvalue().encode("utf-8")


def export_csv(records: Iterable[Record]) -> bytes:
    """CSV with a header row, UTF-8 with BOM so spreadsheet programs read Chinese correctly."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_CSV_COLUMNS)
    for rec in records:
        d = rec.to_dict()
        d["hotwords"] = " ".join(rec.hotwords)
        d["itn"] = int(rec.itn)
        d["segments"] = json.dumps(d["segments"], ensure_ascii=False)
        d["speakers"] = "; ".join(f"{s['label']}={s['name']}" for s in d["speakers"])
        writer.writerow([_csv_cell(d[c]) for c in _CSV_COLUMNS])
    return out.getvalue().encode("utf-8-sig")


def write_transcripts_zip(
    target: str | os.PathLike[str] | BinaryIO,
    transcripts: Iterable[tuple[str, Transcript] | tuple[str, Transcript, DocumentInfo]],
    fmt: str,
    extra: Iterable[tuple[str, str]] = (),
) -> None:
    """Write a zip of one ``<stem>.<fmt>`` file per ``(stem, transcript)`` or ``(stem, transcript, info)`` (the
    title and date a document shows; default: the stem, now), then the ``extra`` (name, text) files.

    A stem seen before gets ``-2``, ``-3``, ... so that two uploads with the same name keep both results.
    Stems must already be safe file names.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    used: set[str] = set()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for item in transcripts:
            stem, transcript = item[0], item[1]
            info = item[2] if len(item) > 2 else DocumentInfo(title=stem)
            entry, n = f"{stem}.{fmt}", 1
            while entry in used:
                n += 1
                entry = f"{stem}-{n}.{fmt}"
            used.add(entry)
            zf.writestr(entry, render_bytes(transcript, fmt, info))
        for name, text in extra:
            zf.writestr(name, text)


def export_zip(records: Iterable[Record], fmt: str = "srt") -> bytes:
    """A zip with one ``<id>_<name>.<fmt>`` file per successful record."""
    done = (
        (
            f"{rec.id:06d}_{_zip_stem(rec.title)}",
            rec.transcript(),
            DocumentInfo(rec.title, rec.created_at.astimezone()),
        )
        for rec in records
        if rec.status == "done"
    )
    buf = io.BytesIO()
    write_transcripts_zip(buf, done, fmt)
    return buf.getvalue()


def export_records(fmt: str, records: Iterable[Record]) -> bytes:
    """Export by format name: json, csv, zip-srt, zip-txt, zip-vtt, zip-json, zip-md, zip-docx."""
    if fmt == "json":
        return export_json(records)
    if fmt == "csv":
        return export_csv(records)
    if fmt.startswith("zip-"):
        return export_zip(records, fmt[4:])
    raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
