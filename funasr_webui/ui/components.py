"""What the tabs share: the option controls, the result view and its values, download files, toasts, progress."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from .. import tempfiles, writers
from ..audio import AudioError
from ..errors import UserError
from ..helpers import safe_stem
from ..i18n import t, ui
from ..service import Outcome, TranscriptionService
from ..speakers import MAX_SPEAKERS
from ..transcript import Transcript
from .format import ENGINE_LABELS, esc, failure_text, language_choices, segments_frame, stats_line, warn_status

log = logging.getLogger(__name__)

PROGRESS = gr.Progress()  # Gradio spots a progress parameter by this default value
TEMP_MAX_AGE_S = 3600  # per-request download folders older than this are removed


# --------------------------------------------------------------------------- files for download


class Downloads:
    """The page's folder of download files: one fresh folder per request, old ones removed (Gradio keeps its own
    copy of what it serves). Made on first use, named for this process (see tempfiles)."""

    def __init__(self) -> None:
        self._root: Path | None = None
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        with self._lock:
            if self._root is None:
                self._root = Path(tempfile.mkdtemp(prefix=tempfiles.prefix("page")))
            return self._root

    def request_dir(self) -> Path:
        """A fresh folder for one request's downloads."""
        root = self.root
        cutoff = time.time() - TEMP_MAX_AGE_S
        for old in root.iterdir():
            try:
                if old.stat().st_mtime < cutoff:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass
        return Path(tempfile.mkdtemp(dir=root))

    def write_downloads(self, transcript: Transcript, name: str) -> dict[str, Path]:
        """The transcript in every download format, named after the file it came from."""
        folder = self.request_dir()
        stem = safe_stem(name)
        paths = {}
        info = writers.DocumentInfo(title=name)
        for fmt in writers.FORMATS:
            path = folder / f"{stem}.{fmt}"
            path.write_bytes(writers.render_bytes(transcript, fmt, info))
            paths[fmt] = path
        return paths


def download_updates(paths: dict[str, Path] | None) -> list[Any]:
    """The download buttons (one per format) offering these files, or greyed out without any."""
    if paths is None:
        return [gr.update(value=None, interactive=False) for _ in writers.FORMATS]
    return [gr.update(value=str(paths[fmt]), interactive=True) for fmt in writers.FORMATS]


def download_buttons(prefix: str, min_width: int) -> list[gr.DownloadButton]:
    """One small button per download format, in a row of their own."""
    with gr.Row():
        return [
            gr.DownloadButton(
                fmt.upper(), interactive=False, size="sm", elem_id=f"{prefix}-download-{fmt}", min_width=min_width
            )
            for fmt in writers.FORMATS
        ]


# --------------------------------------------------------------------------- options


@dataclass
class OptionWidgets:
    """Hotwords, ITN and language: the same controls for every way in; the model selector (an input of its own,
    after the page language, shown when several engines are loaded); who spoke, for files (single, batch: an
    input after the model selector)."""

    hotwords: gr.Textbox
    itn: gr.Checkbox
    language: gr.Dropdown
    engine: gr.Dropdown
    speakers: gr.Dropdown | None = None

    def inputs(self) -> list[gr.components.Component]:
        return [self.hotwords, self.itn, self.language]


def speaker_choices() -> list[tuple[Any, str]]:
    """Off, auto, then 2 to 10 voices."""
    return [(ui("speakers_off"), ""), (ui("speakers_auto"), "auto")] + [
        (str(n), str(n)) for n in range(2, MAX_SPEAKERS + 1)
    ]


def engine_choices(service: TranscriptionService) -> list[tuple[str, str]]:
    """The model selector: every loaded engine, the default first, as "SenseVoice-Small (SenseVoiceSmall)"."""
    return [(f"{ENGINE_LABELS.get(e.name, e.name)} ({e.model_name})", e.name) for e in service.engines]


def language_update(service: TranscriptionService, engine: str) -> Any:
    """The language dropdown for the chosen engine: its own languages, back to auto-detect."""
    try:
        languages = service.engine_named(engine or None).languages
    except UserError:  # cannot happen from the selector's own choices
        languages = service.engine.languages
    return gr.update(choices=language_choices(languages), value="auto", visible=bool(languages))


