"""/api/v1/history: search, export, read and delete saved transcripts (through the service only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from ...errors import UserError
from ...helpers import parse_date_or_datetime
from ...history import EXPORT_FORMATS
from ...service import TranscriptionService
from ...writers import DocumentInfo
from ..dependencies import ServiceDep, only_params, require_api_auth
from ..errors import ERROR_RESPONSES
from ..responses import TRANSCRIPT_CONTENT, text_response

router = APIRouter(
    prefix="/api/v1", tags=["history"], dependencies=[Depends(require_api_auth)], responses=ERROR_RESPONSES
)

HISTORY_FILTERS = ("q", "date_from", "date_to", "engine", "source", "status", "speaker", "flagged", "rule")
EXPORT_MEDIA = {"json": "application/json", "csv": "text/csv; charset=utf-8"}


def _date(value: str | None, name: str) -> str | None:
    """Check a date filter here, so a bad one is a clear 422 (the history module parses it again)."""
    if not value:
        return None
    text = value.strip()
    try:
        parse_date_or_datetime(text)
    except ValueError:
        raise UserError("bad_date", name=name) from None
    return text


@dataclass
class HistoryFilters:
    q: Annotated[str, Query(max_length=256, description="words in the text (all must match)")] = ""
    date_from: Annotated[str | None, Query(description="ISO date or date-time, inclusive (naive = local)")] = None
    date_to: Annotated[str | None, Query(description="ISO date (whole day included) or date-time")] = None
    engine: Annotated[str | None, Query(description="paraformer or whisper")] = None
    source: Annotated[
        str | None, Query(description="api, microphone, websocket, or a file name (a record's name or source)")
    ] = None
    status: Annotated[
        Literal["done", "failed", "interrupted"] | None,
        Query(description="interrupted: cut short by a server stop (crash, kill, power cut) before it finished"),
    ] = None
    speaker: Annotated[
        str | None, Query(max_length=40, description="only records with a speaker of this given name (any case)")
    ] = None
    flagged: Annotated[bool, Query(description="only records a quality rule found something on")] = False
    rule: Annotated[str | None, Query(max_length=100, description="only records with a hit of this rule")] = None

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "date_from": _date(self.date_from, "date_from"),
            "date_to": _date(self.date_to, "date_to"),
            "engine": self.engine or None,
            "source": self.source or None,
            "status": self.status,
            "speaker": self.speaker or None,
            "flagged": self.flagged,
            "rule": self.rule or None,
        }


def _summary(record: Any) -> dict[str, Any]:
    d = record.to_dict()
    del d["segments"], d["raw_text"]  # a list stays light; GET /history/{id} has everything
    return d


@router.get(
    "/history",
    summary="Search the history, newest first",
    dependencies=[only_params(*HISTORY_FILTERS, "limit", "offset")],
)
def list_history(
    filters: Annotated[HistoryFilters, Depends()],
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    page = service.search(filters.q, **filters.as_kwargs(), limit=limit, offset=offset)
    hits = service.qa.hits(r.id for r in page.records)
    return {
        "items": [{**_summary(r), "flags": [h.to_dict() for h in hits.get(r.id, [])]} for r in page.records],
        "total": page.total,
        "total_exact": page.total_exact,
        "limit": page.limit,
        "offset": page.offset,
        "has_next": page.has_next,
    }


@router.get(
    "/history/export",
    summary="Export records (all matching the filters, or the given ids)",
    dependencies=[only_params(*HISTORY_FILTERS, "format", "ids")],
    response_class=Response,
)
def export_history(
    filters: Annotated[HistoryFilters, Depends()],
    service: ServiceDep,
    format: Literal[EXPORT_FORMATS] = "json",  # type: ignore[valid-type]
    ids: Annotated[str | None, Query(description="comma-separated record ids; default: all matching")] = None,
) -> Response:
    if ids:
        try:
            id_list = [int(i) for i in ids.split(",") if i.strip()]
        except ValueError:
            raise UserError("bad_ids") from None
    else:
        id_list = service.search_ids(filters.q, **filters.as_kwargs())
    content = service.export(format, id_list)
    ext = "zip" if format.startswith("zip-") else format
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Response(
        content,
        media_type=EXPORT_MEDIA.get(format, "application/zip"),
        headers={"Content-Disposition": f'attachment; filename="funasr-history-{stamp}.{ext}"'},
    )


def _record(service: TranscriptionService, record_id: int) -> Any:
    record = service.get(record_id)
    if record is None:
        raise UserError("record_not_found", id=record_id)
    return record


@router.get(
    "/history/{record_id}",
    summary="One record: JSON, or its text / subtitles",
    dependencies=[only_params("response_format")],
    responses=TRANSCRIPT_CONTENT,
)
def get_history(
    record_id: int,
    service: ServiceDep,
    response_format: Literal["json", "text", "srt", "vtt", "md", "docx"] = "json",
) -> Response:
    record = _record(service, record_id)
    if response_format == "json":
        flags = service.qa.hits([record.id]).get(record.id, [])
        return JSONResponse({**record.to_dict(), "flags": [h.to_dict() for h in flags]})
    info = DocumentInfo(title=record.title, created=record.created_at.astimezone())
    return text_response(record.transcript(), response_format, record.id, info)


class SpeakerNames(BaseModel):
    """Display names for a record's speakers, by label; "" gives a speaker its default name back."""

    model_config = ConfigDict(extra="forbid")

    names: dict[str, str] = Field(examples=[{"S1": "张经理", "S2": "李工"}])


@router.patch(
    "/history/{record_id}/speakers",
    summary="Rename a record's speakers (every output of it uses the names from then on)",
    dependencies=[only_params()],
)
def rename_speakers(record_id: int, body: SpeakerNames, service: ServiceDep) -> dict[str, Any]:
    record = service.rename_speakers(record_id, body.names)
    return {"id": record.id, "speakers": record.to_dict()["speakers"]}


@router.delete("/history/{record_id}", summary="Delete one record", dependencies=[only_params()])
def delete_history(record_id: int, service: ServiceDep) -> dict[str, Any]:
    _record(service, record_id)
    service.delete([record_id])
    return {"deleted": record_id}
