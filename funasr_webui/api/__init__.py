"""The REST API: health, the native /api/v1 surface, the history, and the OpenAI-compatible /v1 surface.

- uploads: the streaming multipart reader that enforces the size limit;
- options: the form fields of each surface; transcribe: one transcription request, upload to saved record;
- queue: requests in flight, a share per client, cancelled when the client hangs up;
- dependencies: the API key check, the service and the queue, who the client is, strict query parameters;
- errors: the error shape and the exception handlers; responses: text and subtitle answers;
- routers/: one module per surface (jobs: the PostgreSQL work queue, when the server has one).

Every error answers `{"error": {"code": ..., "message": ..., "message_zh": ...}}` (see docs/api.md). The routes
reach the models and the history only through the service.
"""

from __future__ import annotations

from fastapi import FastAPI

from ..auth import Credentials
from ..service import TranscriptionService
from .errors import install_error_handlers
from .queue import TranscriptionQueue
from .routers import docs, health, history, jobs, native, openai, qa
from .uploads import display_name

__all__ = ["TranscriptionQueue", "display_name", "include_api"]


def include_api(app: FastAPI, service: TranscriptionService, credentials: Credentials) -> None:
    """Add the API to `app` (before the page is mounted, so nothing here is shadowed by it)."""
    app.state.service = service
    app.state.credentials = credentials
    app.state.queue = TranscriptionQueue(service.settings.max_queue, service.settings.max_queue_per_client)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(native.router)
    app.include_router(history.router)
    app.include_router(jobs.router)
    app.include_router(openai.router)
    app.include_router(qa.router)
    app.include_router(docs.fallback_router)
    docs.install_docs(app)
