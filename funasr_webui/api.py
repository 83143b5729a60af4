"""The REST API: health, the native /api/v1 surface, and the OpenAI-compatible /v1 surface.

Every error answers `{"error": {"code": ..., "message": ..., "message_zh": ...}}` (see docs/api.md).
Uploads are parsed here, streamed straight into a temp file while their size is counted, so a request body is
never held in memory and an oversized one is refused as soon as it passes the limit.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import re
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal, TypeVar, get_args, get_origin

import anyio
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPBasic, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.staticfiles import StaticFiles

from . import __version__, tempfiles
from .auth import Credentials
from .engine import TranscribeOptions, parse_hotwords
from .errors import UserError
from .history import EXPORT_FORMATS
from .service import Outcome, TranscriptionService
from .transcript import Transcript
from .writers import WRITERS, render

log = logging.getLogger(__name__)

RETRY_AFTER_S = 10  # what a 503 asks the client to wait; one short file takes a few seconds
DISCONNECT_POLL_S = 0.5  # how often a running transcription looks whether its client is still there
FORM_OVERHEAD = 1 << 20  # Content-Length allowance on top of the file: boundaries and option fields
MAX_FIELD_BYTES = 64 * 1024  # one option value (100 hotwords of 50 characters fit easily)
MAX_FIELDS = 32
MAX_NAME_CHARS = 200

# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An error answered as JSON with its status; the message comes in English and Chinese."""

    def __init__(self, status: int, code: str, en: str, zh: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(en)
        self.status = status
        self.code = code
        self.en = en
        self.zh = zh
        self.headers = headers


class ErrorDetail(BaseModel):
    code: str = Field(examples=["too_big"])
    message: str
    message_zh: str


class ErrorBody(BaseModel):
    error: ErrorDetail


def error_response(status: int, code: str, en: str, zh: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": en, "message_zh": zh}}
    return JSONResponse(body, status_code=status, headers=headers)


def _from_api_error(_request: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, ApiError)
    return error_response(e.status, e.code, e.en, e.zh, e.headers)


def _from_user_error(_request: Request, e: Exception) -> JSONResponse:
    # AudioError is a UserError too: 413 too_big, 415 not_media / no_audio, 422 for the rest (see audio.py).
    assert isinstance(e, UserError)
    return error_response(e.status, e.code, e.message("en"), e.message("zh"))


def _from_validation_error(_request: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, RequestValidationError | ValidationError)
    err = options_error(e.errors())
    return error_response(err.status, err.code, err.en, err.zh)


def _from_http_error(_request: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    detail = e.detail if isinstance(e.detail, str) else "request refused"
    return error_response(e.status_code, codes.get(e.status_code, "http_error"), detail, detail, e.headers)


def _from_unexpected(_request: Request, _e: Exception) -> JSONResponse:
    # Starlette re-raises after answering, so uvicorn still logs the traceback.
    return error_response(
        500, "internal_error", "internal server error (see the server log)", "服务器内部错误（见服务器日志）"
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _from_api_error)
    app.add_exception_handler(UserError, _from_user_error)
    app.add_exception_handler(RequestValidationError, _from_validation_error)
    app.add_exception_handler(StarletteHTTPException, _from_http_error)
    app.add_exception_handler(Exception, _from_unexpected)


def options_error(errors: Any) -> ApiError:
    """The first problem of a pydantic validation, as a 422 naming the option."""
    err = list(errors)[0]
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
    name = loc[-1] if loc else "request"
    if err.get("type") == "extra_forbidden":
        return ApiError(422, "unknown_option", f"unknown option {name!r}", f"未知选项 {name!r}")
    msg = err.get("msg", "invalid value")
    return ApiError(422, "bad_option", f"invalid value for {name!r}: {msg}", f"选项 {name!r} 的值无效：{msg}")


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


# --------------------------------------------------------------------------- access and state


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
    if header:
        en, zh, code = "wrong API key or password", "API 密钥或密码错误", "invalid_api_key"
    else:
        en = "an API key is required: send the header 'Authorization: Bearer <key>'"
        zh, code = "需要 API 密钥：请发送请求头 'Authorization: Bearer <key>'", "missing_api_key"
    raise ApiError(401, code, en, zh, headers={"WWW-Authenticate": 'Bearer realm="funasr-webui"'})


def get_service(request: Request) -> TranscriptionService:
    return request.app.state.service


def get_queue(request: Request) -> TranscriptionQueue:
    return request.app.state.queue


def only_params(*allowed: str) -> Any:
    """Refuse query parameters the endpoint does not know: a typo must not be silently ignored."""

    def check(request: Request) -> None:
        unknown = sorted(set(request.query_params) - set(allowed))
        if unknown:
            known = ", ".join(allowed) or "none"
            raise ApiError(
                422,
                "unknown_option",
                f"unknown query parameter {unknown[0]!r} (known: {known})",
                f"未知查询参数 {unknown[0]!r}（可用：{known}）",
            )

    return Depends(check)


T = TypeVar("T")


class TranscriptionQueue:
    """Counts transcription requests in flight and runs them on a small thread pool of their own.

    The pipeline runs one job at a time anyway; two threads let the next file decode while one is recognized,
    and waiting requests wait on the event loop instead of filling the thread pool the page and history share.
    A slot is taken only once the upload is complete (a slow upload holds nobody's place), and one client may
    hold at most `per_client` of them, so a single caller cannot fill the queue.
    """

    def __init__(self, max_waiting: int, per_client: int, workers: int = 2) -> None:
        self.max_waiting = max_waiting
        self.per_client = per_client
        self.in_flight = 0
        self.by_client: dict[str, int] = {}
        self.limiter = anyio.CapacityLimiter(workers)

    @asynccontextmanager
    async def slot(self, client: str) -> AsyncIterator[None]:
        busy = {"Retry-After": str(RETRY_AFTER_S)}
        if self.in_flight > self.max_waiting:  # one runs, the others wait: refuse past max_queue waiting
            raise ApiError(
                503,
                "queue_full",
                f"the server is busy ({self.in_flight} requests in flight); retry in {RETRY_AFTER_S} s",
                f"服务器繁忙（{self.in_flight} 个请求正在处理或排队），请 {RETRY_AFTER_S} 秒后重试",
                headers=busy,
            )
        mine = self.by_client.get(client, 0)
        if mine >= self.per_client:
            raise ApiError(
                429,
                "too_many_requests",
                f"you have {mine} transcriptions in flight already (at most {self.per_client}); "
                f"retry in {RETRY_AFTER_S} s",
                f"您已有 {mine} 个识别请求在处理中（最多 {self.per_client} 个），请 {RETRY_AFTER_S} 秒后重试",
                headers=busy,
            )
        self.in_flight += 1
        self.by_client[client] = mine + 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self.by_client[client] -= 1
            if not self.by_client[client]:
                del self.by_client[client]

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self.limiter)

    async def run_while_connected(self, request: Request, options: TranscribeOptions, fn: Callable[..., T]) -> T:
        """Run `fn` (which transcribes with `options`) in the pool; if the client hangs up meanwhile, the job is
        told to stop at its next piece (options.cancel), so nobody's abandoned file keeps the recognizer."""
        cancel = options.cancel = threading.Event()

        async def watch() -> None:
            while not await request.is_disconnected():
                await anyio.sleep(DISCONNECT_POLL_S)
            cancel.set()
            log.info("client %s went away: its transcription stops at the next piece", client_id(request))

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            try:
                outcome = await self.run(fn)
            except Exception as e:  # raised outside the group, so the API's handlers see it (not an ExceptionGroup)
                failure = e
            else:
                failure = None
            tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
        return outcome


def client_id(request: Request) -> str:
    """Who is asking, for the queue's per-client share: the API key or page user (checked by require_api_auth;
    a digest, never the secret) when the API needs one, else the client's address."""
    auth = request.headers.get("authorization", "").strip()
    if auth and not request.app.state.credentials.api_open:
        return "auth:" + hashlib.sha256(auth.encode()).hexdigest()[:16]
    return "addr:" + (request.client.host if request.client else "?")


ServiceDep = Annotated[TranscriptionService, Depends(get_service)]
QueueDep = Annotated[TranscriptionQueue, Depends(get_queue)]


# --------------------------------------------------------------------------- uploads


def display_name(raw: str) -> str:
    """The uploaded file's name for display only: basename, printable characters, bounded length."""
    base = raw.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable()).strip()
    if not base.strip("."):
        return "upload"
    if len(base) > MAX_NAME_CHARS:
        stem, dot, ext = base.rpartition(".")
        base = stem[: MAX_NAME_CHARS - 10] + dot + ext[:8] if dot and len(ext) <= 8 else base[:MAX_NAME_CHARS]
    return base


def _temp_suffix(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def _size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1024:.1f} KB"


def too_big(size: int | None, limit: int) -> ApiError:
    if size is None:
        return ApiError(
            413, "too_big", f"the upload is over the {_size(limit)} limit", f"上传文件超过 {_size(limit)} 上限"
        )
    return ApiError(
        413,
        "too_big",
        f"the upload is too big ({_size(size)}; the limit is {_size(limit)})",
        f"上传文件过大（{_size(size)}，上限 {_size(limit)}）",
    )


def _bad_form(en: str, zh: str) -> ApiError:
    return ApiError(422, "bad_form", en, zh)


@dataclass
class Upload:
    path: Path  # the temp file holding the audio
    name: str  # display name (never a path)
    size: int
    fields: dict[str, list[str]] = field(default_factory=dict)


class FormReader:
    """Streaming multipart/form-data parser: one `file` part goes to a temp file, the rest are small fields."""

    def __init__(self, boundary: bytes, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.fields: dict[str, list[str]] = {}
        self.path: Path | None = None
        self.name = ""
        self.size = 0
        self.file_done = False
        self.ended = False
        self._file: BinaryIO | None = None
        self._in_file = False
        self._part = ""
        self._data = bytearray()
        self._header = [b"", b""]
        self._disposition = b""
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": lambda d, s, e: self._add_header(0, d[s:e]),
                "on_header_value": lambda d, s, e: self._add_header(1, d[s:e]),
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
        )

    def _on_part_begin(self) -> None:
        self._disposition, self._data, self._in_file = b"", bytearray(), False

    def _add_header(self, i: int, data: bytes) -> None:
        self._header[i] += data
        if len(self._header[i]) > 8192:
            raise _bad_form("a multipart header is too long", "multipart 头部过长")

    def _on_header_end(self) -> None:
        if self._header[0].strip().lower() == b"content-disposition":
            self._disposition = self._header[1]
        self._header = [b"", b""]

    def _on_headers_finished(self) -> None:
        _, params = parse_options_header(self._disposition)
        if b"name" not in params:
            raise _bad_form("a form part has no name", "表单字段缺少名称")
        self._part = _decode(params[b"name"])
        if b"filename" not in params:
            if sum(len(v) for v in self.fields.values()) >= MAX_FIELDS:
                raise _bad_form("too many form fields", "表单字段过多")
            return
        if self._part != "file":
            raise ApiError(
                422,
                "unknown_option",
                f"unknown file field {self._part!r}; send the audio as 'file'",
                f"未知文件字段 {self._part!r}；请以 'file' 上传音频",
            )
        if self.path is not None:
            raise _bad_form("one file per request", "每个请求只能上传一个文件")
        self._in_file = True
        self.name = display_name(_decode(params[b"filename"]))
        # The user's name never becomes part of the path; only a plain extension is kept, to help the decoder.
        fd, path = tempfile.mkstemp(prefix=tempfiles.prefix("upload"), suffix=_temp_suffix(self.name))
        self.path = Path(path)
        self._file = os.fdopen(fd, "wb")

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.size += end - start
            if self.size > self.max_bytes:
                raise too_big(None, self.max_bytes)
            assert self._file is not None
            self._file.write(data[start:end])  # page-cache writes of <=64 KiB: not worth a thread hop
            return
        self._data += data[start:end]
        if len(self._data) > MAX_FIELD_BYTES:
            raise _bad_form(f"form field {self._part!r} is too long", f"表单字段 {self._part!r} 过长")

    def _on_part_end(self) -> None:
        if self._in_file:
            assert self._file is not None
            self._file.close()
            self.file_done = True
        else:
            self.fields.setdefault(self._part, []).append(_decode(bytes(self._data)))

    def _on_end(self) -> None:
        self.ended = True

    def feed(self, chunk: bytes) -> None:
        try:
            self.parser.write(chunk)
        except FormParserError as e:
            raise _bad_form(f"malformed multipart body: {e}", "multipart 请求体格式错误") from e

    def upload(self) -> Upload:
        if not self.ended:
            raise _bad_form("the upload ended before the form was complete", "上传在表单结束前中断")
        if self.path is None or not self.file_done:
            raise ApiError(
                422,
                "missing_file",
                "no audio file: send it as the form field 'file'",
                "缺少音频文件：请以表单字段 'file' 上传",
            )
        return Upload(self.path, self.name or "upload", self.size, self.fields)

    def cleanup(self) -> None:
        if self._file is not None:
            self._file.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _boundary(request: Request) -> bytes:
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise ApiError(
            415,
            "not_multipart",
            "send the audio as multipart/form-data with the file in the field 'file'",
            "请以 multipart/form-data 上传，文件放在字段 'file' 中",
        )
    return params[b"boundary"]


@asynccontextmanager
async def receive_upload(request: Request, max_bytes: int) -> AsyncIterator[Upload]:
    """Stream the form into a temp file (removed on exit); refuse early on Content-Length when it is given."""
    boundary = _boundary(request)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes + FORM_OVERHEAD:
        raise too_big(int(length), max_bytes)
    try:
        reader = FormReader(boundary, max_bytes)
    except ValueError as e:  # e.g. a boundary over multipart's 256-character limit
        raise _bad_form(f"malformed multipart header: {e}", "multipart 请求头格式错误") from e
    try:
        try:
            async for chunk in request.stream():
                reader.feed(chunk)
        except ClientDisconnect as e:
            raise _bad_form("the client disconnected during the upload", "上传过程中客户端断开连接") from e
        yield reader.upload()
    finally:
        reader.cleanup()


# --------------------------------------------------------------------------- options


class NativeOptions(BaseModel):
    """Form fields of POST /api/v1/transcriptions (besides `file`)."""

    model_config = ConfigDict(extra="forbid")

    hotwords: str | None = Field(None, description="space- or comma-separated words, or one per line")
    itn: bool | None = Field(None, description="inverse text normalization (numbers as digits); server default")
    language: str | None = Field(None, description="language code for engines that detect it; default auto")
    engine: Literal["auto", "paraformer", "whisper"] | None = Field(
        None, description="must match the loaded engine (see /health); auto = whatever is loaded"
    )
    response_format: Literal["json", "text", "srt", "vtt"] = "json"


class OpenAIOptions(BaseModel):
    """Form fields of POST /v1/audio/transcriptions, as OpenAI's API names them (besides `file`)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("whisper-1", max_length=200, description="any name; reported back, the loaded engine runs")
    language: str | None = Field(None, description="ISO-639-1 code, e.g. zh, en")
    prompt: str | None = Field(None, description="taken as hotwords (space- or comma-separated)")
    keywords: list[str] | None = Field(None, description="hotwords, one per value (keywords[])")
    response_format: Literal["json", "text", "srt", "vtt", "verbose_json"] = "json"
    temperature: float = Field(0.0, ge=0.0, le=1.0, description="accepted and ignored (decoding is greedy/beam)")
    timestamp_granularities: list[Literal["segment", "word"]] | None = Field(
        None, description="accepted; segments are always returned in verbose_json, words never"
    )
    include: list[str] | None = Field(None, description="accepted and ignored")
    chunking_strategy: str | None = Field(None, description="accepted and ignored (VAD always segments)")
    stream: Literal[False] | None = Field(None, description="streaming is not supported")


M = TypeVar("M", bound=BaseModel)


def _is_list(annotation: Any) -> bool:
    """`list[X]` or `list[X] | None`."""
    return get_origin(annotation) is list or any(get_origin(a) is list for a in get_args(annotation))


def parse_options(model: type[M], fields: dict[str, list[str]]) -> M:
    """Form fields -> the options model. `name[]` and repeated names fill list options; empty values mean unset."""
    lists = {name for name, f in model.model_fields.items() if _is_list(f.annotation)}
    data: dict[str, Any] = {}
    for raw, values in fields.items():
        name = raw.removesuffix("[]")
        values = [v for v in values if v != ""]
        if not values:
            continue
        if name in lists:
            data.setdefault(name, []).extend(values)
        elif len(values) > 1 or raw != name:
            raise ApiError(422, "bad_option", f"option {name!r} given more than once", f"选项 {name!r} 重复")
        else:
            data[name] = values[0]
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise options_error(e.errors()) from e


def check_engine(requested: str | None, service: TranscriptionService) -> None:
    engine = service.engine
    if requested and requested != "auto" and requested != engine.name:
        raise ApiError(
            422,
            "engine_unavailable",
            f"engine {requested!r} is not loaded: this server runs {engine.name!r} ({engine.model_name})",
            f"未加载引擎 {requested!r}：本服务器运行的是 {engine.name!r}（{engine.model_name}）",
        )


def multipart_body(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI request body for an endpoint that parses its own multipart form."""
    schema = model.model_json_schema()
    props = {"file": {"type": "string", "format": "binary", "description": "the audio or video file"}}
    for name, prop in schema.get("properties", {}).items():
        props[f"{name}[]" if _is_list(model.model_fields[name].annotation) else name] = prop
    body = {"type": "object", "required": ["file"], "properties": props}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": body}}}}


# --------------------------------------------------------------------------- responses


def text_response(transcript: Transcript, fmt: str, record_id: int | None) -> PlainTextResponse:
    fmt = "txt" if fmt == "text" else fmt
    media_type = WRITERS[fmt].media_type
    if not media_type.startswith("text/"):
        media_type += "; charset=utf-8"
    headers = {"X-Record-Id": str(record_id)} if record_id is not None else None
    return PlainTextResponse(render(transcript, fmt), media_type=media_type, headers=headers)


def native_json(outcome: Outcome, name: str) -> dict[str, Any]:
    return {"id": outcome.record_id, "name": name, **outcome.transcript.to_dict(), "warning": outcome.save_error}


def openai_json(outcome: Outcome, model: str, verbose: bool) -> dict[str, Any]:
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
    body["usage"] = {"type": "duration", "seconds": math.ceil(t.duration)}
    body["model"] = model
    body["id"] = outcome.record_id  # this server's history id
    return body


TRANSCRIPT_CONTENT = {
    200: {
        "description": "the transcript (JSON), or the text / subtitles for text, srt, vtt",
        "content": {"text/plain": {}, "application/x-subrip": {}, "text/vtt": {}},
    }
}


# --------------------------------------------------------------------------- health

health_router = APIRouter(tags=["health"])


def _no_paths(text: str) -> str:
    """Absolute paths cut to their last part: health is open, and server paths are nobody's business."""
    return re.sub(r"(?<![\w.:/])/[^\s;:,()'\"]+", lambda m: Path(m.group(0)).name, str(text))


@health_router.get("/health", summary="Ready or not, engine, models, device, queue (no key needed)")
def health(request: Request) -> JSONResponse:
    service: TranscriptionService = request.app.state.service
    queue: TranscriptionQueue = request.app.state.queue
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
        "notice": _no_paths(service.notice) if service.notice else None,
        "queue": {"in_flight": queue.in_flight, "max_queue": queue.max_waiting},
        "limits": {
            "max_upload_bytes": service.settings.max_upload_bytes,
            "max_duration_s": service.settings.max_duration,
            "max_hotwords": service.settings.max_hotwords,
        },
    }
    return JSONResponse(body)


