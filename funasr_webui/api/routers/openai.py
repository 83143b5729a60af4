"""POST /v1/audio/transcriptions: OpenAI's transcription API, so the openai client works unchanged."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from ...engine import ENGINE_NAMES, parse_hotwords
from ...service import Outcome
from ..dependencies import ClientDep, QueueDep, ServiceDep, only_params, require_api_auth
from ..errors import ERROR_RESPONSES
from ..options import OpenAIOptions, multipart_body
from ..responses import TRANSCRIPT_CONTENT, text_response
from ..transcribe import transcribe_upload

router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Depends(require_api_auth)], responses=ERROR_RESPONSES)


def openai_json(outcome: Outcome, model: str, verbose: bool) -> dict[str, Any]:
    t = outcome.transcript
    body: dict[str, Any] = {"text": t.text}
    if verbose:
        segments = [
            {
                "id": i,
                "seek": 0,
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": 0.0,
                "compression_ratio": 0.0,
                "no_speech_prob": 0.0,
            }
            for i, s in enumerate(t.segments)
        ]
        body = {"task": "transcribe", "language": t.language, "duration": t.duration, **body, "segments": segments}
    body["usage"] = {"type": "duration", "seconds": math.ceil(t.duration)}
    body["model"] = model
    body["id"] = outcome.record_id  # this server's history id
    return body


@router.post(
    "/audio/transcriptions",
    summary="OpenAI-compatible transcription (the openai client works unchanged)",
    openapi_extra=multipart_body(OpenAIOptions),
    responses=TRANSCRIPT_CONTENT,
    dependencies=[only_params()],
)
async def openai_transcription(request: Request, service: ServiceDep, queue: QueueDep, client: ClientDep) -> Response:
    def options_of(form: OpenAIOptions):
        words = list(form.keywords or [])
        if form.prompt:  # OpenAI's prompt biases the vocabulary: here it is the hotword list
            words += parse_hotwords(form.prompt, service.settings.max_hotwords)
        # `model` naming one of our engines chooses it (refused when not loaded); OpenAI's names run the default
        engine = form.model.strip().lower() if form.model.strip().lower() in ENGINE_NAMES else None
        return service.options(words or None, None, form.language, engine=engine)

    outcome, _upload, form = await transcribe_upload(request, service, queue, client, OpenAIOptions, options_of)
    if form.response_format in ("json", "verbose_json"):
        return JSONResponse(openai_json(outcome, form.model, form.response_format == "verbose_json"))
    return text_response(outcome.transcript, form.response_format, outcome.record_id)
