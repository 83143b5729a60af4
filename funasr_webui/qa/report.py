"""The QA report: one row per hit with the call's file, time, rule, phrase and sentence, as CSV, XLSX or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from ..helpers import parse_datetime
from .rules import Located

REPORT_FORMATS = ("csv", "xlsx", "json")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}
COLUMNS = ("id", "name", "created_at", "rule", "kind", "phrase", "start", "end", "speaker", "text")


def _local(created_at: str) -> str:
    """The call's time in the server's local time, as a reader of a spreadsheet expects."""
    return parse_datetime(created_at).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _row(item: Located) -> list:
    h = item.hit
    return [item.record_id, item.name, _local(item.created_at), h.rule, h.kind, h.phrase, h.start, h.end,
            h.speaker, h.text]  # fmt: skip


def _safe_cell(value: object) -> object:
    """Text that a spreadsheet would run as a formula (=, +, -, @ first) is written as text (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(items: Sequence[Located]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(COLUMNS)
    for item in items:
        w.writerow(["" if v is None else _safe_cell(v) for v in _row(item)])
    return buf.getvalue().encode("utf-8-sig")  # the BOM makes Excel read UTF-8 Chinese correctly


def to_xlsx(items: Sequence[Located]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("hits")
    ws.append(list(COLUMNS))
    for item in items:
        ws.append([_safe_cell(v) for v in _row(item)])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def to_json(items: Sequence[Located]) -> bytes:
    return json.dumps([i.to_dict() for i in items], ensure_ascii=False, indent=2).encode("utf-8")


def render_report(items: Sequence[Located], fmt: str) -> bytes:
    writers = {"csv": to_csv, "xlsx": to_xlsx, "json": to_json}
    if fmt not in writers:
        raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(REPORT_FORMATS)}")
    return writers[fmt](items)


def json_with_flags(json_text: str, flags: Sequence) -> str:
    """A transcript's JSON (writers.JsonWriter) with what the quality rules found, as the API answers it."""
    data = json.loads(json_text)
    data["flags"] = [h.to_dict() for h in flags]
    return json.dumps(data, ensure_ascii=False, indent=2)
