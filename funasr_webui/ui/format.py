"""Text the page shows, formatted in its language: durations, sizes, times, tables of sentences, error messages."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from .. import writers
from ..errors import UserError
from ..helpers import format_duration
from ..history import Record
from ..i18n import t, ui
from ..messages import error_message
from ..speakers import display_name
from ..transcript import Transcript
from .tags import cell_badges, tags_summary

PREVIEW_CHARS = 60

# Native names need no translation; other Whisper languages are listed by code.
LANGUAGE_NAMES = {
    "zh": "中文 (zh)",
    "en": "English (en)",
    "yue": "粵語 (yue)",
    "ja": "日本語 (ja)",
    "ko": "한국어 (ko)",
    "fr": "Français (fr)",
    "de": "Deutsch (de)",
    "es": "Español (es)",
    "ru": "Русский (ru)",
}

# the engines as the model selector, header and History filter name them
ENGINE_LABELS = {
    "paraformer": "Paraformer",
    "fun-asr-nano": "Fun-ASR-Nano",
    "fun-asr-mlt-nano": "Fun-ASR-MLT-Nano",
    "sensevoice": "SenseVoice-Small",
    "whisper": "Whisper base",
}

_MD_SPECIAL = re.compile(r"([\\`*_\[\]()#!|~])")  # what could make emphasis, links, code or tables


def esc(text: Any) -> str:
    """User text made inert for gr.Markdown: HTML escaped, Markdown syntax backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False)).replace("\n", " ")


def fmt_timestamp(seconds: float) -> str:
    return writers.format_timestamp(seconds, always_hours=False)


def fmt_time(dt: datetime) -> str:
    return dt.astimezone().strftime("%Y-%m-%d %H:%M")


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- failures


def failure_text(exc: BaseException, lang: str) -> str:
    """What the user reads for a failure: our bilingual message, or a short type name, never a traceback."""
    if isinstance(exc, UserError):
        return exc.message(lang)
    return t("msg_unexpected", lang, error=type(exc).__name__)


def strip_name(message: str, name: str) -> str:
    """A decoder message without its leading file name (shown in its own column already)."""
    return message.removeprefix(name + ": ").removeprefix(name + "：")


def stored_error(rec: Record, lang: str) -> str:
    """A failure from History in the reader's language, from its stored code; records saved before codes were
    kept show their stored (English) text."""
    if rec.error_code:
        try:
            return error_message(rec.error_code, lang, filename=rec.title, error=rec.error)
        except ValueError:  # a code this version no longer knows
            pass
    return rec.error


def warn_status(message: str) -> str:
    return "⚠ " + esc(message)


# --------------------------------------------------------------------------- choices and tables


def language_choices(languages: Sequence[str]) -> list[tuple[Any, str]]:
    """The language dropdown: auto-detect first, then the common languages by name, then the rest by code."""
    common = [code for code in LANGUAGE_NAMES if code in languages]
    rest = sorted(code for code in languages if code not in LANGUAGE_NAMES)
    return [(ui("lang_auto"), "auto")] + [(LANGUAGE_NAMES[c], c) for c in common] + [(c, c) for c in rest]


def segment_headers(lang: str, speakers: bool = False) -> list[str]:
    """Start, end, (speaker,) text."""
    middle = [t("col_speaker", lang)] if speakers else []
    return [t("col_start", lang), t("col_end", lang), *middle, t("col_text", lang)]


# A light background per speaker (in order of first appearance), dark text stays readable on each.
SPEAKER_COLOURS = (
    "#dbeafe",
    "#dcfce7",
    "#fef3c7",
    "#fce7f3",
    "#ede9fe",
    "#cffafe",
    "#fee2e2",
    "#e0e7ff",
    "#ecfccb",
    "#f5f5f4",
)


def segments_frame(transcript: Transcript | None, lang: str) -> Any:
    """The sentences with their times (and tags as badges); with speakers, a speaker column coloured per speaker
    (a pandas Styler, which Gradio's table shows with the colours)."""
    segments = transcript.segments if transcript else []
    if transcript is None or not any(s.speaker for s in segments):
        rows = [[fmt_timestamp(s.start), fmt_timestamp(s.end), cell_badges(s.tags, lang) + s.text] for s in segments]
        return pd.DataFrame(rows, columns=segment_headers(lang))
    rows = [
        [
            fmt_timestamp(s.start),
            fmt_timestamp(s.end),
            display_name(transcript, s.speaker) if s.speaker else "",
            cell_badges(s.tags, lang) + s.text,
        ]
        for s in segments
    ]
    return coloured(pd.DataFrame(rows, columns=segment_headers(lang, speakers=True)))


def coloured(frame: pd.DataFrame) -> Any:
    """The speaker column (the third) with a background colour per name, in order of first appearance."""
    column = frame.columns[2]
    order = {name: i for i, name in enumerate(dict.fromkeys(n for n in frame[column] if n))}

    def colour(name: Any) -> str:
        if name not in order:
            return ""
        return f"background-color: {SPEAKER_COLOURS[order[name] % len(SPEAKER_COLOURS)]}; font-weight: 600"

    return frame.style.map(colour, subset=[column])


def stats_line(transcript: Transcript, lang: str) -> str:
    speed = transcript.duration / transcript.elapsed if transcript.elapsed > 0 else 0.0
    line = t(
        "stats",
        lang,
        duration=format_duration(transcript.duration, lang),
        elapsed=format_duration(transcript.elapsed, lang),
        speed=f"{speed:.1f}",
    )
    tags = tags_summary(transcript, lang)  # SenseVoice's emotions and sounds, as badges
    return line + ("  \n" + tags if tags else "")


def relabel(frame: Any, headers: list[str]) -> Any:
    """The same table with headers in another language (the language switch); left alone if it does not fit."""
    if isinstance(frame, pd.DataFrame) and len(frame.columns) == len(headers):
        frame = frame.copy()
        frame.columns = headers
    return frame


def relabel_segments(frame: Any, lang: str) -> Any:
    """A sentence table in another language, with or without its speaker column (coloured again)."""
    if isinstance(frame, pd.DataFrame) and len(frame.columns) == 4:
        return coloured(relabel(frame, segment_headers(lang, speakers=True)))
    return relabel(frame, segment_headers(lang))
