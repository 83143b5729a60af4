"""History: search and filter past transcripts, page through them, open one, delete, export, purge."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import gradio as gr
import pandas as pd

from ...engine import ENGINE_NAMES
from ...helpers import format_duration, safe_stem
from ...history import EXPORT_FORMATS, Page, Record
from ...i18n import lang_of, t, ui
from ...qa import Hit
from ...service import TranscriptionService
from ...speakers import default_name, speaker_list
from ..components import Downloads, download_buttons, download_updates, info, segments_table, warn
from ..context import PageContext
from ..format import (
    ENGINE_LABELS,
    esc,
    failure_text,
    fmt_time,
    fmt_timestamp,
    preview,
    segments_frame,
    stored_error,
    strip_name,
    warn_status,
)

TAB_KEY = "tab_history"
HISTORY_PAGE_SIZE = 20


def history_headers(lang: str) -> list[str]:
    return [t(k, lang) for k in ("col_id", "col_time", "col_source", "col_duration", "col_preview")]


SOURCE_LABELS = {"microphone": "src_microphone", "api": "src_api", "websocket": "src_websocket"}


def source_label(source: str, lang: str) -> str:
    return t(SOURCE_LABELS[source], lang) if source in SOURCE_LABELS else source


def record_label(rec: Record, lang: str) -> str:
    """A record as lists name it: its name, with where it came from when that is not the name itself
    ("meeting.wav (API)"); records saved without a name show their source."""
    where = source_label(rec.source, lang)
    return where if not rec.name or rec.name == rec.source else f"{rec.name} ({where})"


def page_count(total: int) -> int:
    return max(1, -(-total // HISTORY_PAGE_SIZE))


def page_line(result: Page, page: int, lang: str) -> str:
    if not result.total:
        return t("hist_empty", lang)
    if not result.total_exact:
        return t("hist_page_more", lang, page=page, total=result.total)
    return t("hist_page", lang, page=page, pages=page_count(result.total), total=result.total)


FLAGGED = "__flagged__"  # the quality-check filter's "any rule" choice (otherwise its value is a rule's name)


def parse_filters(
    query: str,
    date_from: str | None,
    date_to: str | None,
    engine: str,
    source: str,
    status: str,
    qa: str = "",
    speaker: str | None = None,
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
        "speaker": (speaker or "").strip() or None,
        "flagged": qa == FLAGGED,
        "rule": qa if qa and qa != FLAGGED else None,
    }


FILTER_COUNT = 7  # query, date from, date to, engine, source, status, QA; the speaker filter comes after the language


def split_args(args: tuple[Any, ...]) -> tuple[list[Any], Any, str]:
    """A search's inputs: the seven filters, the page number, the page language, then (optionally) the speaker
    filter, which joins the filters."""
    filters = [*args[:FILTER_COUNT], *args[FILTER_COUNT + 2 : FILTER_COUNT + 3]]
    return filters, args[FILTER_COUNT], args[FILTER_COUNT + 1]


def speaker_frame(rec: Record | None, lang: str) -> pd.DataFrame:
    """The rename table of a record: label, display name."""
    rows = [[s["label"], s["name"]] for s in (speaker_list(rec.transcript()) if rec is not None else [])]
    return pd.DataFrame(rows, columns=[t("col_label", lang), t("col_name", lang)])


def _days(value: Any) -> float | None:
    try:
        days = float(value)
    except (TypeError, ValueError):
        return None
    return days if days >= 0 else None


class HistoryCallbacks:
    """The tab's callbacks. Filter values come as query, date from, date to, engine, source, status, QA."""

    def __init__(self, service: TranscriptionService, downloads: Downloads | None = None) -> None:
        self.service = service
        self.downloads = downloads or Downloads()

    # ------------------------------------------------------------------ the list

    def history_row(self, rec: Record, lang: str) -> list[Any]:
        error = strip_name(stored_error(rec, lang), rec.title)
        if rec.status == "done":
            text = preview(rec.text)
        elif rec.status == "interrupted":
            text = t("st_interrupted", lang)
        else:
            text = t("st_failed", lang, reason=preview(error))
        duration = format_duration(rec.duration or None, lang)
        return [rec.id, fmt_time(rec.created_at), record_label(rec, lang), duration, text]

    def history_page(
        self,
        query: str,
        date_from: str | None,
        date_to: str | None,
        engine: str,
        source: str,
        status: str,
        qa: str,
        page: int,
        lang: str,
        speaker: str | None = None,
    ) -> list[Any]:
        """One page of the history table: [table, page line, page number, previous button, next button]."""
        lang = lang_of(lang)
        page = max(1, int(page or 1))
        try:
            filters = parse_filters(query, date_from, date_to, engine, source, status, qa, speaker)
            result = self._search(filters, page)
            if not result.records and page > 1:  # the last page emptied by a delete: step back
                page = page_count(result.total)
                result = self._search(filters, page)
        except ValueError:
            warn(t("msg_bad_date", lang), lang)
            result = Page([], 0, HISTORY_PAGE_SIZE, 0)
        rows = [self.history_row(rec, lang) for rec in result.records]
        table = pd.DataFrame(rows, columns=history_headers(lang))
        return [
            table,
            page_line(result, page, lang),
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

    def _page_of(self, filters: list[Any], page: int, lang: str) -> list[Any]:
        return self.history_page(*filters[:FILTER_COUNT], page, lang, *filters[FILTER_COUNT:])

    def history_first(self, *args: Any) -> list[Any]:
        """Search from page 1 (new search or filters)."""
        filters, _page, lang = split_args(args)
        return self._page_of(filters, 1, lang)

    def history_prev(self, *args: Any) -> list[Any]:
        filters, page, lang = split_args(args)
        return self._page_of(filters, max(1, int(page or 1) - 1), lang)

    def history_next(self, *args: Any) -> list[Any]:
        filters, page, lang = split_args(args)
        return self._page_of(filters, int(page or 1) + 1, lang)

    def speaker_filter_choices(self) -> Any:
        """The speaker filter offers every name given in the history (refreshed when the tab opens)."""
        return gr.update(choices=[(ui("filter_all"), ""), *((n, n) for n in self.service.speaker_names())])

    @staticmethod
    def last_7_days() -> tuple[str, str]:
        today = date.today()
        return (today - timedelta(days=7)).isoformat(), today.isoformat()

    @staticmethod
    def clear_filters() -> tuple[str, None, None, str, str, str, str, str]:
        return "", None, None, "", "", "", "", ""

    def qa_choices(self, lang: str) -> Any:
        """The quality-check filter: all, any rule, or one rule (the rules change on the QA tab)."""
        lang = lang_of(lang)
        names = self.service.qa.rule_names()
        choices = [(t("filter_all", lang), ""), (t("hist_qa_flagged", lang), FLAGGED), *[(n, n) for n in names]]
        return gr.update(choices=choices)

    # ------------------------------------------------------------------ one record

    def detail_values(self, rec: Record | None, lang: str) -> list[Any]:
        """The selected record: [summary, text, segments, audio, a download per format, selected id, delete button]."""
        if rec is None:
            empty = [t("hist_detail_idle", lang), "", segments_frame(None, lang), gr.update(value=None, visible=False)]
            return [*empty, *download_updates(None), None, gr.update(interactive=False)]
        summary = self.detail_summary(rec, lang)
        hits = self.service.qa.hits([rec.id]).get(rec.id, [])
        if hits:
            summary += "\n\n" + hits_markdown(hits, lang)
        if rec.status != "done":
            if rec.status == "interrupted":
                problem = t("msg_record_interrupted", lang)
            else:
                problem = t("msg_record_failed", lang, error=stored_error(rec, lang))
            summary += "\n\n" + warn_status(problem)
            downloads = download_updates(None)
        else:
            downloads = download_updates(self.downloads.write_downloads(rec.transcript(), rec.title))
        audio = gr.update(value=None, visible=False)
        if rec.audio_file is not None and rec.audio_file.is_file():
            # a copy in the temp folder: Gradio serves files only from there or the working directory
            copy = self.downloads.request_dir() / f"{safe_stem(rec.title, 'recording')}{rec.audio_file.suffix}"
            shutil.copyfile(rec.audio_file, copy)
            audio = gr.update(value=str(copy), visible=True)
        segments = highlight_hits(segments_frame(rec.transcript(), lang), hits)
        return [summary, rec.text, segments, audio, *downloads, rec.id, gr.update(interactive=True)]

    def speaker_values(self, selected: int | None, lang: str) -> list[Any]:
        """The rename panel of the selected record: [its speakers table, hint, save button]."""
        lang = lang_of(lang)
        rec = self.service.get(int(selected)) if selected is not None else None
        has = rec is not None and bool(speaker_list(rec.transcript()))
        hint = t("hist_speakers_hint", lang) if has else (t("hist_speakers_none", lang) if rec else "")
        return [gr.update(value=speaker_frame(rec, lang), visible=has), hint, gr.update(visible=has)]

    def speakers_save(self, selected: int | None, table: Any, lang: str) -> list[Any]:
        """Rename the selected record's speakers from the edited table; returns the detail outputs (its sentences
        and downloads use the names at once)."""
        lang = lang_of(lang)
        if selected is None:
            warn(t("msg_select_first", lang), lang)
            return self.detail_values(None, lang)
        rows = table.values.tolist() if isinstance(table, pd.DataFrame) else list(table or [])
        names = {str(row[0]): "" if row[1] is None else str(row[1]) for row in rows if row and row[0]}
        rec = self.service.get(int(selected))
        if rec is not None:  # a typed name equal to the default is no name
            defaults = {s["label"]: default_name(s["label"], rec.language) for s in speaker_list(rec.transcript())}
            names = {k: ("" if v.strip() == defaults.get(k) else v) for k, v in names.items()}
        try:
            rec = self.service.rename_speakers(int(selected), names)
        except Exception as e:  # a vanished record or a label it does not have: a message, not a crash
            warn(failure_text(e, lang), lang)
            return self.detail_values(self.service.get(int(selected)), lang)
        info(t("msg_speakers_saved", lang), lang)
        return self.detail_values(rec, lang)

    def detail_summary(self, rec: Record, lang: str) -> str:
        return t(
            "detail_line",
            lang,
            source=esc(record_label(rec, lang)),
            time=esc(fmt_time(rec.created_at)),
            duration=esc(format_duration(rec.duration, lang)),
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

    # ------------------------------------------------------------------ export and purge

    def history_export(self, fmt: str, *args: Any) -> Any:
        """Every record the current search and filters find, as one file (JSON, CSV or a zip)."""
        filter_values, lang = [*args[:FILTER_COUNT], *args[FILTER_COUNT + 1 :]], args[FILTER_COUNT]
        lang = lang_of(lang)
        try:
            filters = parse_filters(*filter_values)
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
        path = self.downloads.request_dir() / f"transcripts{kind}-{datetime.now():%Y%m%d-%H%M%S}.{suffix}"
        path.write_bytes(data)
        info(t("msg_exported", lang, count=len(ids)), lang)
        return gr.update(value=str(path), visible=True)

    def history_purge_ask(self, days: Any, lang: str) -> list[Any]:
        lang = lang_of(lang)
        n = _days(days)
        if n is None:
            warn(t("msg_bad_days", lang), lang)
            return [gr.update(visible=False), ""]
        return [gr.update(visible=True), "⚠ " + t("hist_purge_confirm", lang, days=f"{n:g}")]

    def history_purge(self, days: Any, lang: str) -> Any:
        lang = lang_of(lang)
        n = _days(days)
        if n is not None:
            removed = self.service.purge(n)
            info(t("msg_purged", lang, count=removed, days=f"{n:g}"), lang)
        return gr.update(visible=False)


def hits_markdown(hits: list[Hit], lang: str) -> str:
    """One line for the History tab's detail: each hit with its time."""
    parts = []
    for h in hits:
        when = f" {fmt_timestamp(h.start)}" if h.start is not None and h.kind == "forbidden" else ""
        parts.append(f"⚑ {esc(h.rule)} ({t(f'qa_kind_{h.kind}', lang)}: {esc(preview(h.phrase, 40))}{when})")
    return t("hist_qa_line", lang, hits=" · ".join(parts))


def highlight_hits(frame: pd.DataFrame, hits: list[Hit]) -> pd.DataFrame:
    """The sentence table with each sentence a quality rule flagged marked: ⚑ rule, the phrase in 【】."""
    by_segment: dict[int, list[Hit]] = {}
    for h in hits:
        if h.segment is not None and 0 <= h.segment < len(frame):
            by_segment.setdefault(h.segment, []).append(h)
    if not by_segment:
        return frame
    frame = frame.copy()
    col = frame.columns[-1]  # the text
    for i, seg_hits in by_segment.items():
        text = str(frame.iat[i, frame.columns.get_loc(col)])
        for phrase in {h.phrase for h in seg_hits}:
            text = text.replace(phrase, f"【{phrase}】")
        rules = ", ".join(sorted({h.rule for h in seg_hits}))
        frame.iat[i, frame.columns.get_loc(col)] = f"⚑ {rules}: {text}"
    return frame


# --------------------------------------------------------------------------- layout


@dataclass
class HistoryTab:
    tab: gr.Tab
    table: gr.Dataframe
    segments: gr.Dataframe  # the open record's sentences
    search_inputs: list[gr.components.Component]  # what a search reads: the filters, the page number, the language
    page_outputs: list[gr.components.Component]  # what it writes: see HistoryCallbacks.history_page
    callbacks: HistoryCallbacks = field(repr=False)


def create_history(ctx: PageContext) -> HistoryTab:
    callbacks = HistoryCallbacks(ctx.service, ctx.downloads)
    with gr.Tab(ui(TAB_KEY), id="history") as tab:
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
                [(ui("filter_all"), ""), *[(ENGINE_LABELS[name], name) for name in ENGINE_NAMES]],
                value="",
                label=ui("hist_engine"),
                elem_id="history-engine",
            )
            source = gr.Dropdown(
                [
                    (ui("filter_all"), ""),
                    (ui("src_microphone"), "microphone"),
                    (ui("src_api"), "api"),
                    (ui("src_websocket"), "websocket"),
                ],
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
            speaker = gr.Dropdown(
                [(ui("filter_all"), "")],
                value="",
                label=ui("hist_speaker"),
                info=ui("hist_speaker_info"),
                allow_custom_value=True,
                elem_id="history-speaker",
            )
            qa_filter = gr.Dropdown(
                [(ui("filter_all"), ""), (ui("hist_qa_flagged"), FLAGGED)],
                value="",
                label=ui("hist_qa"),
                elem_id="history-qa",
            )
            with gr.Column(min_width=160):
                search = gr.Button(ui("hist_search_btn"), variant="primary", elem_id="history-search")
                with gr.Row():
                    last7 = gr.Button(ui("hist_last7"), size="sm", elem_id="history-last7")
                    clear = gr.Button(ui("hist_clear"), size="sm", elem_id="history-clear")
        table = gr.Dataframe(
            pd.DataFrame([], columns=history_headers("en")),
            label=ui("hist_table"),
            interactive=False,
            wrap=True,
            column_widths=["8%", "17%", "22%", "10%", "43%"],
            max_height=520,
            elem_id="history-table",
        )
        with gr.Row():
            prev_btn = gr.Button(ui("hist_prev"), size="sm", interactive=False, elem_id="history-prev")
            page_md = gr.Markdown("", elem_id="history-page")
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
                segments = segments_table("history-segments", max_height=300)
                speakers_md = gr.Markdown("", elem_id="history-speakers-hint", elem_classes="hint")
                speakers = gr.Dataframe(
                    speaker_frame(None, "en"),
                    label=ui("hist_speakers"),
                    interactive=True,
                    static_columns=[0],
                    visible=False,
                    elem_id="history-speakers",
                )
                speakers_save = gr.Button(
                    ui("hist_speakers_save"), size="sm", visible=False, elem_id="history-speakers-save"
                )
            with gr.Column(scale=2):
                audio = gr.Audio(
                    label=ui("hist_audio"), type="filepath", interactive=False, visible=False, buttons=["download"]
                )
                gr.Markdown(ui("downloads"))
                downloads = download_buttons("history", min_width=70)
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

        filters = [query, date_from, date_to, engine, source, status, qa_filter]
        lang = ctx.lang
        search_inputs = [*filters, page, lang, speaker]
        page_outputs = [table, page_md, page, prev_btn, next_btn]
        detail_outputs = [detail_md, detail_text, segments, audio, *downloads, selected, delete]

        triggers = (
            search.click,
            query.submit,
            engine.input,
            status.input,
            source.input,
            speaker.input,
            qa_filter.input,
            tab.select,
        )
        for trigger in triggers:
            trigger(callbacks.history_first, search_inputs, page_outputs, show_progress="minimal")
        tab.select(callbacks.speaker_filter_choices, None, speaker, queue=False)
        tab.select(callbacks.qa_choices, [lang], qa_filter, show_progress="hidden")
        speaker_outputs = [speakers, speakers_md, speakers_save]
        prev_btn.click(callbacks.history_prev, search_inputs, page_outputs, show_progress="minimal")
        next_btn.click(callbacks.history_next, search_inputs, page_outputs, show_progress="minimal")
        last7.click(callbacks.last_7_days, None, [date_from, date_to], queue=False).then(
            callbacks.history_first, search_inputs, page_outputs
        )
        clear.click(callbacks.clear_filters, None, [*filters, speaker], queue=False).then(
            callbacks.history_first, search_inputs, page_outputs
        )
        table.select(callbacks.history_select, [lang], detail_outputs, show_progress="minimal").then(
            callbacks.speaker_values, [selected, lang], speaker_outputs, queue=False
        )
        speakers_save.click(callbacks.speakers_save, [selected, speakers, lang], detail_outputs).then(
            callbacks.speaker_values, [selected, lang], speaker_outputs, queue=False
        ).then(callbacks.history_page, [*filters, page, lang, speaker], page_outputs).then(
            callbacks.speaker_filter_choices, None, speaker, queue=False
        )
        delete.click(callbacks.history_delete_ask, [selected, lang], confirm_row)
        cancel.click(lambda: gr.update(visible=False), None, confirm_row, queue=False)
        confirm.click(callbacks.history_delete, [selected, lang], [confirm_row, *detail_outputs]).then(
            callbacks.history_page, [*filters, page, lang, speaker], page_outputs
        ).then(callbacks.speaker_values, [selected, lang], speaker_outputs, queue=False)
        export.click(callbacks.history_export, [export_fmt, *filters, lang, speaker], export_file)
        purge.click(callbacks.history_purge_ask, [days, lang], [purge_row, purge_md])
        purge_no.click(lambda: gr.update(visible=False), None, purge_row, queue=False)
        purge_yes.click(callbacks.history_purge, [days, lang], purge_row).then(
            callbacks.history_first, search_inputs, page_outputs
        )
    return HistoryTab(tab, table, segments, search_inputs, page_outputs, callbacks)
