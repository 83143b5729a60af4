"""What the routes depend on: the API key check, the service and the queue, who the client is, strict queries."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPBasic, HTTPBearer

from ..auth import Credentials
from ..errors import UserError
from ..service import TranscriptionService
from .queue import TranscriptionQueue


class _DocsBearer(HTTPBearer):
    """Declares the scheme in the OpenAPI schema (the docs' Authorize button); Credentials does the checking."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


class _DocsBasic(HTTPBasic):
    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None  # FastAPI's own would refuse non-ASCII passwords before Credentials sees them


bearer_scheme = _DocsBearer(scheme_name="APIKey", description="an --api-key value")
basic_scheme = _DocsBasic(scheme_name="PageUser", description="a page user from --auth")


def require_api_auth(
    request: Request,
    _bearer: Annotated[None, Security(bearer_scheme)],
    _basic: Annotated[None, Security(basic_scheme)],
) -> None:
    """Runs before the body is read, so a refused upload costs nothing and writes nothing."""
    creds: Credentials = request.app.state.credentials
    header = request.headers.get("authorization")
    if creds.api_allows(header):
        return
    challenge = {"WWW-Authenticate": 'Bearer realm="funasr-webui"'}
    if header:
        raise UserError("invalid_api_key", headers=challenge)
    raise UserError("missing_api_key", headers=challenge)


def get_service(request: Request) -> TranscriptionService:
    return request.app.state.service


def get_queue(request: Request) -> TranscriptionQueue:
    return request.app.state.queue


def client_id(request: Request) -> str:
    """Who is asking, for the queue's per-client share: the API key or page user (checked by require_api_auth;
    a digest, never the secret) when the API needs one, else the client's address."""
    auth = request.headers.get("authorization", "").strip()
    if auth and not request.app.state.credentials.api_open:
        return "auth:" + hashlib.sha256(auth.encode()).hexdigest()[:16]
    return "addr:" + (request.client.host if request.client else "?")


def only_params(*allowed: str) -> Any:
    """Refuse query parameters the endpoint does not know: a typo must not be silently ignored."""

    def check(request: Request) -> None:
        unknown = sorted(set(request.query_params) - set(allowed))
        if unknown:
            raise UserError("unknown_query_param", name=unknown[0], known=", ".join(allowed) or "none")

    return Depends(check)


ServiceDep = Annotated[TranscriptionService, Depends(get_service)]
QueueDep = Annotated[TranscriptionQueue, Depends(get_queue)]
ClientDep = Annotated[str, Depends(client_id)]
