"""OpenAI's transcription API (POST /v1/audio/transcriptions, with word times and streaming; GET /v1/models), so
the openai client and the tools built on it work unchanged."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from ...engine import ENGINE_NAMES, parse_hotwords
from ...errors import UserError
from ...service import Outcome, TranscriptionService
from ...speakers import display_name, speaker_list
from ..dependencies import ClientDep, QueueDep, ServiceDep, only_params, require_api_auth
from ..errors import ERROR_RESPONSES
from ..options import OpenAIOptions, multipart_body
from ..responses import TRANSCRIPT_CONTENT, text_response
from ..text_stream import SSE_HEADERS, TextFeed, sse_events
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
        for seg, s in zip(segments, t.segments, strict=True):
            if s.speaker:  # an extra field (OpenAI has none for speakers): the label and its display name
                seg["speaker"], seg["speaker_name"] = s.speaker, display_name(t, s.speaker)
        body = {"task": "transcribe", "language": t.language, "duration": t.duration, **body, "segments": segments}
        if any(s.speaker for s in t.segments):
            body["speakers"] = speaker_list(t)
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
    feed = TextFeed()
    asked: dict[str, Any] = {}  # the form and options, once the upload's fields are read

    def options_of(form: OpenAIOptions):
        words = list(form.keywords or [])
        if form.prompt:  # OpenAI's prompt biases the vocabulary: here it is the hotword list
            words += parse_hotwords(form.prompt, service.settings.max_hotwords)
        # `model` naming one of our engines chooses it (refused when not loaded); OpenAI's names run the default
        engine = form.model.strip().lower() if form.model.strip().lower() in ENGINE_NAMES else None
        options = service.options(words or None, None, form.language, engine=engine, speakers=form.speakers)
        options.word_timestamps = wants_words(form)
        if form.stream:  # the text as the sentences are decoded
            options.partial_text = feed.report
        asked.update(form=form, options=options)
        return options

    async def transcribe() -> Outcome:
        return (await transcribe_upload(request, service, queue, client, OpenAIOptions, options_of))[0]

    def stop() -> None:
        cancel = asked["options"].cancel
        if cancel is not None:
            cancel.set()

    job = asyncio.ensure_future(transcribe())
    try:
        first = await feed.next(job)  # the first sentences' text, or None: finished (or failed) before any
        outcome = await job if first is None else None
    except BaseException:
        job.cancel()
        raise
    form: OpenAIOptions = asked["form"]
    if form.stream:
        events = sse_events(feed, job, first, stop)
        return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
    assert outcome is not None
    if form.response_format in ("json", "verbose_json"):
        verbose = form.response_format == "verbose_json"
        return JSONResponse(openai_json(outcome, form.model, verbose, wants_words(form)))
    return text_response(outcome.transcript, form.response_format, outcome.record_id)


def wants_words(form: OpenAIOptions) -> bool:
    """Word times, as OpenAI gives them: `timestamp_granularities[]=word` with verbose_json."""
    return form.response_format == "verbose_json" and "word" in (form.timestamp_granularities or [])


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
