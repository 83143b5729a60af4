"""One transcription request, the same for both surfaces (native and OpenAI-compatible)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel

from ..engine import TranscribeOptions
from ..service import Outcome, TranscriptionService
from .options import parse_options
from .queue import TranscriptionQueue
from .uploads import Upload, receive_upload

M = TypeVar("M", bound=BaseModel)


async def transcribe_upload(
    request: Request,
    service: TranscriptionService,
    queue: TranscriptionQueue,
    client: str,
    model: type[M],
    options_of: Callable[[M], TranscribeOptions],
) -> tuple[Outcome, Upload, M]:
    """Stream the upload, validate its options, take a queue slot (503/429 before any work), transcribe
    (stopped if the client hangs up), save."""
    async with receive_upload(request, service.settings.max_upload_bytes) as upload:
        form = parse_options(model, upload.fields)
        options = options_of(form)
        async with queue.slot(client):
            outcome = await queue.run_while_connected(
                request,
                options,
                functools.partial(
                    service.transcribe_file, upload.path, name=upload.name, source="api", options=options
                ),
                client,
            )
        return outcome, upload, form
