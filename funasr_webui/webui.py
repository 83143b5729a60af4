"""The web page: Gradio Blocks whose callbacks are thin wrappers over the service functions the CLI and API use.

Each callback parses the inputs, calls the service, and formats the outputs in the page's language
(``lang``: "zh" or "en", sent by the language switch with every request). User text (transcripts, file
names) only reaches components that escape it (Textbox, Dataframe); Markdown built here escapes it first.
"""

from __future__ import annotations

import html
import logging
import os
import platform
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from . import __version__, tempfiles, writers
from .audio import CODES as AUDIO_ERROR_CODES
from .audio import SAMPLE_RATE, AudioError
from .errors import UserError
from .history import EXPORT_FORMATS, Page, Record, write_transcripts_zip
from .i18n import gradio_i18n, lang_of, t, ui
from .live import LiveState, to_mono_16k
from .service import Outcome, TranscriptionService
from .transcript import Segment, Transcript

log = logging.getLogger(__name__)

HISTORY_PAGE_SIZE = 20
PREVIEW_CHARS = 60
TEMP_MAX_AGE_S = 3600  # per-request download folders older than this are removed
LANG_STORAGE_KEY = "funasr-webui-lang"
REDRAW_MARK = "redraw"  # sent by the page's script after it changed Gradio's locale
TAB_KEYS = ("tab_single", "tab_batch", "tab_mic", "tab_history", "tab_system")
PROGRESS = gr.Progress()  # Gradio spots a progress parameter by this default value
LIVE_STREAM_EVERY_S = 0.5  # the browser sends the microphone in chunks this long (the page's shortest delay)
# How long one live stream event may run. Gradio ends the event then; a microphone still recording opens a new one
# with its next chunk and the dictation goes on in the same per-session State (about one chunk is lost at the seam).
LIVE_TIME_LIMIT_S = 3 * 3600
LIVE_JUST_OPENED_S = 2.0  # an open dictation with no more audio than this belongs to the recording now starting
LIVE_FEED_MAX_S = 4.0  # a backlog goes into the recognizer in pieces this long (see live_feed)
LIVE_MAX_AHEAD_S = 30.0  # audio may arrive this far ahead of the clock (bursts after a stall) before it is dropped
LIVE_MAX_BACKLOG_S = 120.0  # audio waiting for a busy recognizer past this is dropped: memory stays bounded
LIVE_BEHIND_S = 3.0  # the status says how far recognition lags behind the microphone from this many seconds
PARTIAL_MARK = "▌"  # starts the line of the sentence still being spoken (it may change)

# System fonts only: the page must not fetch web fonts (air-gapped servers). CJK fonts first for Chinese text.
SYSTEM_FONTS = [
    "system-ui",
    "-apple-system",
    "Segoe UI",
    "PingFang SC",
    "Hiragino Sans GB",
    "Microsoft YaHei",
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "Helvetica Neue",
    "Arial",
    "sans-serif",
]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Noto Sans Mono CJK SC", "monospace"]

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

CSS = """
#app-header { align-items: center; }
#app-title h1 { margin: 0 0 2px 0; font-size: 1.55rem; }
#app-title p { margin: 0; color: var(--body-text-color-subdued); }
#lang-switch { max-width: 230px; min-width: 200px; }
#engine-line p { margin: 0; }
#engine-notice { border-left: 4px solid #d97706; background: #fffbeb; padding: 8px 14px; border-radius: 6px; }
.dark #engine-notice { background: #3b2f12; }
#engine-notice p { margin: 2px 0; }
.hint p, .hint { font-size: var(--text-sm); color: var(--body-text-color-subdued); margin: 0; }
.status p { margin: 0; }
.table-wrap :is(table, th, td, .cell-wrap) { font-family: var(--font); }  /* Gradio's default: monospace */
.confirm-row { border: 1px solid #dc2626; border-radius: 8px; padding: 6px 10px; align-items: center; }
"""

# Switching the browser-side language: Gradio's own locale switch (the one its Settings panel uses), reached
# through the already-loaded core module, so labels change at once without a reload. The choice is kept in
# localStorage; without one the page follows the browser's language.
_LOCALE_JS = """
const KEY = "__KEY__";
const REDRAW = "__REDRAW__";
async function setLocale(lang) {
  const locale = lang === "zh" ? "zh-CN" : "en";
  try {
    const urls = performance.getEntriesByType("resource").map((e) => e.name);
    document.querySelectorAll("link[rel=modulepreload], script[src]").forEach((el) => urls.push(el.href || el.src));
    const url = urls.find((u) => /\\/assets\\/core-[\\w-]+\\.js$/.test(u || ""));
    if (url) {
      const core = await import(url);
      await core.changeLocale(locale);
    }
  } catch (err) {
    console.warn("language switch failed", err);
  }
}
const isZh = (s) => (s || "").toLowerCase().startsWith("zh");
""".replace("__KEY__", LANG_STORAGE_KEY).replace("__REDRAW__", REDRAW_MARK)

LOAD_JS = (
    "async (...args) => {"
    + _LOCALE_JS
    + """
  const stored = localStorage.getItem(KEY);
  const lang = stored === "zh" || stored === "en" ? stored : (isZh(navigator.language) ? "zh" : "en");
  args[0] = lang;
  if (isZh(document.documentElement.lang) !== (lang === "zh")) {
    await setLocale(lang);
    args[args.length - 1] = REDRAW;
  }
  return args;
}"""
)

SWITCH_JS = (
    "async (...args) => {"
    + _LOCALE_JS
    + """
  localStorage.setItem(KEY, args[0]);
  await setLocale(args[0]);
  args[args.length - 1] = REDRAW;
  return args;
}"""
)


# --------------------------------------------------------------------------- formatting helpers

_MD_SPECIAL = re.compile(r"([\\`*_\[\]()#!|~])")  # what could make emphasis, links, code or tables


def esc(text: Any) -> str:
    """User text made inert for gr.Markdown: HTML escaped, Markdown syntax backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False)).replace("\n", " ")


def fmt_seconds(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} 秒" if lang == "zh" else f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def fmt_timestamp(seconds: float) -> str:
    return writers.format_timestamp(seconds, always_hours=False)


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def fmt_time(dt: datetime) -> str:
    return dt.astimezone().strftime("%Y-%m-%d %H:%M")


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def safe_stem(name: str, fallback: str = "transcript") -> str:
    """A download file name from an uploaded file's name: letters (CJK too), digits, - and _ only."""
    stem = Path(str(name).replace("\\", "/")).stem
    stem = re.sub(r"[^\w\-]+", "_", stem).strip("._-")
    return stem[:80] or fallback


def error_message(exc: BaseException, lang: str) -> str:
    """What the user reads for a failure: our bilingual message, or a short type name, never a traceback."""
    if isinstance(exc, UserError | AudioError):
        return exc.message(lang)
    return t("msg_unexpected", lang, error=type(exc).__name__)


def strip_name(message: str, name: str) -> str:
    """A decoder message without its leading file name (shown in its own column already)."""
    return message.removeprefix(name + ": ").removeprefix(name + "：")


def stored_error(error: str, source: str, lang: str) -> str:
    """A failure reason from History (kept in English) in the page's language when it is a known file problem."""
    for code in AUDIO_ERROR_CODES:
        known = AudioError(code, source)
        if known.message("en") == error:
            return known.message(lang)
    return error


def report_progress(options: Any, progress: Any, desc: str, index: int = 0, total: int = 1) -> None:
    """Feed the engine's progress (fraction of the audio done) to Gradio's bar; in a batch, of the whole batch."""
    progress(index / total, desc=desc)
    options.progress = lambda done: progress((index + min(1.0, done)) / total, desc=desc)


def warn(message: str, lang: str) -> None:
    """A toast in the page's language (Gradio shows toasts only for queued events; 6.31 heads them with its own
    English word and ignores the title)."""
    gr.Warning(message, title=t("toast_warning", lang))


def info(message: str, lang: str) -> None:
    gr.Info(message, title=t("toast_info", lang))


def warn_status(message: str) -> str:
    return "⚠ " + esc(message)


def language_choices(languages: Sequence[str]) -> list[tuple[Any, str]]:
    """The language dropdown: auto-detect first, then the common languages by name, then the rest by code."""
    common = [code for code in LANGUAGE_NAMES if code in languages]
    rest = sorted(code for code in languages if code not in LANGUAGE_NAMES)
    return [(ui("lang_auto"), "auto")] + [(LANGUAGE_NAMES[c], c) for c in common] + [(c, c) for c in rest]


