"""The page: header and language switch over six tabs, in Blocks that keep their theme through mounting.

``build_ui(service)`` is what server.create_app mounts; ``build_page`` also returns the tabs (for tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..i18n import gradio_i18n, lang_of, t, ui
from ..service import TranscriptionService
from .assets import CSS, LOAD_JS, REDRAW_MARK, SWITCH_JS, page_theme
from .context import PageContext
from .format import esc, relabel, relabel_segments, segment_headers
from .tabs import batch, history, microphone, qa, single, system
from .tabs.batch import BatchTab, batch_headers, create_batch
from .tabs.history import HistoryTab, create_history, history_headers
from .tabs.microphone import MicTab, create_microphone
from .tabs.qa import QaTab, create_qa
from .tabs.single import SingleTab, create_single
from .tabs.system import SystemCallbacks, SystemTab, create_system, device_label

TAB_KEYS = (single.TAB_KEY, batch.TAB_KEY, microphone.TAB_KEY, history.TAB_KEY, qa.TAB_KEY, system.TAB_KEY)


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


class Header:
    """The header's callbacks: the engine line, the stand-in notice, and the language switch."""

    def __init__(self, service: TranscriptionService) -> None:
        self.service = service
        self.system = SystemCallbacks(service)  # the language switch redraws the System tab's table

    def engine_line(self, lang: str) -> str:
        engine = self.service.engine
        device = device_label(engine.device, lang)
        line = t("engine_line", lang, engine=esc(engine.name), model=esc(engine.model_name), device=device)
        if len(self.service.engines) > 1:  # --engines: every loaded one, with its device
            listed = ", ".join(
                f"{esc(e.name)} ({esc(e.model_name)}, {device_label(e.device, lang)})"
                + (f" · {t('engine_default', lang)}" if e is engine else "")
                for e in self.service.engines
            )
            line += "  \n" + t("engines_line", lang, engines=listed)
        return line

    def notice(self, lang: str) -> Any:
        """Shown while the embedded engine stands in for Paraformer, with how to get Paraformer."""
        if self.service.engine.name != "whisper":  # a FunASR model is the default
            return gr.update(value="", visible=False)
        text = "⚠ " + t("notice_embedded", lang)
        if self.service.notice:
            text += "\n\n" + t("notice_reason", lang, reason=esc(self.service.notice))
        return gr.update(value=text, visible=True)

    def on_language(self, lang: str, *tables_and_mark: Any) -> list[Any]:
        """Page load and the language switch: the server-written parts in the chosen language.

        Takes the 5 tables (single and mic segments, batch results, history list and segments: relabelled) and
        the page script's mark (REDRAW_MARK when it changed Gradio's locale).
        Returns [language, header, notice, 6 tab labels, 5 tables, system table, whether to redraw uploads]."""
        *tables, mark = tables_and_mark
        redraw = mark == REDRAW_MARK
        lang = lang_of(lang)
        single, mic, batch, history, record = tables
        relabelled = [
            relabel_segments(single, lang),
            relabel(mic, segment_headers(lang)),
            relabel(batch, batch_headers(lang)),
            relabel(history, history_headers(lang)),
            relabel_segments(record, lang),
        ]
        # Gradio re-translates a tab's label only once the tab has been shown: set them all from here
        tabs = [gr.update(label=t(key, lang)) for key in TAB_KEYS]
        header = [self.engine_line(lang), self.notice(lang)]
        return [lang, *header, *tabs, *relabelled, self.system.system_table(lang), redraw]


@dataclass
class Page:
    """The built page and its parts."""

    blocks: PageBlocks
    header: Header
    single: SingleTab
    batch: BatchTab
    microphone: MicTab
    history: HistoryTab
    system: SystemTab
    qa: QaTab


