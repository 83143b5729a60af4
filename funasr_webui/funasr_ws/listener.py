"""The FunASR WebSocket listener (`--funasr-ws-port`): FunASR's runtime clients connect to it unchanged.

It runs in the server's event loop beside the page and the API, over the same loaded models; the models run in
worker threads, one call at a time under the pipeline's lock. The same walls as the rest of the server: Host
names (DNS rebinding), browsers' Origin (another web site streaming into this server), the API key
(`Authorization: Bearer KEY` or `?key=KEY`: browsers cannot set headers on a WebSocket), and a cap on
connections at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import ssl
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..auth import Credentials
from ..errors import UserError
from ..security import HostGuard
from ..service import TranscriptionService
from .protocol import error_fields, parse_json
from .session import FunasrSession

log = logging.getLogger(__name__)

BUSY_CLOSE = 1013  # "try again later"
MAX_FRAME = 64 * 1024 * 1024  # one message; FunASR's clients send files in frames of 60 ms to 200 KB


def select_binary(_connection: ServerConnection, offered: list[str]) -> str | None:
    """FunASR's Python client offers the `binary` subprotocol, browsers offer none: both are served (the
    websockets default would refuse a client that offers none)."""
    return "binary" if "binary" in offered else None


class FunasrListener:
    def __init__(
        self,
        service: TranscriptionService,
        credentials: Credentials,
        port: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        settings = service.settings
        self.service = service
        self.credentials = credentials
        self.host = settings.host
        self.port = port
        self.ssl_context = ssl_context
        self.max_connections = settings.funasr_ws_max_connections
        self.hosts = HostGuard(None, settings.host, settings.allowed_hosts)
        self.connections: set[ServerConnection] = set()
        self.server: Server | None = None

    @property
    def url(self) -> str:
        return f"{'wss' if self.ssl_context else 'ws'}://{self.host}:{self.port}"

    async def start(self) -> None:
        self.server = await serve(
            self.handle,
            self.host,
            self.port,
            ssl=self.ssl_context,
            process_request=self.check,
            select_subprotocol=select_binary,
            ping_interval=None,  # as FunASR's server: a client busy sending a long file is not cut off
            max_size=min(self.service.settings.max_upload_bytes, MAX_FRAME),
            compression=None,
        )
        log.info("FunASR WebSocket listener on %s (FunASR clients: --host HOST --port %d)", self.url, self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    # ------------------------------------------------------------------ the opening handshake

    def check(self, _connection: ServerConnection, request: Request) -> Response | None:
        """Refuse the handshake (HTTP status and the API's JSON error) for a host name this server does not
        answer to, a missing or wrong key, or a browser page of another site."""
        host = _one(request.headers, "Host")
        if host is None or not self.hosts.allows(host):
            return refusal(UserError("host_not_allowed"))
        key_ok = self._key_ok(request)
        if not self.credentials.api_open and not key_ok:
            given = _one(request.headers, "Authorization") or _query_key(request.path)
            return refusal(UserError("invalid_api_key" if given else "missing_api_key"))
        origin = _one(request.headers, "Origin")
        if origin is not None and not key_ok and not self._same_site(origin):
            return refusal(UserError("cross_site"))
        return None

    def _key_ok(self, request: Request) -> bool:
        if self.credentials.api_open:
            return False
        key = _query_key(request.path)
        return self.credentials.api_allows(_one(request.headers, "Authorization")) or (
            bool(key) and self.credentials.key_ok(key)
        )

    def _same_site(self, origin: str) -> bool:
        """A page served by a name this server answers to (FunASR's html5 client served from this machine, this
        server's own page); `null` (file:// pages, sandboxed frames of any site) is not."""
        netloc = urlsplit(origin).netloc
        return bool(netloc) and self.hosts.allows(netloc)

    # ------------------------------------------------------------------ a connection

    async def handle(self, ws: ServerConnection) -> None:
        if len(self.connections) >= self.max_connections:
            err = UserError("ws_busy", count=len(self.connections), limit=self.max_connections)
            message = {"mode": "", "wav_name": "", "text": "", "is_final": False, "is_end": True}
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps({**message, **error_fields([err])}, ensure_ascii=False))
                await ws.close(BUSY_CLOSE, err.message("en")[:120])
            return
        self.connections.add(ws)
        session = FunasrSession(self.service)
        try:
            await Connection(ws, session).run()
        finally:
            self.connections.discard(ws)
            await asyncio.to_thread(session.close)


class Connection:
    """Reads one client's messages in order. Audio frames that arrive while the recognizer is busy are joined
    and fed together, so a client sending faster than real time (or a slow machine) never builds a backlog of
    tiny calls."""

    def __init__(self, ws: ServerConnection, session: FunasrSession) -> None:
        self.ws = ws
        self.session = session
        self.pending = bytearray()
        self.pump: asyncio.Task | None = None

    async def run(self) -> None:
        try:
            async for message in self.ws:
                if isinstance(message, bytes):
                    self.pending += message
                    if self.pump is None or self.pump.done():
                        self.pump = asyncio.create_task(self._pump())
                    continue
                await self._drain()
                msg = parse_json(message)
                if msg is None:
                    self.session.note(UserError("ws_bad_message"))
                    continue
                await self._send(await asyncio.to_thread(self.session.control, msg))
        except ConnectionClosed:
            pass
        finally:
            with contextlib.suppress(ConnectionClosed):
                await self._drain()

    async def _pump(self) -> None:
        while self.pending:
            data = bytes(self.pending)
            self.pending.clear()
            try:
                messages = await asyncio.to_thread(self.session.audio, data)
            except UserError as e:
                self.session.note(e)
                continue
            except Exception as e:  # a model failure ends nothing but this input's results
                log.exception("FunASR WebSocket input failed")
                self.session.note(UserError("engine_error", error=f"{type(e).__name__}: {e}"))
                continue
            await self._send(messages)

    async def _drain(self) -> None:
        if self.pump is not None:
            await self.pump
            self.pump = None

    async def _send(self, messages: list[dict]) -> None:
        for m in messages:
            await self.ws.send(json.dumps(m, ensure_ascii=False))


def _one(headers: Headers, name: str) -> str | None:
    """A header sent once; None when absent (or sent twice, which no honest client does)."""
    values = headers.get_all(name)
    return values[0] if len(values) == 1 else None


def _query_key(path: str) -> str:
    return (parse_qs(urlsplit(path).query).get("key") or [""])[0]


def refusal(err: UserError) -> Response:
    body = json.dumps(err.body(), ensure_ascii=False).encode()
    status = http.HTTPStatus(err.status)
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return Response(status.value, status.phrase, headers, body)