# --------------------------------------------------------------------------- /api/v1

api_router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_api_auth)], responses=ERROR_RESPONSES)


async def _transcribe(
    request: Request, service: TranscriptionService, queue: TranscriptionQueue, model: type[M], options_of: Callable
) -> tuple[Outcome, Upload, M]:
    """Shared by both surfaces: stream the upload, validate, take a queue slot (503/429 before any work),
    transcribe (stopped if the client hangs up), save."""
    async with receive_upload(request, service.settings.max_upload_bytes) as upload:
        form = parse_options(model, upload.fields)
        options = options_of(form)
        async with queue.slot(client_id(request)):
            outcome = await queue.run_while_connected(
                request,
                options,
                functools.partial(
                    service.transcribe_file, upload.path, name=upload.name, source="api", options=options
                ),
            )
        return outcome, upload, form


@api_router.post(
    "/transcriptions",
    tags=["transcription"],
    summary="Transcribe one uploaded file (saved to the history)",
    openapi_extra=multipart_body(NativeOptions),
    responses=TRANSCRIPT_CONTENT,
    dependencies=[only_params()],
)
async def create_transcription(
    request: Request,
    service: ServiceDep,
    queue: QueueDep,
) -> Response:
    def options_of(form: NativeOptions):
        check_engine(form.engine, service)
        return service.options(form.hotwords, form.itn, form.language)

    outcome, upload, form = await _transcribe(request, service, queue, NativeOptions, options_of)
    if form.response_format == "json":
        return JSONResponse(native_json(outcome, upload.name))
    return text_response(outcome.transcript, form.response_format, outcome.record_id)