def create_header(header: Header) -> tuple[gr.Radio, gr.Markdown, gr.Markdown]:
    """Title, language switch, engine line and notice: [language switch, engine line, notice]."""
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
    engine_md = gr.Markdown(header.engine_line("en"), elem_id="engine-line")
    initial_notice = header.notice("en")
    notice_md = gr.Markdown(initial_notice["value"], visible=initial_notice["visible"], elem_id="engine-notice")
    return lang, engine_md, notice_md


def build_page(service: TranscriptionService) -> Page:
    settings = service.settings
    with PageBlocks(
        title="FunASR WebUI",
        analytics_enabled=False,  # no telemetry calls from the server either
        delete_cache=(1800, 3600),  # uploads and downloads leave Gradio's cache after an hour (privacy)
    ) as blocks:
        header = Header(service)
        lang, engine_md, notice_md = create_header(header)
        ctx = PageContext(service, lang)
        with gr.Tabs():
            single_tab = create_single(ctx)
            batch_tab = create_batch(ctx)
            mic_tab = create_microphone(ctx)
            history_tab = create_history(ctx)
            qa_tab = create_qa(ctx)
            system_tab = create_system(ctx)
        page = Page(blocks, header, single_tab, batch_tab, mic_tab, history_tab, system_tab, qa_tab)
        tabs = [single_tab.tab, batch_tab.tab, mic_tab.tab, history_tab.tab, qa_tab.tab, system_tab.tab]
        tables = [  # relabelled by the language switch, in on_language's order
            single_tab.view.segments,
            mic_tab.view.segments,
            batch_tab.table,
            history_tab.table,
            history_tab.segments,
        ]
        redraw = gr.State(False)
        mark = gr.Textbox(visible=False)  # filled by the page's script only
        lang_outputs = [lang, engine_md, notice_md, *tabs, *tables, system_tab.table, redraw]
        on_language, history_first = header.on_language, history_tab.callbacks.history_first
        loaded = blocks.load(
            on_language, [lang, *tables, mark], lang_outputs, js=LOAD_JS, show_progress="hidden", queue=False
        )
        loaded.then(history_first, history_tab.search_inputs, history_tab.page_outputs, show_progress="hidden")
        switched = lang.input(
            on_language, [lang, *tables, mark], lang_outputs, js=SWITCH_JS, show_progress="hidden", queue=False
        )
        mic = mic_tab.callbacks
        for event in (loaded, switched):
            _redraw_uploads(event, redraw, ctx.uploads)
            segments = mic_tab.live_view.segments
            event.then(mic.relabel_segments, [lang, segments], segments, queue=False, show_progress="hidden")
        blocks.unload(mic.live_unload)  # a tab closed mid-dictation: its dictation is saved
    # One recognition at a time for the whole page (the inference events also share one concurrency
    # group); the others wait in the queue and see their position.
    blocks.queue(default_concurrency_limit=1, max_size=settings.max_queue)
    blocks.i18n_instance = gradio_i18n(
        max_hotwords=settings.max_hotwords,
        max_batch_files=settings.max_batch_files,
        max_upload_mb=f"{settings.max_upload_mb:g}",
    )
    blocks.pin(theme=page_theme(), css=CSS, js="", head="", footer_links=["settings"], run_history=False)
    return page


def _redraw_uploads(event: Any, redraw: gr.State, uploads: list[gr.File]) -> None:
    """Gradio writes its own upload-box text ("Drop File Here") once, when the box is drawn: after the page's
    script changed the language, hiding and showing the boxes draws them again in the new language."""

    def visibility(visible: bool) -> Any:
        return lambda needed: [gr.update(visible=visible)] * len(uploads) if needed else gr.skip()

    options = {"queue": False, "show_progress": "hidden"}
    event.then(visibility(False), redraw, uploads, **options).then(visibility(True), redraw, uploads, **options)


def build_ui(service: TranscriptionService) -> gr.Blocks:
    """The page, over an already loaded service. Carries its own theme, CSS and translations (see PageBlocks)."""
    return build_page(service).blocks
