"""The form fields of the two transcription endpoints, parsed from the upload's fields into pydantic models."""

from __future__ import annotations

from typing import Any, Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import UserError
from .errors import options_error


class NativeOptions(BaseModel):
    """Form fields of POST /api/v1/transcriptions (besides `file`)."""

    model_config = ConfigDict(extra="forbid")

    hotwords: str | None = Field(None, description="space- or comma-separated words, or one per line")
    itn: bool | None = Field(None, description="inverse text normalization (numbers as digits); server default")
    language: str | None = Field(None, description="language code for engines that detect it; default auto")
    engine: Literal["auto", "paraformer", "fun-asr-nano", "fun-asr-mlt-nano", "sensevoice", "whisper"] | None = Field(
        None, description="one of the loaded engines (`engines` in /health); auto = the server's default"
    )
    response_format: Literal["json", "text", "srt", "vtt"] = "json"


class OpenAIOptions(BaseModel):
    """Form fields of POST /v1/audio/transcriptions, as OpenAI's API names them (besides `file`)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        "whisper-1",
        max_length=200,
        description="a loaded engine's name (e.g. sensevoice, see /health) runs that engine; any other name "
        "(e.g. whisper-1) runs the default engine; reported back",
    )
    language: str | None = Field(None, description="ISO-639-1 code, e.g. zh, en")
    prompt: str | None = Field(None, description="taken as hotwords (space- or comma-separated)")
    keywords: list[str] | None = Field(None, description="hotwords, one per value (keywords[])")
    response_format: Literal["json", "text", "srt", "vtt", "verbose_json"] = "json"
    temperature: float = Field(0.0, ge=0.0, le=1.0, description="accepted and ignored (decoding is greedy/beam)")
    timestamp_granularities: list[Literal["segment", "word"]] | None = Field(
        None,
        description="verbose_json always has segments; `word` adds `words` with start/end (when the engine gives them)",
    )
    include: list[str] | None = Field(None, description="accepted and ignored")
    chunking_strategy: str | None = Field(None, description="accepted and ignored (VAD always segments)")
    stream: bool | None = Field(
        None, description="true: server-sent events transcript.text.delta (one per sentence), then transcript.text.done"
    )


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
            raise UserError("repeated_option", name=name)
        else:
            data[name] = values[0]
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise options_error(e.errors()) from e


def multipart_body(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI request body for an endpoint that parses its own multipart form."""
    schema = model.model_json_schema()
    props = {"file": {"type": "string", "format": "binary", "description": "the audio or video file"}}
    for name, prop in schema.get("properties", {}).items():
        props[f"{name}[]" if _is_list(model.model_fields[name].annotation) else name] = prop
    body = {"type": "object", "required": ["file"], "properties": props}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": body}}}}