def option_widgets(service: TranscriptionService, prefix: str, speakers: bool = False) -> OptionWidgets:
    engine = gr.Dropdown(
        engine_choices(service),
        value=service.engine.name,
        label=ui("engine_select"),
        info=ui("engine_select_info"),
        visible=len(service.engines) > 1,  # one engine: nothing to choose
        elem_id=f"{prefix}-engine",
    )
    hotwords = gr.Textbox(
        label=ui("hotwords"),
        info=ui("hotwords_info"),
        placeholder=ui("hotwords_placeholder"),
        lines=3,
        max_lines=8,
        elem_id=f"{prefix}-hotwords",
    )
    itn = gr.Checkbox(value=service.settings.itn, label=ui("itn"), info=ui("itn_info"), elem_id=f"{prefix}-itn")
    languages = service.engine.languages
    language = gr.Dropdown(
        language_choices(languages),
        value="auto",
        label=ui("language"),
        info=ui("language_info"),
        visible=bool(languages),  # Paraformer: Mandarin with English words, nothing to choose
        elem_id=f"{prefix}-language",
    )
    engine.change(lambda name: language_update(service, name), engine, language, queue=False, show_progress="hidden")
    who = None
    if speakers:
        who = gr.Dropdown(
            speaker_choices(),
            value="",
            label=ui("speakers"),
            info=ui("speakers_info"),
            elem_id=f"{prefix}-speakers",
        )
    return OptionWidgets(hotwords, itn, language, engine, who)


# --------------------------------------------------------------------------- the result view


def segments_table(elem_id: str, max_height: int) -> gr.Dataframe:
    """The sentences of a transcript with their times."""
    return gr.Dataframe(
        segments_frame(None, "en"),
        label=ui("segments"),
        interactive=False,
        wrap=True,
        column_widths=["95px", "95px"],  # the rest (speaker when there is one, text) sized by their content
        max_height=max_height,
        elem_id=elem_id,
    )


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


def result_view(prefix: str, idle_key: str) -> ResultView:
    status = gr.Markdown(ui(idle_key), elem_id=f"{prefix}-status", elem_classes="status")
    text = gr.Textbox(
        label=ui("transcript"), lines=6, max_lines=20, buttons=["copy"], interactive=False, elem_id=f"{prefix}-text"
    )
    stats = gr.Markdown("", elem_id=f"{prefix}-stats")
    gr.Markdown(ui("downloads"))
    downloads = download_buttons(prefix, min_width=80)
    gr.Markdown(ui("downloads_hint"), elem_classes="hint")
    segments = segments_table(f"{prefix}-segments", max_height=360)
    return ResultView(status, text, stats, segments, downloads)


# The values of a ResultView's outputs, in its order: status, text, stats, segments, downloads.


def result_values(downloads: Downloads, transcript: Transcript, name: str, lang: str, status: str) -> list[Any]:
    paths = downloads.write_downloads(transcript, name)
    values = [status, transcript.text, stats_line(transcript, lang), segments_frame(transcript, lang)]
    return [*values, *download_updates(paths)]


def empty_result(lang: str, status: str) -> list[Any]:
    return [status, "", "", segments_frame(None, lang), *download_updates(None)]


def failure(exc: BaseException, lang: str) -> list[Any]:
    """An empty result saying what went wrong (and a toast); unexpected errors are logged."""
    if not isinstance(exc, UserError | AudioError):
        log.exception("web request failed")
    message = failure_text(exc, lang)
    warn(message, lang)
    return empty_result(lang, warn_status(message))


def done_status(outcome: Outcome, lang: str) -> str:
    if outcome.save_error:
        return warn_status(t("msg_done_unsaved", lang, error=outcome.save_error))
    if not outcome.transcript.segments and not outcome.transcript.text:
        return "ℹ " + t("msg_no_speech", lang)
    done = "✔ " + t("msg_done", lang)
    if outcome.flags:  # the quality rules found something: say so where the user looks (details on the QA tab)
        rules = ", ".join(dict.fromkeys(h.rule for h in outcome.flags))
        done += " · ⚑ " + t("msg_qa_flagged", lang, count=len(outcome.flags), rules=esc(rules))
    return done


# --------------------------------------------------------------------------- events, progress and toasts


def inference(trigger: Any, fn: Any, inputs: list[Any], outputs: list[Any], **kwargs: Any) -> Any:
    """Every event that runs the recognizer: one shared queue slot, so two never run at once."""
    return trigger(fn, inputs, outputs, concurrency_id="inference", concurrency_limit=1, show_progress="full", **kwargs)


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
