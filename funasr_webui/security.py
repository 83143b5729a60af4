"""The server's outer walls, as ASGI middleware in front of the API and the page.

- HostGuard: only the names this server is reached by (DNS rebinding: a web page whose name is made to point
  at 127.0.0.1 sends its own name as Host).
- OriginGuard: a browser request that changes something and comes from another site is refused, unless it
  carries a valid API key (cross-site request forgery; the browser attaches cookies and Basic credentials).
- PageLogin: with --auth, every /gradio_api/* route needs the page login (Gradio leaves some open).
- BodyGuard: request bodies in progress are capped, and one that stalls or trickles is cut off, so slow
  uploads cannot hold the server's slots or fill the temp folder.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import anyio
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import Credentials
from .errors import UserError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
MIN_RATE = 16 * 1024  # bytes/s an upload must average after its first UPLOAD_GRACE_S (128 kbit/s)
UPLOAD_GRACE_S = 30.0
RETRY_AFTER_S = 10
# Gradio routes that must answer before login: the login form itself and its check.
LOGIN_OPEN = frozenset({"/login", "/login/", "/gradio_api/login", "/gradio_api/login/", "/gradio_api/login_check"})


async def send_error(send: Send, err: UserError) -> None:
    """The API's error shape, answered from a middleware (no app behind it has run)."""
    body = json.dumps(err.body(), ensure_ascii=False).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (err.headers or {}).items()]
    await send({"type": "http.response.start", "status": err.status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def host_name(host: str) -> str:
    """`name`, `name:port`, `[v6]:port` -> the name, lower case, brackets off."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def allowed_host_names(bind_host: str, extra: Iterable[str]) -> set[str] | None:
    """The Host names to accept; None = any ("*" in --allowed-host)."""
    extra = [host_name(h) for h in extra if h.strip()]
    if "*" in extra:
        return None
    names = {"localhost", "127.0.0.1", "::1", *extra}
    bind = host_name(bind_host)
    if bind in ("0.0.0.0", "::", ""):  # every interface: this machine's own names too
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    else:
        names.add(bind)
    return names


class HostGuard:
    """Refuse a Host header this server does not answer to. IP literals are accepted when listening on every
    interface (a rebinding attack needs a domain name; LAN users type the server's address)."""

    def __init__(self, app: ASGIApp, bind_host: str, allowed: Iterable[str]) -> None:
        self.app = app
        self.names = allowed_host_names(bind_host, allowed)
        self.any_ip = host_name(bind_host) in ("0.0.0.0", "::", "")

    def allows(self, host: str | None) -> bool:
        if self.names is None:
            return True
        name = host_name(host or "")
        return name in self.names or (self.any_ip and is_ip(name))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allows(Headers(scope=scope).get("host")):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send_error(send, UserError("host_not_allowed"))


def is_cross_site(headers: Headers) -> bool:
    """A browser request from another origin: by Sec-Fetch-Site, or an Origin that is not this Host."""
    if headers.get("sec-fetch-site", "").lower() in ("cross-site", "same-site"):
        return True
    origin = headers.get("origin")
    if origin is None:
        return False  # not a browser's cross-origin request (curl, SDKs, same-origin GET-style forms)
    if origin == "null":  # sandboxed frames, file:// pages: never this page
        return True
    netloc = urlsplit(origin).netloc.lower()
    return netloc != headers.get("host", "").lower()


class OriginGuard:
    """Requests that change state (anything but GET/HEAD/OPTIONS) must come from this page or from a non-browser
    client; a cross-site one passes only with a valid API key, which no forging page can know."""

    def __init__(self, app: ASGIApp, credentials: Credentials) -> None:
        self.app = app
        self.credentials = credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if is_cross_site(headers) and not self.credentials.bearer_ok(headers.get("authorization")):
            await send_error(send, UserError("cross_site"))
            return
        await self.app(scope, receive, send)


class PageLogin:
    """With --auth, the page's API (/gradio_api/*) answers only a browser or gradio_client that signed in (Gradio's
    login cookie). `tokens` gives Gradio's login tokens and its cookie id (known once the page is mounted)."""

    def __init__(self, app: ASGIApp, credentials: Credentials, tokens: Callable[[], tuple[dict, str]]) -> None:
        self.app = app
        self.credentials = credentials
        self.tokens = tokens

    def logged_in(self, cookies: dict[str, str]) -> bool:
        tokens, cookie_id = self.tokens()
        return any(cookies.get(f"{name}-{cookie_id}") in tokens for name in ("access-token", "access-token-unsecure"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or not self.credentials.users
            or not path.startswith("/gradio_api/")
            or path in LOGIN_OPEN
            or self.logged_in(HTTPConnection(scope).cookies)
        ):
            await self.app(scope, receive, send)
            return
        await send_error(send, UserError("login_required"))


class BodyGuard:
    """At most `max_bodies` request bodies in flight, `per_client` of them from one address; each must keep
    arriving (nothing for `idle_s` ends it, and so does averaging under MIN_RATE after UPLOAD_GRACE_S) and end
    within `total_s`. A body cut off is answered 408 whatever the app behind would have said: the app sees the
    client as gone."""

    def __init__(self, app: ASGIApp, max_bodies: int, per_client: int, idle_s: float, total_s: float) -> None:
        self.app = app
        self.max_bodies = max_bodies
        self.per_client = per_client
        self.idle_s = idle_s
        self.total_s = total_s
        self.in_progress = 0
        self.by_client: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("?", 0))[0]
        if self.in_progress >= self.max_bodies or self.by_client.get(client, 0) >= self.per_client:
            busy = {"Retry-After": str(RETRY_AFTER_S)}
            await send_error(send, UserError("too_many_uploads", retry=RETRY_AFTER_S, headers=busy))
            return
        body = _Body(self, client, receive)
        try:
            await self.app(scope, body.receive, body.send(send))
        except Exception:
            if not body.timed_out:
                raise
        finally:
            body.finish()
        if body.timed_out and not body.answered:
            await send_error(send, UserError("upload_timeout"))


class _Body:
    """One request's body as BodyGuard watches it."""

    def __init__(self, guard: BodyGuard, client: str, receive: Receive) -> None:
        self.guard = guard
        self.client = client
        self._receive = receive
        self.started = self.last = time.monotonic()
        self.received = 0
        self.done = False
        self.timed_out = False
        self.answered = False  # the app's response went out (before any time-out)
        guard.in_progress += 1
        guard.by_client[client] = guard.by_client.get(client, 0) + 1

    def finish(self) -> None:
        if not self.done:
            self.done = True
            self.guard.in_progress -= 1
            self.guard.by_client[self.client] -= 1
            if not self.guard.by_client[self.client]:
                del self.guard.by_client[self.client]

    def _deadline(self) -> float:
        """When the body breaks a rule if nothing more arrives: idle, total, or (after the grace) rate."""
        by_rate = self.started + max(UPLOAD_GRACE_S, self.received / MIN_RATE)
        return min(self.last + self.guard.idle_s, self.started + self.guard.total_s, by_rate)

    async def receive(self) -> Message:
        if self.done:  # the body is complete: waiting for a disconnect takes as long as it takes
            return await self._receive()
        while True:
            with anyio.move_on_after(max(0.0, self._deadline() - time.monotonic())) as waited:
                message = await self._receive()
            if not waited.cancelled_caught:
                break
            if time.monotonic() >= self._deadline():
                self.timed_out = True
                self.finish()
                return {"type": "http.disconnect"}
        self.last = time.monotonic()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.finish()
        else:
            self.finish()
        return message

    def send(self, send: Send) -> Callable[[Message], Any]:
        async def guarded(message: Message) -> None:
            if self.timed_out:
                return  # the time-out's own 408 goes out instead
            if message["type"] == "http.response.start":
                self.answered = True
            await send(message)

        return guarded
