"""OpenAI's transcription API (POST /v1/audio/transcriptions, with word times and streaming; GET /v1/models), so
the openai client and the tools built on it work unchanged."""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from ...engine import ENGINE_NAMES, parse_hotwords
from ...errors import UserError
from ...service import Outcome, TranscriptionService
from ...transcript import Segment
from ..dependencies import ClientDep, QueueDep, ServiceDep, only_params, require_api_auth
from ..errors import ERROR_RESPONSES
from ..options import OpenAIOptions, multipart_body
from ..responses import TRANSCRIPT_CONTENT, text_response
from ..transcribe import transcribe_upload

router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Depends(require_api_auth)], responses=ERROR_RESPONSES)


def openai_json(outcome: Outcome, model: str, verbose: bool, words: bool = False) -> dict[str, Any]:
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
        timed = [{"word": w.word, "start": w.start, "end": w.end} for s in t.segments for w in s.words]
        if words and (timed or not t.text):  # no `words` at all when the engine gave none: never made-up times
            body["words"] = timed
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
        options = service.options(words or None, None, form.language, engine=engine)
        options.word_timestamps = wants_words(form)
        return options

    outcome, _upload, form = await transcribe_upload(request, service, queue, client, OpenAIOptions, options_of)
    if form.stream:
        return StreamingResponse(sse_events(outcome), media_type="text/event-stream", headers=SSE_HEADERS)
    if form.response_format in ("json", "verbose_json"):
        verbose = form.response_format == "verbose_json"
        return JSONResponse(openai_json(outcome, form.model, verbose, wants_words(form)))
    return text_response(outcome.transcript, form.response_format, outcome.record_id)


def wants_words(form: OpenAIOptions) -> bool:
    """Word times, as OpenAI gives them: `timestamp_granularities[]=word` with verbose_json."""
    return form.response_format == "verbose_json" and "word" in (form.timestamp_granularities or [])


# ---------------------------------------------------------------------- stream=true

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy buffering of the events


def text_deltas(text: str, segments: list[Segment]) -> list[str]:
    """`text` cut after each sentence, so that the deltas put together are exactly the text."""
    deltas, pos = [], 0
    for s in segments:
        found = text.find(s.text, pos) if s.text else -1
        if found < 0:
            continue
        end = found + len(s.text)
        deltas.append(text[pos:end])
        pos = end
    if pos < len(text):
        deltas.append(text[pos:])
    return [d for d in deltas if d]


async def sse_events(outcome: Outcome) -> AsyncIterator[str]:
    """OpenAI's streamed transcription: `transcript.text.delta` events, then `transcript.text.done` with the
    whole text (the openai client's `create(stream=True)` yields them). The deltas follow the sentences of the
    finished transcript."""
    t = outcome.transcript
    for delta in text_deltas(t.text, t.segments):
        yield sse({"type": "transcript.text.delta", "delta": delta})
    yield sse({"type": "transcript.text.done", "text": t.text, "id": outcome.record_id})


def sse(event: dict[str, Any]) -> str:
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"


# ---------------------------------------------------------------------- GET /v1/models

STARTED = int(time.time())
ALIAS = "whisper-1"  # what OpenAI clients send by default: the default engine


def model_ids(service: TranscriptionService) -> list[str]:
    names = [e.name for e in service.engines]
    return list(dict.fromkeys([*names, ALIAS]))


def model_object(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": STARTED, "owned_by": "funasr-webui"}


@router.get("/models", summary="The loaded engines as OpenAI model ids (whisper-1 = the default engine)")
async def list_models(service: ServiceDep) -> dict[str, Any]:
    return {"object": "list", "data": [model_object(m) for m in model_ids(service)]}


@router.get("/models/{model_id}", summary="One model (OpenAI's models.retrieve)")
async def get_model(model_id: str, service: ServiceDep) -> dict[str, Any]:
    if model_id not in model_ids(service):
        raise UserError("model_not_found", model=model_id[:100])
    return model_object(model_id)