HISTORY_FILTERS = ("q", "date_from", "date_to", "engine", "source", "status")


def _date(value: str | None, name: str) -> str | None:
    """Check a date filter here, so a bad one is a clear 422 (the history module parses it again)."""
    if not value:
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            date.fromisoformat(text)
        else:
            datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)  # 3.10 rejects "Z"
    except ValueError:
        raise ApiError(
            422,
            "bad_option",
            f"{name} must be an ISO date or date-time, e.g. 2024-05-01 or 2024-05-01T08:00:00+08:00",
            f"{name} 必须是 ISO 日期或时间，例如 2024-05-01 或 2024-05-01T08:00:00+08:00",
        ) from None
    return text


@dataclass
class HistoryFilters:
    q: Annotated[str, Query(max_length=256, description="words in the text (all must match)")] = ""
    date_from: Annotated[str | None, Query(description="ISO date or date-time, inclusive (naive = local)")] = None
    date_to: Annotated[str | None, Query(description="ISO date (whole day included) or date-time")] = None
    engine: Annotated[str | None, Query(description="paraformer or whisper")] = None
    source: Annotated[str | None, Query(description="api, microphone, or a file name")] = None
    status: Annotated[
        Literal["done", "failed", "interrupted"] | None,
        Query(description="interrupted: cut short by a server stop (crash, kill, power cut) before it finished"),
    ] = None

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "date_from": _date(self.date_from, "date_from"),
            "date_to": _date(self.date_to, "date_to"),
            "engine": self.engine or None,
            "source": self.source or None,
            "status": self.status,
        }