def segments_frame(transcript: Transcript | None, lang: str) -> pd.DataFrame:
    rows = [[fmt_timestamp(s.start), fmt_timestamp(s.end), s.text] for s in (transcript.segments if transcript else [])]
    return pd.DataFrame(rows, columns=[t("col_start", lang), t("col_end", lang), t("col_text", lang)])


def stats_line(transcript: Transcript, lang: str) -> str:
    speed = transcript.duration / transcript.elapsed if transcript.elapsed > 0 else 0.0
    return t(
        "stats",
        lang,
        duration=fmt_seconds(transcript.duration, lang),
        elapsed=fmt_seconds(transcript.elapsed, lang),
        speed=f"{speed:.1f}",
    )


def relabel(frame: Any, headers: list[str]) -> Any:
    """The same table with headers in another language (the language switch); left alone if it does not fit."""
    if isinstance(frame, pd.DataFrame) and len(frame.columns) == len(headers):
        frame = frame.copy()
        frame.columns = headers
    return frame


# --------------------------------------------------------------------------- the page's Blocks


class PageBlocks(gr.Blocks):
    """Blocks that carry their own theme, CSS, footer and run-history setting through ``gr.mount_gradio_app``.

    mount_gradio_app() assigns these from its own arguments, falling back to Gradio's defaults (a theme with
    bundled fonts, the "Built with Gradio" footer, run history kept in the browser). Pinning them here keeps
    ``create_app``'s plain ``mount_gradio_app(app, blocks, path="/")`` private and offline."""

    def pin(self, **values: Any) -> None:
        self.__dict__["_pinned"] = values
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        pinned = self.__dict__.get("_pinned")
        if pinned is not None and name in pinned:
            value = pinned[name]
        super().__setattr__(name, value)


def page_theme() -> gr.themes.Base:
    return gr.themes.Default(primary_hue="blue", font=SYSTEM_FONTS, font_mono=MONO_FONTS)


@dataclass
class ResultView:
    """The outputs a finished recognition fills in (single file and microphone)."""

    status: gr.Markdown
    text: gr.Textbox
    stats: gr.Markdown
    segments: gr.Dataframe
    downloads: list[gr.DownloadButton] = field(default_factory=list)

    def outputs(self) -> list[gr.components.Component]:
        return [self.status, self.text, self.stats, self.segments, *self.downloads]


