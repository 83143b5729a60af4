"""POST /api/v1/transcriptions: the native surface (options by this server's names, saved to the history)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from ...service import Outcome
from ...writers import DocumentInfo
from ..dependencies import ClientDep, QueueDep, ServiceDep, only_params, require_api_auth
from ..errors import ERROR_RESPONSES
from ..options import NativeOptions, multipart_body
from ..responses import TRANSCRIPT_CONTENT, text_response
from ..transcribe import transcribe_upload

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_api_auth)], responses=ERROR_RESPONSES)


def native_json(outcome: Outcome, name: str) -> dict[str, Any]:
    return {
        "id": outcome.record_id,
        "name": name,
        **outcome.transcript.to_dict(),
        "warning": outcome.save_error,
        "flags": [h.to_dict() for h in outcome.flags],  # what the quality rules found (empty: nothing, or no rules)
    }


@router.post(
    "/transcriptions",
    tags=["transcription"],
    summary="Transcribe one uploaded file (saved to the history)",
    openapi_extra=multipart_body(NativeOptions),
    responses=TRANSCRIPT_CONTENT,
    dependencies=[only_params()],
)
async def create_transcription(request: Request, service: ServiceDep, queue: QueueDep, client: ClientDep) -> Response:
    def options_of(form: NativeOptions):
        return service.options(form.hotwords, form.itn, form.language, engine=form.engine, speakers=form.speakers)

    outcome, upload, form = await transcribe_upload(request, service, queue, client, NativeOptions, options_of)
    if form.response_format == "json":
        return JSONResponse(native_json(outcome, upload.name))
    info = DocumentInfo(title=upload.name)
    return text_response(outcome.transcript, form.response_format, outcome.record_id, info)