def _summary(record: Any) -> dict[str, Any]:
    d = record.to_dict()
    del d["segments"], d["raw_text"]  # a list stays light; GET /history/{id} has everything
    return d


@api_router.get(
    "/history",
    tags=["history"],
    summary="Search the history, newest first",
    dependencies=[only_params(*HISTORY_FILTERS, "limit", "offset")],
)
def list_history(
    filters: Annotated[HistoryFilters, Depends()],
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    page = service.search(filters.q, **filters.as_kwargs(), limit=limit, offset=offset)
    return {
        "items": [_summary(r) for r in page.records],
        "total": page.total,
        "total_exact": page.total_exact,
        "limit": page.limit,
        "offset": page.offset,
        "has_next": page.has_next,
    }


EXPORT_MEDIA = {"json": "application/json", "csv": "text/csv; charset=utf-8"}


@api_router.get(
    "/history/export",
    tags=["history"],
    summary="Export records (all matching the filters, or the given ids)",
    dependencies=[only_params(*HISTORY_FILTERS, "format", "ids")],
    response_class=Response,
)
def export_history(
    filters: Annotated[HistoryFilters, Depends()],
    service: ServiceDep,
    format: Literal[EXPORT_FORMATS] = "json",  # type: ignore[valid-type]
    ids: Annotated[str | None, Query(description="comma-separated record ids; default: all matching")] = None,
) -> Response:
    if ids:
        try:
            id_list = [int(i) for i in ids.split(",") if i.strip()]
        except ValueError:
            raise ApiError(
                422, "bad_option", "ids must be comma-separated numbers", "ids 必须是逗号分隔的数字"
            ) from None
    else:
        id_list = service.search_ids(filters.q, **filters.as_kwargs())
    content = service.export(format, id_list)
    ext = "zip" if format.startswith("zip-") else format
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Response(
        content,
        media_type=EXPORT_MEDIA.get(format, "application/zip"),
        headers={"Content-Disposition": f'attachment; filename="funasr-history-{stamp}.{ext}"'},
    )


def _record(service: TranscriptionService, record_id: int) -> Any:
    record = service.get(record_id)
    if record is None:
        raise ApiError(404, "not_found", f"no history record {record_id}", f"没有历史记录 {record_id}")
    return record


@api_router.get(
    "/history/{record_id}",
    tags=["history"],
    summary="One record: JSON, or its text / subtitles",
    dependencies=[only_params("response_format")],
    responses=TRANSCRIPT_CONTENT,
)
def get_history(
    record_id: int,
    service: ServiceDep,
    response_format: Literal["json", "text", "srt", "vtt"] = "json",
) -> Response:
    record = _record(service, record_id)
    if response_format == "json":
        return JSONResponse(record.to_dict())
    return text_response(record.transcript(), response_format, record.id)


@api_router.delete("/history/{record_id}", tags=["history"], summary="Delete one record", dependencies=[only_params()])
def delete_history(record_id: int, service: ServiceDep) -> dict[str, Any]:
    _record(service, record_id)
    service.delete([record_id])
    return {"deleted": record_id}


# --------------------------------------------------------------------------- /v1 (OpenAI-compatible)

openai_router = APIRouter(
    prefix="/v1", tags=["openai"], dependencies=[Depends(require_api_auth)], responses=ERROR_RESPONSES
)


@openai_router.post(
    "/audio/transcriptions",
    summary="OpenAI-compatible transcription (the openai client works unchanged)",
    openapi_extra=multipart_body(OpenAIOptions),
    responses=TRANSCRIPT_CONTENT,
    dependencies=[only_params()],
)
async def openai_transcription(
    request: Request,
    service: ServiceDep,
    queue: QueueDep,
) -> Response:
    def options_of(form: OpenAIOptions):
        words = list(form.keywords or [])
        if form.prompt:  # OpenAI's prompt biases the vocabulary: here it is the hotword list
            words += parse_hotwords(form.prompt, service.settings.max_hotwords)
        return service.options(words or None, None, form.language)

    outcome, _upload, form = await _transcribe(request, service, queue, OpenAIOptions, options_of)
    if form.response_format in ("json", "verbose_json"):
        return JSONResponse(openai_json(outcome, form.model, form.response_format == "verbose_json"))
    return text_response(outcome.transcript, form.response_format, outcome.record_id)


# --------------------------------------------------------------------------- wiring

fallback_router = APIRouter(include_in_schema=False)


@fallback_router.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@fallback_router.api_route("/v1/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def no_such_endpoint(request: Request) -> None:
    # Without this, unknown API paths would fall through to the page and answer in Gradio's own shape.
    path = f"{request.method} {request.url.path}"
    raise ApiError(404, "not_found", f"no such endpoint: {path} (see /docs)", f"没有此接口：{path}（见 /docs）")


def _local_swagger_ui() -> Path | None:
    """Swagger UI 5 files from the optional swagger-ui-bundle-v2 package (4.x cannot render OpenAPI 3.1)."""
    try:
        from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = Path(str(swagger_ui_path))
    major = path.name.removeprefix("swagger-ui-").split(".")[0]
    return path if major.isdigit() and int(major) >= 5 and (path / "swagger-ui-bundle.js").is_file() else None


def install_docs(app: FastAPI) -> None:
    """/docs from local files when a package ships them (works air-gapped), else from the CDN FastAPI uses."""
    assets = _local_swagger_ui()
    urls: dict[str, str] = {}
    if assets is not None:
        app.mount("/docs/assets", StaticFiles(directory=assets), name="docs-assets")
        urls = {
            "swagger_js_url": "/docs/assets/swagger-ui-bundle.js",
            "swagger_css_url": "/docs/assets/swagger-ui.css",
            "swagger_favicon_url": "/docs/assets/favicon-32x32.png",
        }

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="funasr-webui API", **urls)


def include_api(app: FastAPI, service: TranscriptionService, credentials: Credentials) -> None:
    """Add the API to `app` (before the page is mounted, so nothing here is shadowed by it)."""
    app.state.service = service
    app.state.credentials = credentials
    app.state.queue = TranscriptionQueue(service.settings.max_queue, service.settings.max_queue_per_client)
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(api_router)
    app.include_router(openai_router)
    app.include_router(fallback_router)
    install_docs(app)
