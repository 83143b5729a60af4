"""Single file: upload one recording, recognize it, read and download the transcript."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from ...i18n import lang_of, t, ui
from ...service import TranscriptionService
from ..components import (
    PROGRESS,
    Downloads,
    OptionWidgets,
    ResultView,
    done_status,
    empty_result,
    failure,
    inference,
    option_widgets,
    report_progress,
    result_values,
    result_view,
    warn,
)
from ..context import PageContext
from ..format import fmt_time, warn_status

TAB_KEY = "tab_single"


class SingleCallbacks:
    """The tab's callbacks. Each returns [result view..., Run again button]."""

    def __init__(self, service: TranscriptionService, downloads: Downloads | None = None) -> None:
        self.service = service
        self.downloads = downloads or Downloads()

    def single_start(
        self,
        file: str | None,
        hotwords: str,
        itn: bool,
        language: str,
        lang: str,
        engine: str = "",
        progress: gr.Progress = PROGRESS,
    ) -> list[Any]:
        """Start: shows an earlier result of the same file with the same settings instead of redoing it.
        `engine`: the model selector's choice ("": the default engine)."""
        return self._single(file, hotwords, itn, language, lang, engine, False, progress)

    def single_rerun(
        self,
        file: str | None,
        hotwords: str,
        itn: bool,
        language: str,
        lang: str,
        engine: str = "",
        progress: gr.Progress = PROGRESS,
    ) -> list[Any]:
        return self._single(file, hotwords, itn, language, lang, engine, True, progress)

    def _single(
        self,
        file: str | None,
        hotwords: str,
        itn: bool,
        language: str,
        lang: str,
        engine: str,
        force: bool,
        progress: Any,
    ) -> list[Any]:
        lang = lang_of(lang)
        hide_rerun = gr.update(visible=False)
        if not file:
            warn(t("msg_no_file", lang), lang)
            return [*empty_result(lang, warn_status(t("msg_no_file", lang))), hide_rerun]
        path = Path(file)
        try:
            options = self.service.options(hotwords, itn, language, engine=engine or None)
            earlier = None if force else self.service.previous(path, options)
            if earlier is not None:
                status = "ℹ " + t("msg_previous", lang, when=fmt_time(earlier.created_at))
                values = result_values(self.downloads, earlier.transcript(), path.name, lang, status)
                return [*values, gr.update(visible=True)]
            report_progress(options, progress, t("msg_working", lang))
            outcome = self.service.transcribe_file(path, name=path.name, source=path.name, options=options)
        except Exception as e:  # every failure becomes a message; the server keeps serving
            return [*failure(e, lang), hide_rerun]
        values = result_values(self.downloads, outcome.transcript, path.name, lang, done_status(outcome, lang))
        return [*values, hide_rerun]


@dataclass
class SingleTab:
    tab: gr.Tab
    file: gr.File
    options: OptionWidgets
    start: gr.Button
    rerun: gr.Button
    view: ResultView
    callbacks: SingleCallbacks = field(repr=False)


def create_single(ctx: PageContext) -> SingleTab:
    callbacks = SingleCallbacks(ctx.service, ctx.downloads)
    with gr.Tab(ui(TAB_KEY), id="single") as tab:
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                file = gr.File(label=ui("upload"), type="filepath", height=150, elem_id="single-file")
                ctx.uploads.append(file)
                gr.Markdown(ui("upload_hint"), elem_classes="hint")
                options = option_widgets(ctx.service, "single")
                start = gr.Button(ui("start"), variant="primary", elem_id="single-start")
                rerun = gr.Button(ui("rerun"), visible=False, elem_id="single-rerun")
            with gr.Column(scale=3):
                view = result_view("single", "status_single_idle")
        inputs = [file, *options.inputs(), ctx.lang, options.engine]
        outputs = [*view.outputs(), rerun]
        inference(start.click, callbacks.single_start, inputs, outputs)
        inference(rerun.click, callbacks.single_rerun, inputs, outputs)
    return SingleTab(tab, file, options, start, rerun, view, callbacks)
