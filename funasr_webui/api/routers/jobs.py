"""/api/v1/jobs: submit a file to the work queue (server started with --queue) and follow its job.

``POST /api/v1/jobs`` answers at once (202) with the job: a worker on any machine transcribes it and saves the
record; ``GET /api/v1/jobs/{id}`` says where it is (queued, running, done, failed) and, once ended, its
``record_id`` (``GET /api/v1/history/{record_id}`` reads the transcript). The same file with the same options
is one job: submitting it again returns that job (a done one with its record at once).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ...errors import UserError
from ..dependencies import ServiceDep, only_params, require_api_auth
from ..errors import ERROR_RESPONSES
from ..options import multipart_body, parse_options
from ..uploads import receive_upload

router = APIRouter(prefix="/api/v1", tags=["jobs"], dependencies=[Depends(require_api_auth)], responses=ERROR_RESPONSES)


class JobOptions(BaseModel):
    """Form fields of POST /api/v1/jobs (besides `file`): those of POST /api/v1/transcriptions but the format."""

    model_config = ConfigDict(extra="forbid")

    hotwords: str | None = Field(None, description="space- or comma-separated words, or one per line")
    itn: bool | None = Field(None, description="inverse text normalization (numbers as digits); server default")
    language: str | None = Field(None, description="language code for engines that detect it; default auto")
    engine: Literal["auto", "paraformer", "fun-asr-nano", "fun-asr-mlt-nano", "sensevoice", "whisper"] | None = Field(
        None, description="only workers that loaded this engine take the job; absent or auto = any worker's default"
    )
    speakers: str | None = Field(
        None, description='who spoke: "auto" (find how many) or the number of voices, 1-10; absent = off'
    )


@router.post(
    "/jobs",
    summary="Queue one uploaded file for the workers (server started with --queue)",
    status_code=202,
    openapi_extra=multipart_body(JobOptions),
    dependencies=[only_params()],
)
async def create_job(request: Request, service: ServiceDep) -> JSONResponse:
    if service.work_queue is None:  # before the body is read: a server without a queue refuses at once
        raise UserError("queue_not_configured")
    async with receive_upload(request, service.settings.max_upload_bytes) as upload:
        form = parse_options(JobOptions, upload.fields)
        options = service.options(form.hotwords, form.itn, form.language, engine=form.engine, speakers=form.speakers)
        submitted = await run_in_threadpool(
            service.enqueue_upload,
            upload.path,
            name=upload.name,
            source="api",  # as POST /api/v1/transcriptions saves its records
            options=options,
            asked_engine=form.engine,
        )
    body = {**submitted.job.to_dict(), "new": submitted.new}
    return JSONResponse(body, status_code=202, headers={"Location": f"/api/v1/jobs/{submitted.job.id}"})


@router.get("/jobs/{job_id}", summary="A queued job: its state and, once it has ended, its record's id")
def get_job(job_id: int, service: ServiceDep) -> JSONResponse:
    job = service.queued_jobs([job_id]).get(job_id)
    if job is None:
        raise UserError("job_not_found", id=job_id)
    return JSONResponse(job.to_dict())
