"""The app factory: one FastAPI server holding the REST API and the Gradio page, over one loaded model set."""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount

from . import __version__, tempfiles, tls
from .api import include_api
from .auth import Credentials, exposure_warnings
from .history import is_postgres_url
from .security import BodyGuard, HostGuard, OriginGuard, PageLogin
from .service import TranscriptionService, build_service
from .settings import Settings

log = logging.getLogger(__name__)

DESCRIPTION = """Local, private speech-to-text. Native API under `/api/v1`, OpenAI-compatible API under `/v1`.

Errors always answer `{"error": {"code": "...", "message": "...", "message_zh": "..."}}`.
The machine-readable schema is always at `/openapi.json`, also offline."""


def create_app(service: TranscriptionService) -> FastAPI:
    import gradio as gr

    from .ui.app import build_ui

    settings = service.settings
    credentials = Credentials.from_settings(settings.auth, settings.api_key)
    app = FastAPI(
        title="funasr-webui",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=listeners(service, credentials),
    )
    # API routes first: the page is mounted at "/" and would otherwise answer every path.
    include_api(app, service, credentials)
    tempfiles.gradio_cache()
    blocks = build_ui(service)
    gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        auth=credentials.page_login if credentials.users else None,
        auth_message="funasr-webui: sign in with a user from --auth",
        max_file_size=settings.max_upload_bytes,
    )
    # Gradio checks that a file given to a file input was uploaded by a user (not any server path) only once
    # the page "has launched", which mounting never marks: without this, /etc/passwd or /dev/zero go through.
    blocks.has_launched = True
    page = next(r.app for r in app.routes if isinstance(r, Mount) and r.path == "")
    protect(app, settings, credentials, lambda: (page.tokens, page.cookie_id))
    return app


def listeners(service: TranscriptionService, credentials: Credentials):
    """What listens beside the page and the API, in the same event loop: FunASR's WebSocket protocol when
    --funasr-ws-port is set (wss when the server has a certificate). At start the speaker model begins its
    warm-up in the background: after the page is built, so it does not slow the start (both want the CPU),
    and long before a user asks for speakers."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from .funasr_ws import FunasrListener

        service.pipeline.speakers.start()

        port = service.settings.funasr_ws_port
        listener = None
        if port:
            listener = FunasrListener(service, credentials, port, tls.server_context(service.settings))
            await listener.start()
        app.state.funasr_ws = service.listening.funasr = listener
        try:
            yield
        finally:
            service.listening.funasr = None
            if listener is not None:
                await listener.stop()

    return lifespan


def protect(app: FastAPI, settings: Settings, credentials: Credentials, tokens) -> None:
    """The walls around API and page (see security.py); the last added runs first."""
    # A CORS middleware of our own, allowing no other origin, also turns off Gradio's, which would answer any
    # http://localhost:* page with credentials.
    app.add_middleware(CORSMiddleware, allow_origins=[])
    app.add_middleware(
        BodyGuard,
        max_bodies=settings.max_uploads,
        per_client=settings.max_uploads_per_client,
        idle_s=settings.upload_idle_timeout,
        total_s=settings.upload_timeout,
    )
    app.add_middleware(PageLogin, credentials=credentials, tokens=tokens)
    app.add_middleware(OriginGuard, credentials=credentials)
    app.add_middleware(HostGuard, bind_host=settings.host, allowed=settings.allowed_hosts)


def serve(settings: Settings) -> int:
    import uvicorn

    try:  # a bad --auth / --api-key fails now, not after the models have loaded
        credentials = Credentials.from_settings(settings.auth, settings.api_key)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:  # a bad certificate fails now too
        settings = tls.resolve(settings)
    except tls.TlsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if settings.queue and not is_postgres_url(str(settings.db)):
        print("error: --queue needs the queue's database: --db postgresql://user@host/db", file=sys.stderr)
        return 2
    tempfiles.sweep_orphans()  # what a killed server left in the temp folder
    tempfiles.gradio_cache()  # before anything imports Gradio: some of its modules read the folder at import
    # Gradio takes ~3 s to import: done meanwhile, on the other core, while the models load.
    page_import = threading.Thread(target=importlib.import_module, args=("gradio",), name="import-gradio", daemon=True)
    page_import.start()
    # every model loads before the port opens; the speaker model warms up once the page is built (lifespan)
    service = build_service(settings, preload_speakers=False)
    page_import.join()
    app = create_app(service)
    for warning in exposure_warnings(settings.host, credentials, settings.tls):  # last thing printed: seen
        print(warning, file=sys.stderr)
    scheme = "https" if settings.tls else "http"
    log.info("serving on %s://%s:%d (API docs: /docs)", scheme, settings.host, settings.port)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        ssl_certfile=settings.ssl_certfile,
        ssl_keyfile=settings.ssl_keyfile,
    )
    return 0