@dataclass
class BatchResults:
    """What a batch produced, kept per browser session to rebuild the zip in another format."""

    done: list[tuple[str, Transcript]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


@dataclass(eq=False)
class LiveSession:
    """One browser session's dictation, kept in its gr.State: the LiveState (VAD cache, audio, sentences) and what
    the page needs around it.

    The stream callback only drops each chunk into ``inbox`` and returns at once: Gradio keeps only the newest
    chunk that arrives while the callback is still running, so a callback that waited for the recognizer would
    lose the audio spoken meanwhile. A worker thread feeds the inbox to the LiveState; ``lock`` keeps it, Stop and
    a closed tab from working on the LiveState at the same time."""

    state: LiveState
    name: str  # file name of the downloads
    session_hash: str | None = None  # the browser session, to find it again when the tab goes away
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # guards state
    inbox: list[np.ndarray] = field(default_factory=list, repr=False)  # 16 kHz chunks not fed yet
    inbox_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # guards inbox, feeding
    feeding: bool = False  # a worker thread is emptying the inbox
    heard: float = 0.0  # seconds of audio received from the browser
    dropped: float = 0.0  # seconds refused: faster than real time, or past the backlog bound
    opened: float = field(default_factory=time.monotonic)
    # What the page shows, written by whoever holds the lock (one assignment, so always whole): text, sentences
    view: tuple[str, tuple[Segment, ...]] = ("", ())
    shown_sentences: int = 0  # sentences in the page's table (sent again only when one is added)
    failure: BaseException | None = None  # the last chunk's model error, shown once
    # The dictation's job in History, opened at its first finished sentence (once: None if History is read-only)
    job: int | None = None
    job_opened: bool = False

    def refresh(self) -> None:
        """Called with the lock held, after the state changed."""
        self.view = (live_display(self.state), tuple(self.state.sentences))


def live_display(state: LiveState) -> str:
    """Finished sentences, then the sentence still being spoken on its own line after the mark."""
    final = state.joiner.join(s.text for s in state.sentences)
    if not state.partial:
        return final
    return (final + "\n" if final else "") + f"{PARTIAL_MARK} {state.partial}"


class WebUI:
    """The page's callbacks (plain methods, callable from tests) and the code that lays the page out."""

    def __init__(self, service: TranscriptionService) -> None:
        self.service = service
        self.settings = service.settings
        self.tmp_root = Path(tempfile.mkdtemp(prefix=tempfiles.prefix("page")))
        self.uploads: list[gr.File] = []  # upload boxes, redrawn when the language changes
        self.live = service.live
        # Dictations under way by browser session, so that a tab closed mid-dictation can be found and saved
        self.live_sessions: dict[str, LiveSession] = {}
        self.live_sessions_lock = threading.Lock()

    # ------------------------------------------------------------------ files for download

    def request_dir(self) -> Path:
        """A fresh folder for one request's downloads; old ones are removed (Gradio keeps its own copy)."""
        cutoff = time.time() - TEMP_MAX_AGE_S
        for old in self.tmp_root.iterdir():
            try:
                if old.stat().st_mtime < cutoff:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass
        return Path(tempfile.mkdtemp(dir=self.tmp_root))

    def write_downloads(self, transcript: Transcript, name: str) -> dict[str, Path]:
        folder = self.request_dir()
        stem = safe_stem(name)
        paths = {}
        for fmt in writers.FORMATS:
            path = folder / f"{stem}.{fmt}"
            path.write_text(writers.render(transcript, fmt), encoding="utf-8")
            paths[fmt] = path
        return paths

    # ------------------------------------------------------------------ results (single file, microphone)

    def result_values(self, transcript: Transcript, name: str, lang: str, status: str) -> list[Any]:
        paths = self.write_downloads(transcript, name)
        downloads = [gr.update(value=str(paths[fmt]), interactive=True) for fmt in writers.FORMATS]
        return [status, transcript.text, stats_line(transcript, lang), segments_frame(transcript, lang), *downloads]

    def empty_result(self, lang: str, status: str) -> list[Any]:
        downloads = [gr.update(value=None, interactive=False) for _ in writers.FORMATS]
        return [status, "", "", segments_frame(None, lang), *downloads]

    def failure(self, exc: BaseException, lang: str) -> list[Any]:
        if not isinstance(exc, UserError | AudioError):
            log.exception("web request failed")
        message = error_message(exc, lang)
        warn(message, lang)
        return self.empty_result(lang, warn_status(message))

    @staticmethod
    def done_status(outcome: Outcome, lang: str) -> str:
        if outcome.save_error:
            return warn_status(t("msg_done_unsaved", lang, error=outcome.save_error))
        if not outcome.transcript.segments and not outcome.transcript.text:
            return "ℹ " + t("msg_no_speech", lang)
        return "✔ " + t("msg_done", lang)

    # ------------------------------------------------------------------ single file

    def single_start(
        self, file: str | None, hotwords: str, itn: bool, language: str, lang: str, progress: gr.Progress = PROGRESS
    ) -> list[Any]:
        """Start: shows an earlier result of the same file with the same settings instead of redoing it."""
        return self._single(file, hotwords, itn, language, lang, False, progress)

    def single_rerun(
        self, file: str | None, hotwords: str, itn: bool, language: str, lang: str, progress: gr.Progress = PROGRESS
    ) -> list[Any]:
        return self._single(file, hotwords, itn, language, lang, True, progress)

    def _single(
        self, file: str | None, hotwords: str, itn: bool, language: str, lang: str, force: bool, progress: Any
    ) -> list[Any]:
        lang = lang_of(lang)
        hide_rerun = gr.update(visible=False)
        if not file:
            warn(t("msg_no_file", lang), lang)
            return [*self.empty_result(lang, warn_status(t("msg_no_file", lang))), hide_rerun]
        path = Path(file)
        try:
            options = self.service.options(hotwords, itn, language)
            earlier = None if force else self.service.previous(path, options)
            if earlier is not None:
                status = "ℹ " + t("msg_previous", lang, when=fmt_time(earlier.created_at))
                values = self.result_values(earlier.transcript(), path.name, lang, status)
                return [*values, gr.update(visible=True)]
            report_progress(options, progress, t("msg_working", lang))
            outcome = self.service.transcribe_file(path, name=path.name, source=path.name, options=options)
        except Exception as e:  # every failure becomes a message; the server keeps serving
            return [*self.failure(e, lang), hide_rerun]
        return [*self.result_values(outcome.transcript, path.name, lang, self.done_status(outcome, lang)), hide_rerun]

    # ------------------------------------------------------------------ microphone

    def mic_recognize(
        self,
        recording: str | None,
        hotwords: str,
        itn: bool,
        language: str,
        lang: str,
        progress: gr.Progress = PROGRESS,
    ) -> list[Any]:
        lang = lang_of(lang)
        if not recording:
            warn(t("msg_no_recording", lang), lang)
            return self.empty_result(lang, warn_status(t("msg_no_recording", lang)))
        # The browser's recording arrives as a file; decoding it like an upload resamples it to 16 kHz and
        # lets History keep a copy for playback (keep_audio). The source stays "microphone".
        name = f"recording-{datetime.now():%Y%m%d-%H%M%S}.wav"
        try:
            options = self.service.options(hotwords, itn, language)
            report_progress(options, progress, t("msg_working", lang))
            outcome = self.service.transcribe_file(recording, name=name, source="microphone", options=options)
        except Exception as e:
            return self.failure(e, lang)
        return self.result_values(outcome.transcript, name, lang, self.done_status(outcome, lang))

    # ------------------------------------------------------------------ live dictation

    def live_start(
        self,
        session: LiveSession | None,
        hotwords: str,
        itn: bool,
        language: str,
        lang: str,
        request: gr.Request | None = None,
    ) -> list[Any]:
        """Record pressed in live mode: a fresh LiveState for this browser session, options checked once, here.

        Returns [session, live result view..., mode switch] (the switch is locked while dictating)."""
        lang = lang_of(lang)
        if isinstance(session, LiveSession) and not self.just_opened(session):
            self.live_close(session)  # one never stopped (its stop event was lost): saved, not dropped
        try:
            session = self.live_open(hotwords, itn, language, request)
        except Exception as e:
            return [None, *self.failure(e, lang), gr.update(interactive=True)]
        return [session, *self.empty_result(lang, self.live_status(session, lang)), gr.update(interactive=False)]

    def live_open(self, hotwords: str, itn: bool, language: str, request: gr.Request | None) -> LiveSession:
        """A new dictation for this browser session; raises UserError for options the user must change.

        The start event and the first chunk can reach the server in either order: whichever comes second gets
        the dictation the first one opened (one LiveState per recording, however they race)."""
        options = self.service.options(hotwords, itn, language)
        session_hash = getattr(request, "session_hash", None)
        with self.live_sessions_lock:
            current = self.live_sessions.get(session_hash or "")
            if current is not None and self.just_opened(current):
                return current
            running = len(self.live_sessions) - (current is not None)
            if running >= self.settings.max_live_sessions:
                raise UserError(
                    "live_busy",
                    t("msg_live_busy", "en", count=running, limit=self.settings.max_live_sessions),
                    t("msg_live_busy", "zh", count=running, limit=self.settings.max_live_sessions),
                    status=503,
                )
            session = LiveSession(self.live.start(options), f"dictation-{datetime.now():%Y%m%d-%H%M%S}", session_hash)
            if session_hash:
                self.live_sessions[session_hash] = session
        return session

    @staticmethod
    def just_opened(session: LiveSession) -> bool:
        """Opened by this recording's first chunk moments ago (not one left over from an earlier recording)."""
        return not session.state.finished and not session.view[1] and session.heard <= LIVE_JUST_OPENED_S

    def live_stream(
        self,
        chunk: tuple[int, np.ndarray] | None,
        session: LiveSession | None,
        hotwords: str,
        itn: bool,
        language: str,
        lang: str,
        request: gr.Request | None = None,
    ) -> list[Any]:
        """One chunk of the microphone (every LIVE_STREAM_EVERY_S): queue it for the worker, show where it is.

        Returns [text, status, sentences table, session]; gr.skip() leaves that part of the page as it is."""
        lang = lang_of(lang)
        keep = [gr.skip(), gr.skip(), gr.skip(), session]
        if session is None:  # the first chunk overtook the start event: open here, the start event keeps it
            try:
                session = self.live_open(hotwords, itn, language, request)
            except Exception as e:  # the start event has said why already, as a toast
                return [gr.skip(), warn_status(error_message(e, lang)), gr.skip(), None]
        if not isinstance(session, LiveSession) or chunk is None or session.state.finished:
            return keep  # finished: a chunk that was on its way when Stop was pressed
        rate, samples = chunk
        self.live_enqueue(session, to_mono_16k(samples, rate))
        text, sentences = session.view
        table: Any = gr.skip()
        if len(sentences) != session.shown_sentences:
            session.shown_sentences = len(sentences)
            table = segments_frame(Transcript(text="", raw_text="", segments=list(sentences)), lang)
        failure, session.failure = session.failure, None
        status = warn_status(error_message(failure, lang)) if failure else self.live_status(session, lang)
        return [text, status, table, session]

    def live_status(self, session: LiveSession, lang: str) -> str:
        status = t("status_live_listening", lang, duration=fmt_seconds(session.heard, lang), count=len(session.view[1]))
        behind = session.heard - session.state.received
        if behind >= LIVE_BEHIND_S:  # a slow computer (or a long file job holding the recognizer) falls behind
            status += " · " + t("status_live_behind", lang, behind=fmt_seconds(behind, lang))
        if session.dropped:
            status += " · " + t("status_live_dropped", lang, dropped=fmt_seconds(session.dropped, lang))
        return status

    def live_enqueue(self, session: LiveSession, audio: np.ndarray) -> None:
        """Queue 16 kHz audio for the session's worker, starting one if none is running."""
        seconds = audio.size / SAMPLE_RATE
        with session.inbox_lock:
            ahead = session.heard + seconds - (time.monotonic() - session.opened)
            if ahead > LIVE_MAX_AHEAD_S or session.heard - session.state.received > LIVE_MAX_BACKLOG_S:
                session.dropped += seconds  # a client pushing audio faster than anyone speaks, or a stalled worker
                return
            session.inbox.append(audio)
            session.heard += seconds
            if session.feeding:
                return
            session.feeding = True
        threading.Thread(target=self.live_worker, args=(session,), name="live-feed", daemon=True).start()

    def live_worker(self, session: LiveSession) -> None:
        """Feed the inbox to the LiveState until it is empty. What piled up while the recognizer was busy goes in
        together (see live_feed): a few VAD passes and partials for all of it, so a slow computer catches up."""
        while True:
            with session.lock:  # taken before the inbox, so Stop never overtakes chunks already taken out of it
                with session.inbox_lock:
                    if not session.inbox:
                        session.feeding = False
                        return
                    chunks, session.inbox = session.inbox, []
                if session.state.finished:
                    continue  # a chunk that came in while Stop was finishing: the dictation is closed
                try:
                    self.live_feed(session.state, chunks)
                except Exception as e:  # a model error: what was finished stays; the next chunk goes on
                    log.exception("live dictation chunk failed")
                    session.failure = e
                session.refresh()
                if not session.job_opened and session.state.sentences:  # something said: a crash now is reported
                    session.job_opened = True
                    session.job = self.service.start_job("microphone", "", session.state.options, name=session.name)

    def live_feed(self, state: LiveState, chunks: list[np.ndarray]) -> None:
        """Queued chunks into the LiveState, in pieces of at most LIVE_FEED_MAX_S: few calls when catching up, yet
        a monologue is still cut near the maximum utterance length (checked once per call)."""
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        step = int(LIVE_FEED_MAX_S * SAMPLE_RATE)
        for i in range(0, audio.size, step):
            self.live.feed(state, audio[i : i + step], SAMPLE_RATE)

    def live_stop(self, session: LiveSession | None, lang: str) -> list[Any]:
        """Stop pressed: finish the last sentence, save the dictation once, offer its downloads.

        Returns [live result view..., session, mode switch]."""
        lang = lang_of(lang)
        unlock = gr.update(interactive=True)
        if not isinstance(session, LiveSession):
            return [*self.empty_result(lang, t("status_live_idle", lang)), session, unlock]
        try:
            record_id = self.live_close(session)
            transcript = self.live.transcript(session.state)
        except Exception as e:
            return [*self.failure(e, lang), session, unlock]
        if transcript is None:
            return [*self.empty_result(lang, "ℹ " + t("msg_live_nothing", lang)), session, unlock]
        if record_id is None:
            status = warn_status(t("msg_live_unsaved", lang))
        else:
            status = "✔ " + t("msg_live_saved", lang, id=record_id)
        return [*self.result_values(transcript, session.name, lang, status), session, unlock]

    def live_stopping(self, session: LiveSession | None, lang: str) -> Iterator[list[Any]]:
        """live_stop for the page: says at once that it is finishing (the last sentence takes the recognizer a
        moment), then shows the result."""
        if isinstance(session, LiveSession) and not session.state.finished:
            status = "⏳ " + t("status_live_finishing", lang_of(lang))
            rest = len(self.empty_result("en", ""))  # the view but its status, and the session: left as they are
            yield [status, *[gr.skip()] * rest, gr.update(interactive=False)]  # the mode switch stays locked
        yield self.live_stop(session, lang)

    def live_close(self, session: LiveSession) -> int | None:
        """Feed what is still queued, finish, save once (however often this is called): the record id, or None
        when nothing was said (or saving failed)."""
        with session.lock:
            with session.inbox_lock:
                chunks, session.inbox = session.inbox, []
            state = session.state
            if not state.finished:
                try:
                    self.live_feed(state, chunks)
                    self.live.finish(state)
                except Exception:  # the last sentence is lost; the finished ones are still saved
                    log.exception("finishing a live dictation failed; saving the finished sentences")
                    state.partial, state.finished = "", True
                session.refresh()
            record_id = self.service.save_live(state, session.job)
        with self.live_sessions_lock:
            if session.session_hash and self.live_sessions.get(session.session_hash) is session:
                del self.live_sessions[session.session_hash]
        return record_id

    def live_unload(self, request: gr.Request) -> None:
        """The browser went away (tab closed or reloaded, connection lost): save a dictation it left running.
        Gradio calls this as soon as the page's heartbeat connection drops."""
        with self.live_sessions_lock:
            session = self.live_sessions.pop(getattr(request, "session_hash", None) or "", None)
        if session is not None:
            self.live_close(session)

    def live_expired(self, value: Any) -> threading.Thread | None:
        """gr.State's delete_callback, when Gradio drops a closed session's State (an hour after the tab went
        away): a dictation still open then, one live_unload did not see, is saved. Gradio calls this on its event
        loop and finishing runs the recognizer, so it runs in a thread (returned, for tests)."""
        if not isinstance(value, LiveSession) or value.state.finished:
            return None
        thread = threading.Thread(target=self.live_close, args=(value,), name="live-expired", daemon=True)
        thread.start()
        return thread

    def relabel_segments(self, lang: str, frame: Any) -> Any:
        """The live sentences table with headers in the page's language."""
        lang = lang_of(lang)
        return relabel(frame, [t("col_start", lang), t("col_end", lang), t("col_text", lang)])

    @staticmethod
    def mic_mode(mode: str) -> list[Any]:
        """Shows the controls and results of the chosen way: [record controls, Recognize again, record results,
        live controls, live results]."""
        live = mode == "live"
        return [gr.update(visible=not live)] * 3 + [gr.update(visible=live)] * 2

    # ------------------------------------------------------------------ batch

    def batch_headers(self, lang: str) -> list[str]:
        return [t(k, lang) for k in ("col_file", "col_duration", "col_status", "col_preview", "col_elapsed")]

    def batch_run(
        self,
        files: list[str] | None,
        hotwords: str,
        itn: bool,
        language: str,
        fmt: str,
        lang: str,
        progress: gr.Progress = PROGRESS,
    ) -> Iterator[list[Any]]:
        """Transcribe each file in turn, updating the table after each; a bad file fails alone."""
        lang = lang_of(lang)
        headers = self.batch_headers(lang)
        no_zip = gr.update(value=None, interactive=False)
        files = list(files or [])
        problem = None
        if not files:
            problem = t("msg_no_files", lang)
        elif len(files) > self.settings.max_batch_files:
            problem = t("msg_too_many_files", lang, count=len(files), max=self.settings.max_batch_files)
        if problem is None:
            try:
                options = self.service.options(hotwords, itn, language)
            except Exception as e:
                problem = error_message(e, lang)
        if problem is not None:
            warn(problem, lang)
            yield [warn_status(problem), pd.DataFrame([], columns=headers), no_zip, BatchResults()]
            return
        names = [Path(f).name for f in files]
        rows = [[name, "", t("st_waiting", lang), "", ""] for name in names]
        results = BatchResults()
        for index, (path, name) in enumerate(zip(files, names, strict=True)):
            status = t("msg_batch_progress", lang, index=index + 1, total=len(files), name=name)
            report_progress(options, progress, status, index, len(files))
            rows[index][2] = t("st_running", lang)
            yield ["▶ " + esc(status), pd.DataFrame(rows, columns=headers), no_zip, results]
            rows[index] = self._batch_one(path, name, options, lang, results)
        summary = t("msg_batch_summary", lang, total=len(files), done=len(results.done), failed=len(results.failed))
        zip_path = self.batch_zip(results, fmt, lang)
        icon = "✔ " if not results.failed else "⚠ "
        yield [icon + esc(summary), pd.DataFrame(rows, columns=headers), self._zip_update(zip_path), results]

    def _batch_one(self, path: str, name: str, options: Any, lang: str, results: BatchResults) -> list[str]:
        try:
            outcome = self.service.transcribe_file(path, name=name, source=name, options=options)
        except Exception as e:  # transcribe_file already saved the failure to History
            if not isinstance(e, UserError | AudioError):
                log.exception("batch file %s failed", name)
            reason = strip_name(error_message(e, lang), name)
            results.failed.append((name, reason))
            return [name, "—", t("st_failed", lang, reason=reason), "", "—"]
        tr = outcome.transcript
        results.done.append((name, tr))
        status = t("st_done", lang) if not outcome.save_error else t("msg_done_unsaved", lang, error=outcome.save_error)
        return [name, fmt_seconds(tr.duration, lang), status, preview(tr.text), fmt_seconds(tr.elapsed, lang)]

    def batch_zip(self, results: BatchResults, fmt: str, lang: str) -> Path | None:
        """One file per finished recording in ``fmt``, plus a list of the files that failed and why."""
        if not results.done and not results.failed:
            return None
        fmt = fmt if fmt in writers.FORMATS else "txt"
        path = self.request_dir() / f"transcripts-{fmt}-{datetime.now():%Y%m%d-%H%M%S}.zip"
        extra = []
        if results.failed:
            lines = [f"{name}\t{reason}" for name, reason in results.failed]
            extra.append(("failed.txt", t("zip_failed_list", lang) + "\n" + "\n".join(lines) + "\n"))
        write_transcripts_zip(path, [(safe_stem(name), tr) for name, tr in results.done], fmt, extra)
        return path

    @staticmethod
    def _zip_update(path: Path | None) -> Any:
        return gr.update(value=str(path) if path else None, interactive=path is not None)

    def batch_format_changed(self, results: BatchResults | None, fmt: str, lang: str) -> Any:
        return self._zip_update(self.batch_zip(results or BatchResults(), fmt, lang_of(lang)))

    # ------------------------------------------------------------------ history

    def history_headers(self, lang: str) -> list[str]:
        return [t(k, lang) for k in ("col_id", "col_time", "col_source", "col_duration", "col_preview")]

    def source_label(self, source: str, lang: str) -> str:
        return t("src_microphone", lang) if source == "microphone" else source

    def history_row(self, rec: Record, lang: str) -> list[Any]:
        error = strip_name(stored_error(rec.error, rec.source, lang), rec.source)
        if rec.status == "done":
            text = preview(rec.text)
        elif rec.status == "interrupted":
            text = t("st_interrupted", lang)
        else:
            text = t("st_failed", lang, reason=preview(error))
        source = self.source_label(rec.source, lang)
        return [rec.id, fmt_time(rec.created_at), source, fmt_seconds(rec.duration or None, lang), text]

    @staticmethod
    def parse_filters(
        query: str, date_from: str | None, date_to: str | None, engine: str, source: str, status: str
    ) -> dict[str, Any]:
        """search() keyword arguments from the filter controls; raises ValueError for a date it cannot read."""

        def day(value: str | None) -> str | None:
            value = (value or "").strip()
            if not value:
                return None
            head = value[:10]
            date.fromisoformat(head)  # validates; ValueError for anything else
            return head

        return {
            "q": (query or "").strip(),
            "date_from": day(date_from),
            "date_to": day(date_to),
            "engine": engine or None,
            "source": (source or "").strip() or None,
            "status": status or None,
        }

    def history_page(
        self,
        query: str,
        date_from: str | None,
        date_to: str | None,
        engine: str,
        source: str,
        status: str,
        page: int,
        lang: str,
    ) -> list[Any]:
        """One page of the history table: [table, page line, page number, previous button, next button]."""
        lang = lang_of(lang)
        page = max(1, int(page or 1))
        try:
            filters = self.parse_filters(query, date_from, date_to, engine, source, status)
            result = self._search(filters, page)
            if not result.records and page > 1:  # the last page emptied by a delete: step back
                page = max(1, -(-result.total // HISTORY_PAGE_SIZE))
                result = self._search(filters, page)
        except ValueError:
            warn(t("msg_bad_date", lang), lang)
            result = Page([], 0, HISTORY_PAGE_SIZE, 0)
        rows = [self.history_row(rec, lang) for rec in result.records]
        table = pd.DataFrame(rows, columns=self.history_headers(lang))
        return [
            table,
            self.page_line(result, page, lang),
            page,
            gr.update(interactive=page > 1),
            gr.update(interactive=result.has_next),
        ]

    def _search(self, filters: dict[str, Any], page: int) -> Page:
        return self.service.search(
            filters["q"],
            **{k: v for k, v in filters.items() if k != "q"},
            limit=HISTORY_PAGE_SIZE,
            offset=(page - 1) * HISTORY_PAGE_SIZE,
        )

    @staticmethod
    def page_line(result: Page, page: int, lang: str) -> str:
        if not result.total:
            return t("hist_empty", lang)
        if not result.total_exact:
            return t("hist_page_more", lang, page=page, total=result.total)
        pages = max(1, -(-result.total // HISTORY_PAGE_SIZE))
        return t("hist_page", lang, page=page, pages=pages, total=result.total)

    def history_first(self, *args: Any) -> list[Any]:
        """Search from page 1 (new search or filters)."""
        *filters, _page, lang = args
        return self.history_page(*filters, 1, lang)

    def history_prev(self, *args: Any) -> list[Any]:
        *filters, page, lang = args
        return self.history_page(*filters, max(1, int(page or 1) - 1), lang)

    def history_next(self, *args: Any) -> list[Any]:
        *filters, page, lang = args
        return self.history_page(*filters, int(page or 1) + 1, lang)

    @staticmethod
    def last_7_days() -> tuple[str, str]:
        today = date.today()
        return (today - timedelta(days=7)).isoformat(), today.isoformat()

    @staticmethod
    def clear_filters() -> tuple[str, None, None, str, str, str]:
        return "", None, None, "", "", ""

    def detail_values(self, rec: Record | None, lang: str) -> list[Any]:
        """The selected record: [summary, text, segments, audio, 4 downloads, selected id, delete button]."""
        if rec is None:
            downloads = [gr.update(value=None, interactive=False) for _ in writers.FORMATS]
            empty = [t("hist_detail_idle", lang), "", segments_frame(None, lang), gr.update(value=None, visible=False)]
            return [*empty, *downloads, None, gr.update(interactive=False)]
        summary = self.detail_summary(rec, lang)
        if rec.status != "done":
            if rec.status == "interrupted":
                problem = t("msg_record_interrupted", lang)
            else:
                problem = t("msg_record_failed", lang, error=stored_error(rec.error, rec.source, lang))
            summary += "\n\n" + warn_status(problem)
            downloads = [gr.update(value=None, interactive=False) for _ in writers.FORMATS]
        else:
            paths = self.write_downloads(rec.transcript(), rec.source)
            downloads = [gr.update(value=str(paths[fmt]), interactive=True) for fmt in writers.FORMATS]
        audio = gr.update(value=None, visible=False)
        if rec.audio_file is not None and rec.audio_file.is_file():
            # a copy in the temp folder: Gradio serves files only from there or the working directory
            copy = self.request_dir() / f"{safe_stem(rec.source, 'recording')}{rec.audio_file.suffix}"
            shutil.copyfile(rec.audio_file, copy)
            audio = gr.update(value=str(copy), visible=True)
        segments = segments_frame(rec.transcript(), lang)
        return [summary, rec.text, segments, audio, *downloads, rec.id, gr.update(interactive=True)]

    def detail_summary(self, rec: Record, lang: str) -> str:
        return t(
            "detail_line",
            lang,
            source=esc(self.source_label(rec.source, lang)),
            time=esc(fmt_time(rec.created_at)),
            duration=esc(fmt_seconds(rec.duration, lang)),
            engine=esc(rec.engine or "—"),
            model=esc(rec.model or "—"),
            device=esc(rec.device or "—"),
            language=esc(rec.language or "—"),
            itn=t("on" if rec.itn else "off", lang),
            hotwords=esc(", ".join(rec.hotwords)) if rec.hotwords else t("none", lang),
        )

    def history_select(self, evt: gr.SelectData, lang: str) -> list[Any]:
        lang = lang_of(lang)
        try:
            record_id = int((evt.row_value or [None])[0])
        except (TypeError, ValueError):
            return self.detail_values(None, lang)
        return self.detail_values(self.service.get(record_id), lang)

    def history_delete_ask(self, selected: int | None, lang: str) -> Any:
        if selected is None:
            warn(t("msg_select_first", lang_of(lang)), lang)
            return gr.update(visible=False)
        return gr.update(visible=True)

    def history_delete(self, selected: int | None, lang: str) -> list[Any]:
        """Delete the selected record; returns [confirm row, detail outputs...]."""
        lang = lang_of(lang)
        if selected is not None:
            self.service.delete([int(selected)])
            info(t("msg_deleted", lang), lang)
        return [gr.update(visible=False), *self.detail_values(None, lang)]

    def history_export(self, fmt: str, *args: Any) -> Any:
        """Every record the current search and filters find, as one file (JSON, CSV or a zip)."""
        *filter_values, lang = args
        lang = lang_of(lang)
        try:
            filters = self.parse_filters(*filter_values)
        except ValueError:
            warn(t("msg_bad_date", lang), lang)
            return gr.update(value=None, visible=False)
        query = filters.pop("q")
        ids = self.service.search_ids(query, **filters)
        if not ids:
            warn(t("msg_export_empty", lang), lang)
            return gr.update(value=None, visible=False)
        fmt = fmt if fmt in EXPORT_FORMATS else "json"
        data = self.service.export(fmt, ids)
        suffix = "zip" if fmt.startswith("zip-") else fmt
        kind = f"-{fmt[4:]}" if fmt.startswith("zip-") else ""
        path = self.request_dir() / f"transcripts{kind}-{datetime.now():%Y%m%d-%H%M%S}.{suffix}"
        path.write_bytes(data)
        info(t("msg_exported", lang, count=len(ids)), lang)
        return gr.update(value=str(path), visible=True)

    @staticmethod
    def _days(value: Any) -> float | None:
        try:
            days = float(value)
        except (TypeError, ValueError):
            return None
        return days if days >= 0 else None

    def history_purge_ask(self, days: Any, lang: str) -> list[Any]:
        lang = lang_of(lang)
        n = self._days(days)
        if n is None:
            warn(t("msg_bad_days", lang), lang)
            return [gr.update(visible=False), ""]
        return [gr.update(visible=True), "⚠ " + t("hist_purge_confirm", lang, days=f"{n:g}")]

    def history_purge(self, days: Any, lang: str) -> Any:
        lang = lang_of(lang)
        n = self._days(days)
        if n is not None:
            removed = self.service.purge(n)
            info(t("msg_purged", lang, count=removed, days=f"{n:g}"), lang)
        return gr.update(visible=False)

    # ------------------------------------------------------------------ system

    def system_table(self, lang: str) -> pd.DataFrame:
        lang = lang_of(lang)
        rows = [(t(key, lang), value) for key, value in self.system_rows(lang)]
        return pd.DataFrame(rows, columns=[t("col_item", lang), t("col_value", lang)])

    def system_rows(self, lang: str) -> list[tuple[str, str]]:
        info = self.service.describe()
        rows = [
            ("sys_engine", info.get("engine", "")),
            ("sys_model", info.get("model", "")),
            ("sys_model_path", info.get("model_path", "")),
            ("sys_vad_model", info.get("vad_model", "")),
        ]
        if info.get("punc_model"):
            rows.append(("sys_punc_model", info["punc_model"]))
        rows.append(("sys_device", self.device_label(lang)))
        if info.get("compute_type"):
            rows.append(("sys_compute", info["compute_type"]))
        rows += self.torch_rows(lang)
        rows += [
            ("sys_cpu", str(os.cpu_count() or "?")),
            ("sys_ram", ram_usage() or t("sys_not_installed", lang)),
            ("sys_python", platform.python_version()),
            ("sys_gradio", f"{gr.__version__} (funasr-webui {__version__})"),
        ]
        rows += self.history_rows()
        return [(k, str(v)) for k, v in rows]

    def torch_rows(self, lang: str) -> list[tuple[str, str]]:
        try:
            import torch
        except ImportError:
            return [("sys_torch", t("sys_not_installed", lang))]
        rows = [("sys_torch", torch.__version__), ("sys_cuda", torch.version.cuda or t("none", lang))]
        if not torch.cuda.is_available():
            return [*rows, ("sys_gpu", t("sys_no_gpu", lang))]
        free, total = torch.cuda.mem_get_info()
        rows += [
            ("sys_gpu", torch.cuda.get_device_name(0)),
            ("sys_gpu_mem", f"{fmt_bytes(total - free)} / {fmt_bytes(total)}"),
            ("sys_gpu_reserved", fmt_bytes(torch.cuda.memory_reserved())),
        ]
        return rows

    def history_rows(self) -> list[tuple[str, str]]:
        try:
            stats = self.service.history_stats()
        except Exception:  # a locked or damaged database must not break the System tab
            log.exception("history stats failed")
            return []
        return [
            # interrupted counts as failed here: neither gave a transcript
            ("sys_hist_count", f"{stats['count']} ({stats['done']} / {stats['failed'] + stats['interrupted']})"),
            ("sys_hist_hours", f"{stats['audio_hours']:.2f}"),
            ("sys_hist_size", fmt_bytes(stats["db_bytes"] + stats["audio_bytes"])),
            ("sys_hist_path", str(self.service.history_path)),
        ]

    def device_label(self, lang: str) -> str:
        device = self.service.engine.device
        if device == "cuda":
            try:
                import torch

                return t("device_cuda", lang, name=torch.cuda.get_device_name(0))
            except Exception:
                return "GPU (CUDA)"
        return t("device_cpu", lang) if device == "cpu" else device

    def system_free_gpu(self, lang: str) -> pd.DataFrame:
        lang = lang_of(lang)
        freed = self.service.free_gpu_memory()
        if freed is None:
            info(t("msg_no_gpu", lang), lang)
            return self.system_table(lang)
        before, after = freed
        info(t("msg_gpu_freed", lang, before=fmt_bytes(before), after=fmt_bytes(after)), lang)
        return self.system_table(lang)

    # ------------------------------------------------------------------ header and language

    def engine_line(self, lang: str) -> str:
        engine = self.service.engine
        return t(
            "engine_line", lang, engine=esc(engine.name), model=esc(engine.model_name), device=self.device_label(lang)
        )

    def notice(self, lang: str) -> Any:
        """Shown while the embedded engine stands in for Paraformer, with how to get Paraformer."""
        if self.service.engine.name == "paraformer":
            return gr.update(value="", visible=False)
        text = "⚠ " + t("notice_embedded", lang)
        if self.service.notice:
            text += "\n\n" + t("notice_reason", lang, reason=esc(self.service.notice))
        return gr.update(value=text, visible=True)

    def on_language(self, lang: str, *tables_and_mark: Any) -> list[Any]:
        """Page load and the language switch: the server-written parts in the chosen language.

        Takes the 5 tables (single and mic segments, batch results, history list and segments: relabelled) and
        the page script's mark (REDRAW_MARK when it changed Gradio's locale).
        Returns [language, header, notice, 5 tab labels, 5 tables, system table, whether to redraw uploads]."""
        *tables, mark = tables_and_mark
        redraw = mark == REDRAW_MARK
        lang = lang_of(lang)
        seg_headers = [t("col_start", lang), t("col_end", lang), t("col_text", lang)]
        headers = [seg_headers, seg_headers, self.batch_headers(lang), self.history_headers(lang), seg_headers]
        relabelled = [relabel(frame, h) for frame, h in zip(tables, headers, strict=True)]
        # Gradio re-translates a tab's label only once the tab has been shown: set them all from here
        tabs = [gr.update(label=t(key, lang)) for key in TAB_KEYS]
        header = [self.engine_line(lang), self.notice(lang)]
        return [lang, *header, *tabs, *relabelled, self.system_table(lang), redraw]

    # ------------------------------------------------------------------ layout

    def build(self) -> gr.Blocks:
        settings = self.settings
        with PageBlocks(
            title="FunASR WebUI",
            analytics_enabled=False,  # no telemetry calls from the server either
            delete_cache=(1800, 3600),  # uploads and downloads leave Gradio's cache after an hour (privacy)
        ) as blocks:
            lang = self._header()
            with gr.Tabs():
                with gr.Tab(ui("tab_single"), id="single") as single_tab:
                    single = self._single_tab(lang)
                with gr.Tab(ui("tab_batch"), id="batch") as batch_tab:
                    batch_table = self._batch_tab(lang)
                with gr.Tab(ui("tab_mic"), id="microphone") as mic_tab:
                    mic = self._mic_tab(lang)
                with gr.Tab(ui("tab_history"), id="history") as history_tab:
                    history = self._history_tab(lang, history_tab)
                with gr.Tab(ui("tab_system"), id="system") as system_tab:
                    system_table = self._system_tab(lang)
            tabs = [single_tab, batch_tab, mic_tab, history_tab, system_tab]
            tables = [single.segments, mic.segments, batch_table, history["table"], history["segments"]]
            redraw = gr.State(False)
            mark = gr.Textbox(visible=False)  # filled by the page's script only
            lang_outputs = [lang, self.header_md, self.notice_md, *tabs, *tables, system_table, redraw]
            loaded = blocks.load(
                self.on_language, [lang, *tables, mark], lang_outputs, js=LOAD_JS, show_progress="hidden", queue=False
            )
            loaded.then(self.history_first, history["search_inputs"], history["page_outputs"], show_progress="hidden")
            switched = lang.input(
                self.on_language, [lang, *tables, mark], lang_outputs, js=SWITCH_JS, show_progress="hidden", queue=False
            )
            for event in (loaded, switched):
                self._redraw_uploads(event, redraw)
                segments = self.live_view.segments
                event.then(self.relabel_segments, [lang, segments], segments, queue=False, show_progress="hidden")
            blocks.unload(self.live_unload)
        # One recognition at a time for the whole page (the inference events also share one concurrency
        # group); the others wait in the queue and see their position.
        blocks.queue(default_concurrency_limit=1, max_size=settings.max_queue)
        blocks.i18n_instance = gradio_i18n(
            max_hotwords=settings.max_hotwords,
            max_batch_files=settings.max_batch_files,
            max_upload_mb=f"{settings.max_upload_mb:g}",
        )
        blocks.pin(theme=page_theme(), css=CSS, js="", head="", footer_links=["settings"], run_history=False)
        return blocks

    def _redraw_uploads(self, event: Any, redraw: gr.State) -> None:
        """Gradio writes its own upload-box text ("Drop File Here") once, when the box is drawn: after the page's
        script changed the language, hiding and showing the boxes draws them again in the new language."""

        def visibility(visible: bool) -> Any:
            return lambda needed: [gr.update(visible=visible)] * len(self.uploads) if needed else gr.skip()

        options = {"queue": False, "show_progress": "hidden"}
        event.then(visibility(False), redraw, self.uploads, **options).then(
            visibility(True), redraw, self.uploads, **options
        )

    def _header(self) -> gr.Radio:
        with gr.Row(elem_id="app-header"):
            with gr.Column(scale=4):
                gr.Markdown("# " + str(ui("app_title")), elem_id="app-title")
                gr.Markdown(ui("app_subtitle"), elem_classes="hint")
            with gr.Column(scale=1, min_width=200):
                lang = gr.Radio(
                    [("中文", "zh"), ("English", "en")],
                    value="en",
                    label=ui("lang_switch"),
                    elem_id="lang-switch",
                    container=True,
                )
        self.header_md = gr.Markdown(self.engine_line("en"), elem_id="engine-line")
        initial_notice = self.notice("en")
        self.notice_md = gr.Markdown(
            initial_notice["value"], visible=initial_notice["visible"], elem_id="engine-notice"
        )
        return lang

    def _options(self, prefix: str) -> tuple[gr.Textbox, gr.Checkbox, gr.Dropdown]:
        """Hotwords, ITN and language: the same controls for every way in."""
        hotwords = gr.Textbox(
            label=ui("hotwords"),
            info=ui("hotwords_info"),
            placeholder=ui("hotwords_placeholder"),
            lines=3,
            max_lines=8,
            elem_id=f"{prefix}-hotwords",
        )
        itn = gr.Checkbox(value=self.settings.itn, label=ui("itn"), info=ui("itn_info"), elem_id=f"{prefix}-itn")
        languages = self.service.engine.languages
        language = gr.Dropdown(
            language_choices(languages),
            value="auto",
            label=ui("language"),
            info=ui("language_info"),
            visible=bool(languages),  # Paraformer: Mandarin with English words, nothing to choose
            elem_id=f"{prefix}-language",
        )
        return hotwords, itn, language

    def _result_view(self, prefix: str, idle_key: str) -> ResultView:
        status = gr.Markdown(ui(idle_key), elem_id=f"{prefix}-status", elem_classes="status")
        text = gr.Textbox(
            label=ui("transcript"), lines=6, max_lines=20, buttons=["copy"], interactive=False, elem_id=f"{prefix}-text"
        )
        stats = gr.Markdown("", elem_id=f"{prefix}-stats")
        gr.Markdown(ui("downloads"))
        with gr.Row():
            downloads = [
                gr.DownloadButton(
                    fmt.upper(), interactive=False, size="sm", elem_id=f"{prefix}-download-{fmt}", min_width=80
                )
                for fmt in writers.FORMATS
            ]
        gr.Markdown(ui("downloads_hint"), elem_classes="hint")
        segments = gr.Dataframe(
            segments_frame(None, "en"),
            label=ui("segments"),
            interactive=False,
            wrap=True,
            column_widths=["15%", "15%", "70%"],
            max_height=360,
            elem_id=f"{prefix}-segments",
        )
        return ResultView(status, text, stats, segments, downloads)

    def _inference(self, trigger: Any, fn: Any, inputs: list[Any], outputs: list[Any], **kwargs: Any) -> Any:
        """Every event that runs the recognizer: one shared queue slot, so two never run at once."""
        return trigger(
            fn, inputs, outputs, concurrency_id="inference", concurrency_limit=1, show_progress="full", **kwargs
        )

    def _single_tab(self, lang: gr.Radio) -> ResultView:
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                file = gr.File(label=ui("upload"), type="filepath", height=150, elem_id="single-file")
                self.uploads.append(file)
                gr.Markdown(ui("upload_hint"), elem_classes="hint")
                hotwords, itn, language = self._options("single")
                start = gr.Button(ui("start"), variant="primary", elem_id="single-start")
                rerun = gr.Button(ui("rerun"), visible=False, elem_id="single-rerun")
            with gr.Column(scale=3):
                view = self._result_view("single", "status_single_idle")
        inputs = [file, hotwords, itn, language, lang]
        outputs = [*view.outputs(), rerun]
        self._inference(start.click, self.single_start, inputs, outputs)
        self._inference(rerun.click, self.single_rerun, inputs, outputs)
        return view

    def _batch_tab(self, lang: gr.Radio) -> gr.Dataframe:
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                files = gr.File(
                    label=ui("batch_files"), file_count="multiple", type="filepath", height=180, elem_id="batch-files"
                )
                self.uploads.append(files)
                gr.Markdown(ui("batch_hint"), elem_classes="hint")
                hotwords, itn, language = self._options("batch")
                fmt = gr.Dropdown(
                    [(f.upper(), f) for f in writers.FORMATS],
                    value="txt",
                    label=ui("batch_format"),
                    elem_id="batch-format",
                )
                start = gr.Button(ui("batch_start"), variant="primary", elem_id="batch-start")
            with gr.Column(scale=3):
                status = gr.Markdown(ui("status_batch_idle"), elem_id="batch-status", elem_classes="status")
                table = gr.Dataframe(
                    pd.DataFrame([], columns=self.batch_headers("en")),
                    label=ui("batch_results"),
                    interactive=False,
                    wrap=True,
                    column_widths=["20%", "11%", "22%", "30%", "17%"],
                    max_height=480,
                    elem_id="batch-table",
                )
                zip_button = gr.DownloadButton(ui("batch_zip"), interactive=False, elem_id="batch-zip")
        results = gr.State(BatchResults())
        outputs = [status, table, zip_button, results]
        # progress (and the queue position) on the status line: the table stays visible, filling in file by file
        inputs = [files, hotwords, itn, language, fmt, lang]
        self._inference(start.click, self.batch_run, inputs, outputs, show_progress_on=[status])
        fmt.change(self.batch_format_changed, [results, fmt, lang], zip_button, show_progress="hidden")
        return table

    def _mic_tab(self, lang: gr.Radio) -> ResultView:
        mode = gr.Radio(
            [(ui("mic_mode_record"), "record"), (ui("mic_mode_live"), "live")],
            value="record",
            label=ui("mic_mode"),
            elem_id="mic-mode",
        )
        gr.Markdown(ui("mic_mode_hint"), elem_classes="hint")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                # ---- Record, then recognize: the browser records, the file is recognized like an upload
                with gr.Column(elem_id="mic-record") as record_box:
                    recording = gr.Audio(
                        sources=["microphone"],
                        type="filepath",
                        format="wav",
                        label=ui("mic"),
                        buttons=["download"],
                        elem_id="mic-audio",
                    )
                    gr.Markdown(ui("mic_hint"), elem_classes="hint")
                # ---- Live dictation: the microphone streams in chunks, text follows as it is spoken
                with gr.Column(visible=False, elem_id="mic-live") as live_box:
                    live_audio = gr.Audio(
                        sources=["microphone"],
                        streaming=True,
                        type="numpy",
                        label=ui("live_mic"),
                        elem_id="mic-live-audio",
                    )
                    gr.Markdown(ui("live_hint"), elem_classes="hint")
                hotwords, itn, language = self._options("mic")  # the same options for both ways
                start = gr.Button(ui("mic_start"), elem_id="mic-start")
            with gr.Column(scale=3):
                with gr.Column(elem_id="mic-record-result") as record_result:
                    view = self._result_view("mic", "status_mic_idle")
                with gr.Column(visible=False, elem_id="mic-live-result") as live_result:
                    self.live_view = self._result_view("mic-live", "status_live_idle")
        inputs = [recording, hotwords, itn, language, lang]
        # Stop starts recognition by itself: the event fires once the recording has reached the server
        self._inference(recording.stop_recording, self.mic_recognize, inputs, view.outputs())
        self._inference(start.click, self.mic_recognize, inputs, view.outputs())
        shown = [record_box, start, record_result, live_box, live_result]
        mode.change(self.mic_mode, mode, shown, queue=False, show_progress="hidden")
        self._live_events(live_audio, mode, hotwords, itn, language, lang)
        return view

    def _live_events(
        self, audio: gr.Audio, mode: gr.Radio, hotwords: gr.Textbox, itn: gr.Checkbox, language: Any, lang: gr.Radio
    ) -> None:
        """Live dictation's events, in a concurrency group of their own ("live", no limit), not the one-slot
        "inference" group of the other recognitions: a stream event holds its slot for the whole dictation, so there
        it would block every upload for as long as someone talks, and a dictation would wait behind a long file
        while Gradio's microphone drops the chunks it records (it does not buffer while its stream is queued).
        Unlimited is safe because these callbacks never run the recognizer on the request thread for long: the
        stream callback only queues the chunk (live_stream), each session's worker feeds it, and LiveTranscriber
        takes the pipeline's lock for each model call, so the recognizer still does one thing at a time (a
        sentence of one tab between two partials of another, or of a file). While a file is being recognized a
        dictation's audio waits in its inbox: late text, no lost audio."""
        view = self.live_view
        # One LiveState per browser session. Closing the tab mid-dictation saves it at once (live_unload, on
        # Gradio's heartbeat); the delete_callback is the fallback for one that slipped past, when Gradio drops
        # the closed session's State.
        session = gr.State(None, delete_callback=self.live_expired)
        # The status line says what is going on: no spinners or timers over the text (Gradio shows a stream's timer
        # on its outputs even with show_progress hidden, so progress is pointed at the microphone, which shows none)
        live: dict[str, Any] = {"concurrency_id": "live", "concurrency_limit": None}
        live.update(show_progress="hidden", show_progress_on=audio)
        options = [hotwords, itn, language, lang]
        audio.start_recording(self.live_start, [session, *options], [session, *view.outputs(), mode], **live)
        audio.stream(
            self.live_stream,
            [audio, session, *options],
            [view.text, view.status, view.segments, session],
            stream_every=LIVE_STREAM_EVERY_S,
            time_limit=LIVE_TIME_LIMIT_S,
            **live,
        )
        audio.stop_recording(self.live_stopping, [session, lang], [*view.outputs(), session, mode], **live)

    def _history_tab(self, lang: gr.Radio, tab: gr.Tab) -> dict[str, Any]:
        with gr.Row():
            query = gr.Textbox(
                label=ui("hist_search"), placeholder=ui("hist_search_placeholder"), scale=3, elem_id="history-query"
            )
            date_from = gr.DateTime(
                label=ui("hist_from"), include_time=False, type="string", scale=1, elem_id="history-from"
            )
            date_to = gr.DateTime(label=ui("hist_to"), include_time=False, type="string", scale=1, elem_id="history-to")
        with gr.Row():
            engine = gr.Dropdown(
                [(ui("filter_all"), ""), ("Paraformer", "paraformer"), ("Whisper", "whisper")],
                value="",
                label=ui("hist_engine"),
                elem_id="history-engine",
            )
            source = gr.Dropdown(
                [(ui("filter_all"), ""), (ui("src_microphone"), "microphone"), (ui("src_api"), "api")],
                value="",
                label=ui("hist_source"),
                info=ui("hist_source_info"),
                allow_custom_value=True,
                elem_id="history-source",
            )
            status = gr.Dropdown(
                [
                    (ui("filter_all"), ""),
                    (ui("status_done"), "done"),
                    (ui("status_failed"), "failed"),
                    (ui("status_interrupted"), "interrupted"),
                ],
                value="",
                label=ui("hist_status"),
                elem_id="history-status",
            )
            with gr.Column(min_width=160):
                search = gr.Button(ui("hist_search_btn"), variant="primary", elem_id="history-search")
                with gr.Row():
                    last7 = gr.Button(ui("hist_last7"), size="sm", elem_id="history-last7")
                    clear = gr.Button(ui("hist_clear"), size="sm", elem_id="history-clear")
        table = gr.Dataframe(
            pd.DataFrame([], columns=self.history_headers("en")),
            label=ui("hist_table"),
            interactive=False,
            wrap=True,
            column_widths=["8%", "17%", "22%", "10%", "43%"],
            max_height=520,
            elem_id="history-table",
        )
        with gr.Row():
            prev_btn = gr.Button(ui("hist_prev"), size="sm", interactive=False, elem_id="history-prev")
            page_line = gr.Markdown("", elem_id="history-page")
            next_btn = gr.Button(ui("hist_next"), size="sm", interactive=False, elem_id="history-next")
        page = gr.State(1)
        selected = gr.State(None)

        gr.Markdown("### " + str(ui("hist_detail")))
        detail_md = gr.Markdown(ui("hist_detail_idle"), elem_id="history-detail")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                detail_text = gr.Textbox(
                    label=ui("transcript"),
                    lines=5,
                    max_lines=16,
                    buttons=["copy"],
                    interactive=False,
                    elem_id="history-text",
                )
                segments = gr.Dataframe(
                    segments_frame(None, "en"),
                    label=ui("segments"),
                    interactive=False,
                    wrap=True,
                    column_widths=["15%", "15%", "70%"],
                    max_height=300,
                    elem_id="history-segments",
                )
            with gr.Column(scale=2):
                audio = gr.Audio(
                    label=ui("hist_audio"), type="filepath", interactive=False, visible=False, buttons=["download"]
                )
                gr.Markdown(ui("downloads"))
                with gr.Row():
                    downloads = [
                        gr.DownloadButton(
                            fmt.upper(), interactive=False, size="sm", elem_id=f"history-download-{fmt}", min_width=70
                        )
                        for fmt in writers.FORMATS
                    ]
                delete = gr.Button(ui("hist_delete"), variant="stop", interactive=False, elem_id="history-delete")
                with gr.Row(visible=False, elem_classes="confirm-row") as confirm_row:
                    gr.Markdown(ui("hist_delete_confirm"))
                    confirm = gr.Button(ui("confirm_delete"), variant="stop", size="sm", elem_id="history-confirm")
                    cancel = gr.Button(ui("cancel"), size="sm", elem_id="history-cancel")

        with gr.Accordion(ui("hist_export_title"), open=False):
            with gr.Row(equal_height=False):
                with gr.Column():
                    export_fmt = gr.Dropdown(
                        [(ui(f"fmt_{f}"), f) for f in EXPORT_FORMATS],
                        value="csv",
                        label=ui("hist_export_format"),
                        elem_id="history-export-format",
                    )
                    gr.Markdown(ui("hist_export_hint"), elem_classes="hint")
                    export = gr.Button(ui("hist_export"), elem_id="history-export")
                    export_file = gr.File(label=ui("hist_export_file"), visible=False, elem_id="history-export-file")
                with gr.Column():
                    days = gr.Number(value=90, minimum=0, precision=0, label=ui("hist_purge_days"))
                    purge = gr.Button(ui("hist_purge"), variant="stop", elem_id="history-purge")
                    with gr.Row(visible=False, elem_classes="confirm-row") as purge_row:
                        purge_md = gr.Markdown("")
                        purge_yes = gr.Button(ui("confirm_delete"), variant="stop", size="sm")
                        purge_no = gr.Button(ui("cancel"), size="sm")

        filters = [query, date_from, date_to, engine, source, status]
        search_inputs = [*filters, page, lang]
        page_outputs = [table, page_line, page, prev_btn, next_btn]
        detail_outputs = [detail_md, detail_text, segments, audio, *downloads, selected, delete]

        for trigger in (search.click, query.submit, engine.input, status.input, source.input, tab.select):
            trigger(self.history_first, search_inputs, page_outputs, show_progress="minimal")
        prev_btn.click(self.history_prev, search_inputs, page_outputs, show_progress="minimal")
        next_btn.click(self.history_next, search_inputs, page_outputs, show_progress="minimal")
        last7.click(self.last_7_days, None, [date_from, date_to], queue=False).then(
            self.history_first, search_inputs, page_outputs
        )
        clear.click(self.clear_filters, None, filters, queue=False).then(
            self.history_first, search_inputs, page_outputs
        )
        table.select(self.history_select, [lang], detail_outputs, show_progress="minimal")
        delete.click(self.history_delete_ask, [selected, lang], confirm_row)
        cancel.click(lambda: gr.update(visible=False), None, confirm_row, queue=False)
        confirm.click(self.history_delete, [selected, lang], [confirm_row, *detail_outputs]).then(
            self.history_page, [*filters, page, lang], page_outputs
        )
        export.click(self.history_export, [export_fmt, *filters, lang], export_file)
        purge.click(self.history_purge_ask, [days, lang], [purge_row, purge_md])
        purge_no.click(lambda: gr.update(visible=False), None, purge_row, queue=False)
        purge_yes.click(self.history_purge, [days, lang], purge_row).then(
            self.history_first, search_inputs, page_outputs
        )
        return {
            "table": table,
            "segments": segments,
            "search_inputs": search_inputs,
            "page_outputs": page_outputs,
        }

    def _system_tab(self, lang: gr.Radio) -> gr.Dataframe:
        table = gr.Dataframe(
            self.system_table("en"),
            label=ui("sys_table"),
            interactive=False,
            wrap=True,
            column_widths=["35%", "65%"],
            max_height=900,
            elem_id="system-table",
        )
        with gr.Row():
            refresh = gr.Button(ui("sys_refresh"), elem_id="system-refresh")
            free = gr.Button(ui("sys_free"), elem_id="system-free-gpu")
        gr.Markdown(ui("sys_hint"), elem_classes="hint")
        refresh.click(self.system_table, [lang], table, show_progress="minimal")
        free.click(self.system_free_gpu, [lang], table, show_progress="minimal")
        return table


def ram_usage() -> str | None:
    """RAM used / total from /proc/meminfo (Linux), without extra packages."""
    try:
        fields = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            fields[key] = int(rest.split()[0]) * 1024
        total, available = fields["MemTotal"], fields["MemAvailable"]
    except (OSError, KeyError, ValueError, IndexError):
        return None
    return f"{fmt_bytes(total - available)} / {fmt_bytes(total)}"


def build_ui(service: TranscriptionService) -> gr.Blocks:
    """The page, over an already loaded service. Carries its own theme, CSS and translations (see PageBlocks)."""
    return WebUI(service).build()
