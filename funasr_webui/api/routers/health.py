"""GET /health: ready or not, engine, models, device, queue and limits (and the work queue's jobs and workers
when the server has one); open without a key."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ... import __version__
from ...errors import UserError
from ...service import TranscriptionService
from ..dependencies import QueueDep, ServiceDep

router = APIRouter(tags=["health"])


def _no_paths(text: str) -> str:
    """Absolute paths cut to their last part: health is open, and server paths are nobody's business."""
    return re.sub(r"(?<![\w.:/])/[^\s;:,()'\"]+", lambda m: Path(m.group(0)).name, str(text))


@router.get("/health", summary="Ready or not, engine, models, device, queue (no key needed)")
def health(service: ServiceDep, queue: QueueDep) -> JSONResponse:
    engine = service.engine  # the models load before the port opens: a server that answers is ready
    models = {k: _no_paths(v) for k, v in engine.describe().items()}
    body = {
        "status": "ok",
        "ready": True,
        "version": __version__,
        "engine": engine.name,
        "model": engine.model_name,
        "device": engine.device,
        "models": models,
        "languages": list(engine.languages),
        # every loaded engine (the default first), each chosen per request with `engine` / OpenAI `model`
        "engines": [
            {
                "name": e.name,
                "model": e.model_name,
                "device": e.device,
                "default": e is engine,
                "languages": list(e.languages),
            }
            for e in service.engines
        ],
        "notice": _no_paths(service.notice) if service.notice else None,
        "queue": {"in_flight": queue.in_flight, "max_queue": queue.max_waiting},
        "limits": {
            "max_upload_bytes": service.settings.max_upload_bytes,
            "max_duration_s": service.settings.max_duration,
            "max_hotwords": service.settings.max_hotwords,
        },
        # https: on/off, self-signed, last valid day; funasr_ws: port, secure (wss), connections / max_connections
        **service.listening.health(),
    }
    if service.work_queue is not None:
        body["work_queue"] = work_queue_health(service)
    return JSONResponse(body)


def work_queue_health(service: TranscriptionService) -> dict:
    """Jobs per state and the live workers (server started with --queue); an error says why it is unknown."""
    try:
        counts, workers = service.queue_status()
    except UserError as e:
        return {"error": e.message("en")}
    return {"jobs": counts, "workers": [w.to_dict() for w in workers]}
