"""Every API error answers `{"error": {"code": ..., "message": ..., "message_zh": ...}}` (see docs/api.md).

The handlers turn what a request raised into that shape: a UserError (AudioError included) as it is, pydantic's
validation errors as the option they name, the framework's own refusals (404, 405) in its words, anything else
as a 500 whose traceback stays in the server log.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import UserError


class ErrorDetail(BaseModel):
    code: str = Field(examples=["too_big"])
    message: str
    message_zh: str


class ErrorBody(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        401: "missing or wrong API key",
        403: "a cross-site browser request without an API key",
        408: "the upload stalled or was too slow",
        413: "upload too big",
        415: "not audio or video, or no audio track",
        422: "bad option, or unusable audio (empty, truncated, too long, undecodable)",
        429: "this client has its share of the queue in flight already: retry after Retry-After",
        503: "queue full, or too many uploads in progress: retry after the Retry-After header's seconds",
    }.items()
}


def error_response(err: UserError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def options_error(errors: Any) -> UserError:
    """The first problem of a pydantic validation, as a 422 naming the option."""
    err = list(errors)[0]
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
    name = loc[-1] if loc else "request"
    if err.get("type") == "extra_forbidden":
        return UserError("unknown_option", name=name)
    return UserError("bad_option", name=name, detail=err.get("msg", "invalid value"))


def _from_user_error(_request: Request, e: Exception) -> JSONResponse:
    # AudioError is a UserError too: 413 too_big, 415 not_media / no_audio, 422 for the rest (see messages.py).
    assert isinstance(e, UserError)
    return error_response(e)


def _from_validation_error(_request: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, RequestValidationError | ValidationError)
    return error_response(options_error(e.errors()))


def _from_http_error(_request: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, StarletteHTTPException)
    detail = e.detail if isinstance(e.detail, str) else "request refused"
    if e.status_code == 404:
        err = UserError("http_not_found", detail=detail, headers=e.headers)
    elif e.status_code == 405:
        err = UserError("http_method_not_allowed", detail=detail, headers=e.headers)
    else:
        err = UserError("http_error", status=e.status_code, detail=detail, headers=e.headers)
    return error_response(err)


def _from_unexpected(_request: Request, _e: Exception) -> JSONResponse:
    # Starlette re-raises after answering, so uvicorn still logs the traceback.
    return error_response(UserError("internal_error"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(UserError, _from_user_error)
    app.add_exception_handler(RequestValidationError, _from_validation_error)
    app.add_exception_handler(StarletteHTTPException, _from_http_error)
    app.add_exception_handler(Exception, _from_unexpected)
