"""The messages of FunASR's runtime WebSocket protocol, as FunASR's own clients send and read them.

Source: modelscope/FunASR runtime/python/websocket/funasr_wss_server.py and funasr_wss_client.py,
runtime/docs/websocket_protocol.md, runtime/html5/static/{main,wsconnecter}.js (summarized, with line numbers, in
../shared/docs/funasr-websocket-protocol.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..errors import UserError
from ..transcript import Segment

MODES = ("offline", "online", "2pass")
PCM_FORMATS = ("pcm", "")  # "pcm" from the Python client, "PCM" from the browser (compared lower case)
MIN_FS, MAX_FS = 8000, 48000


@dataclass
class InputConfig:
    """What the client's JSON text messages said about the input under way (later messages update it)."""

    mode: str = "2pass"
    wav_name: str = "microphone"  # FunASR's server default
    wav_format: str = "pcm"
    audio_fs: int = 16000
    hotwords: list[str] | None = None  # None: not sent
    itn: bool | None = None  # None: not sent (the server's default)

    @property
    def pcm(self) -> bool:
        return self.wav_format.strip().lower() in PCM_FORMATS

    @property
    def streaming(self) -> bool:
        """Partials while audio arrives: online and 2pass on raw PCM. A whole file (wav_format mp3, ...) can only
        be decoded once it is complete."""
        return self.mode in ("online", "2pass") and self.pcm


@dataclass
class Control:
    """One JSON text message: what it changed, and whether it ends the input."""

    end_of_input: bool = False
    wants_ack: bool = False  # "is_end": true — the current client waits for an acknowledgement
    errors: list[UserError] | None = None


def parse_json(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def apply_control(config: InputConfig, msg: dict[str, Any], max_hotwords: int) -> Control:
    """Update `config` from one text message; unknown keys are ignored (FunASR's clients send chunk_size,
    chunk_interval, encoder/decoder_chunk_look_back, svs_lang, ... that this server does not need)."""
    errors: list[UserError] = []
    if "mode" in msg and msg["mode"]:
        mode = str(msg["mode"])
        if mode in MODES:
            config.mode = mode
        else:
            errors.append(UserError("ws_bad_mode", mode=mode[:40]))
    if msg.get("wav_name"):
        config.wav_name = str(msg["wav_name"])[:200]
    if "wav_format" in msg and msg["wav_format"] is not None:
        config.wav_format = str(msg["wav_format"])[:20]
    if "audio_fs" in msg:
        try:
            fs = int(msg["audio_fs"])
        except (TypeError, ValueError):
            fs = 0
        if MIN_FS <= fs <= MAX_FS:
            config.audio_fs = fs
        else:
            errors.append(UserError("ws_bad_audio_fs", audio_fs=str(msg["audio_fs"])[:20]))
    if "hotwords" in msg:
        try:
            config.hotwords = parse_hotwords(msg["hotwords"], max_hotwords)
        except UserError as e:
            errors.append(e)
    if "itn" in msg and msg["itn"] is not None:
        config.itn = bool(msg["itn"])
    end = "is_speaking" in msg and not msg["is_speaking"]
    return Control(end_of_input=end, wants_ack=end and bool(msg.get("is_end")), errors=errors or None)


def parse_hotwords(value: Any, max_count: int) -> list[str]:
    """FunASR's hotwords as its clients send them: a JSON-object string of word -> weight (microphone client,
    browser: '{"阿里巴巴": 20}'), a comma-joined string (file client), or plain words. The weights are FunASR's
    boosting scores; this server's engines take the words."""
    from ..engine import parse_hotwords as parse_words

    if isinstance(value, dict):
        words: str | list[str] = [str(k) for k in value]
    elif isinstance(value, str):
        obj = parse_json(value) if value.strip().startswith("{") else None
        words = [str(k) for k in obj] if obj is not None else value
    elif isinstance(value, list):
        words = [str(v) for v in value]
    else:
        words = ""
    return parse_words(words, max_count)


# --------------------------------------------------------------------------- what the server sends


def result(
    mode: str,
    wav_name: str,
    text: str,
    is_final: bool,
    segments: list[Segment] | None = None,
    whole: str | None = None,
) -> dict:
    """A result message: `mode` offline | online | 2pass-online | 2pass-offline. `timestamp` and `stamp_sents`
    only when the engine gave word (character) times: never made up. ``whole``: the text the segments' words
    belong to when ``text`` is only its end (an online final continuing what the client shows)."""
    msg: dict[str, Any] = {"mode": mode, "text": text, "wav_name": wav_name, "is_final": is_final}
    words = [w for s in segments or [] for w in s.words]
    if words and text.strip():
        msg["timestamp"] = timestamp_string(text, segments or [], whole)
        msg["stamp_sents"] = stamp_sents(segments or [])
    return msg


def acknowledgement(mode: str, wav_name: str, errors: list[UserError]) -> dict:
    """The end-of-input acknowledgement the current client waits for (sent after every result of the input)."""
    msg: dict[str, Any] = {"mode": mode, "wav_name": wav_name, "text": "", "is_final": not errors, "is_end": True}
    if errors:
        msg.update(error_fields(errors))
    return msg


def error_fields(errors: list[UserError]) -> dict[str, str]:
    return {"error": "; ".join(e.message("en") for e in errors), "error_zh": "；".join(e.message("zh") for e in errors)}


_BROWSER_SPLIT = re.compile(r"。|？|，|、|\?|\.| ")
_ENGLISH_WORD = re.compile(r"^[a-zA-Z]+$")


def timestamp_units(text: str) -> int:
    """How many [start, end] pairs FunASR's browser client reads for `text` (main.js handleWithTimestamp): it cuts
    the text at 。？，、?. and spaces, then takes one pair per English word and one per character of anything
    else. Fewer pairs than that throws in its handler, so the string is always this long."""
    return sum(1 if _ENGLISH_WORD.match(part) else len(part) for part in _BROWSER_SPLIT.split(text) if part)


def timestamp_string(text: str, segments: list[Segment], whole: str | None = None) -> str:
    """`timestamp` as FunASR's protocol document and C++ server send it: a JSON *string* "[[ms,ms],...]", one
    pair per unit of `text` (see timestamp_units). The engine's words are spread over the units in order (the
    counts differ where punctuation or ITN changed the text: "三十一" is one unit fewer as "31"). With ``whole``
    (of which ``text`` is the end), the words are spread over its units and the last ones are ``text``'s."""
    words = [w for s in segments for w in s.words]
    total = timestamp_units(whole or text)
    n = min(timestamp_units(text), total)
    pairs = [words[min(len(words) - 1, i * len(words) // total)] for i in range(total - n, total)] if words else []
    return json.dumps([[round(w.start * 1000), round(w.end * 1000)] for w in pairs], separators=(",", ":"))


def stamp_sents(segments: list[Segment]) -> list[dict[str, Any]]:
    """Per sentence: its tokens, closing punctuation, times (ms) and token times, as FunASR's document shows."""
    out = []
    for s in segments:
        if not s.words:
            continue
        tail = re.search(r"[^\w\s]+$", s.text)
        out.append(
            {
                "text_seg": " ".join(w.word for w in s.words),
                "punc": tail.group(0) if tail else "",
                "start": round(s.start * 1000),
                "end": round(s.end * 1000),
                "ts_list": [[round(w.start * 1000), round(w.end * 1000)] for w in s.words],
            }
        )
    return out
