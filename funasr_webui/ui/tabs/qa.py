"""Quality checks (质检): the rules (add, edit, delete, enable, import, export, the hotword switch, apply to the
history), a summary of a date range, the flagged calls with their hits, and the report download."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import gradio as gr
import pandas as pd

from ...errors import UserError
from ...helpers import format_duration
from ...i18n import lang_of, t, ui
from ...qa import Hit, Rule
from ...service import TranscriptionService
from ..components import Downloads, info, warn
from ..context import PageContext
from ..format import esc, fmt_time, fmt_timestamp
from .history import parse_filters, record_label

TAB_KEY = "tab_qa"
FLAGGED_LIMIT = 200


def rule_headers(lang: str) -> list[str]:
    keys = ("col_id", "qa_col_name", "qa_col_kind", "qa_col_phrases", "qa_col_window", "qa_col_speaker")
    return [t(k, lang) for k in (*keys, "qa_col_enabled")]


def per_rule_headers(lang: str) -> list[str]:
    return [t(k, lang) for k in ("qa_col_rule", "qa_col_hits", "qa_col_calls")]


def flagged_headers(lang: str) -> list[str]:
    return [t(k, lang) for k in ("col_id", "col_time", "col_source", "qa_col_hits", "qa_col_rules")]


def hit_headers(lang: str) -> list[str]:
    return [t(k, lang) for k in ("qa_col_rule", "qa_col_kind", "qa_col_phrase", "col_start", "col_end", "col_text")]


def window_text(rule: Rule, lang: str) -> str:
    if rule.within_s is None:
        return t("qa_whole_call", lang)
    return ", ".join(f"{x:g}" for x in rule.within_s)


def parse_window(text: str | None) -> list[float] | None:
    """The window box: "0, 15" / "-30 0" / "" (the whole call); ValueError for anything else."""
    parts = [p for p in re.split(r"[,\s，~～]+", (text or "").strip()) if p]
    if not parts:
        return None
    if len(parts) != 2:
        raise ValueError(text)
    return [float(p) for p in parts]


def hit_time(h: Hit) -> tuple[str, str]:
    if h.start is None or h.end is None:
        return "", ""
    return fmt_timestamp(h.start), fmt_timestamp(h.end)


class QaCallbacks:
    """The tab's callbacks; every one ends with the page language. Rules go through service.qa only."""

    def __init__(self, service: TranscriptionService, downloads: Downloads | None = None) -> None:
        self.service = service
        self.downloads = downloads or Downloads()

    @property
    def qa(self):
        return self.service.qa

    # ------------------------------------------------------------------ rules

    def rules_table(self, lang: str) -> pd.DataFrame:
        lang = lang_of(lang)
        rows = []
        for r in self.qa.rules():
            speaker = t("qa_speaker_n", lang, n=r.speaker) if r.speaker else t("qa_anyone", lang)
            rows.append([
                r.id, r.name, t(f"qa_kind_{r.kind}", lang), " / ".join(r.phrases), window_text(r, lang), speaker,
                t("qa_yes" if r.enabled else "qa_no", lang),
            ])  # fmt: skip
        return pd.DataFrame(rows, columns=rule_headers(lang))

    def rules_view(self, lang: str) -> list[Any]:
        """[rules table, hotword switch]."""
        return [self.rules_table(lang), gr.update(value=self.qa.hotwords_on())]

    @staticmethod
    def empty_form() -> list[Any]:
        """[selected id, name, kind, phrases, window, speaker, enabled, delete button]."""
        return [None, "", "forbidden", "", "", "", True, gr.update(interactive=False)]

    def rule_select(self, evt: gr.SelectData, lang: str) -> list[Any]:
        try:
            rule = self.qa.rule(int((evt.row_value or [None])[0]))
        except (TypeError, ValueError, UserError):
            return self.empty_form()
        window = ", ".join(f"{x:g}" for x in rule.within_s) if rule.within_s else ""
        speaker = str(rule.speaker) if rule.speaker else ""
        return [rule.id, rule.name, rule.kind, "\n".join(rule.phrases), window, speaker, rule.enabled,
                gr.update(interactive=True)]  # fmt: skip

    def rule_save(
        self,
        selected: int | None,
        name: str,
        kind: str,
        phrases: str,
        window: str,
        speaker: str,
        enabled: bool,
        lang: str,
    ) -> list[Any]:
        """Add (nothing selected) or update the selected rule: [rules table, selected id, delete button]."""
        lang = lang_of(lang)
        try:
            within = parse_window(window)
        except ValueError:
            warn(t("msg_bad_window", lang), lang)
            return [gr.skip(), gr.skip(), gr.skip()]
        data: dict[str, Any] = {"name": name or "", "kind": kind, "phrases": (phrases or "").splitlines()}
        data |= {"within_s": within, "speaker": int(speaker) if speaker else None, "enabled": bool(enabled)}
        try:
            rule = self.qa.add_rule(data) if selected is None else self.qa.update_rule(int(selected), data)
        except UserError as e:
            warn(e.message(lang), lang)
            return [gr.skip(), gr.skip(), gr.skip()]
        info(t("msg_rule_saved", lang, name=rule.name), lang)
        return [self.rules_table(lang), rule.id, gr.update(interactive=True)]

    def rule_delete(self, selected: int | None, lang: str) -> list[Any]:
        """[rules table, *empty form]."""
        lang = lang_of(lang)
        if selected is None:
            warn(t("msg_select_first", lang), lang)
            return [gr.skip(), *self.empty_form()]
        try:
            self.qa.delete_rule(int(selected))
            info(t("msg_rule_deleted", lang), lang)
        except UserError as e:
            warn(e.message(lang), lang)
        return [self.rules_table(lang), *self.empty_form()]

    def rules_import(self, path: str | None, lang: str) -> list[Any]:
        """[rules table, upload box (emptied)]; a bad file changes nothing and says what is wrong."""
        lang = lang_of(lang)
        if not path:
            return [gr.skip(), gr.skip()]
        try:
            with open(path, "rb") as f:
                added, updated, _ = self.qa.import_rules(f.read(1 << 20))
            info(t("msg_rules_imported", lang, added=added, updated=updated), lang)
        except UserError as e:
            warn(e.message(lang), lang)
        return [self.rules_table(lang), None]

    def rules_export(self, lang: str) -> Any:
        path = self.downloads.request_dir() / f"qa-rules-{datetime.now():%Y%m%d-%H%M%S}.json"
        path.write_text(self.qa.export_rules(), encoding="utf-8")
        return gr.update(value=str(path), visible=True)

    def set_hotwords(self, on: bool, lang: str) -> None:
        self.qa.set_hotwords(bool(on))

    def apply(self, date_from: str | None, date_to: str | None, lang: str) -> list[Any]:
        """Check the records of the date range again: [summary, per rule, flagged table]."""
        lang = lang_of(lang)
        dates = self._dates(date_from, date_to, lang)
        if dates is None:
            return [gr.skip()] * 3
        if not self.qa.active_rules():
            warn(t("msg_no_rules", lang), lang)
        n, hits = self.qa.apply(*dates)
        info(t("msg_rules_applied", lang, count=n, hits=hits), lang)
        return self.summary(date_from, date_to, lang)

    # ------------------------------------------------------------------ summary, flagged calls, report

    def _dates(self, date_from: str | None, date_to: str | None, lang: str) -> tuple[str | None, str | None] | None:
        try:
            f = parse_filters("", date_from, date_to, "", "", "")
        except ValueError:
            warn(t("msg_bad_date", lang), lang)
            return None
        return f["date_from"], f["date_to"]

    def summary(self, date_from: str | None, date_to: str | None, lang: str) -> list[Any]:
        """[summary line, hits per rule, flagged calls]."""
        lang = lang_of(lang)
        dates = self._dates(date_from, date_to, lang)
        if dates is None:
            return [gr.skip()] * 3
        s = self.qa.summary(*dates)
        share = f"{100 * s['flagged'] / s['checked']:.1f}%" if s["checked"] else "—"
        line = t("qa_summary", lang, checked=s["checked"], flagged=s["flagged"], share=share)
        per_rule = pd.DataFrame(
            [[r["rule"], r["hits"], r["calls"]] for r in s["rules"]], columns=per_rule_headers(lang)
        )
        rows = []
        for rec, hits in self.qa.flagged(*dates, limit=FLAGGED_LIMIT):
            names = sorted({h.rule for h in hits})
            rows.append([rec.id, fmt_time(rec.created_at), record_label(rec, lang), len(hits), ", ".join(names)])
        return [line, per_rule, pd.DataFrame(rows, columns=flagged_headers(lang))]

    def call_values(self, record_id: int | None, lang: str) -> list[Any]:
        """The chosen call: [summary line, text, hits table]."""
        lang = lang_of(lang)
        rec = self.service.get(record_id) if record_id is not None else None
        if rec is None:
            return [t("qa_call_idle", lang), "", pd.DataFrame([], columns=hit_headers(lang))]
        line = t(
            "qa_call_line",
            lang,
            source=esc(record_label(rec, lang)),
            time=esc(fmt_time(rec.created_at)),
            duration=esc(format_duration(rec.duration, lang)),
            id=rec.id,
        )
        rows = []
        for h in self.qa.hits([rec.id]).get(rec.id, []):
            start, end = hit_time(h)
            rows.append([h.rule, t(f"qa_kind_{h.kind}", lang), h.phrase, start, end, h.text])
        return [line, rec.text, pd.DataFrame(rows, columns=hit_headers(lang))]

    def flagged_select(self, evt: gr.SelectData, lang: str) -> list[Any]:
        try:
            record_id = int((evt.row_value or [None])[0])
        except (TypeError, ValueError):
            record_id = None
        return self.call_values(record_id, lang)

    def report(self, fmt: str, date_from: str | None, date_to: str | None, lang: str) -> Any:
        lang = lang_of(lang)
        dates = self._dates(date_from, date_to, lang)
        if dates is None:
            return gr.update(value=None, visible=False)
        fmt = fmt if fmt in ("csv", "xlsx") else "csv"
        items = self.qa.report(*dates)
        if not items:
            warn(t("msg_report_empty", lang), lang)
            return gr.update(value=None, visible=False)
        from ...qa.report import render_report

        path = self.downloads.request_dir() / f"qa-report-{datetime.now():%Y%m%d-%H%M%S}.{fmt}"
        path.write_bytes(render_report(items, fmt))
        return gr.update(value=str(path), visible=True)


# --------------------------------------------------------------------------- layout


@dataclass
class QaTab:
    tab: gr.Tab
    rules: gr.Dataframe
    flagged: gr.Dataframe
    callbacks: QaCallbacks = field(repr=False)


def create_qa(ctx: PageContext) -> QaTab:
    callbacks = QaCallbacks(ctx.service, ctx.downloads)
    lang = ctx.lang
    with gr.Tab(ui(TAB_KEY), id="qa") as tab:
        gr.Markdown(ui("qa_intro"), elem_classes="hint")
        rules = gr.Dataframe(
            pd.DataFrame([], columns=rule_headers("en")),
            label=ui("qa_rules"),
            interactive=False,
            wrap=True,
            column_widths=["6%", "16%", "10%", "34%", "12%", "12%", "10%"],
            max_height=360,
            elem_id="qa-rules",
        )
        selected = gr.State(None)
        with gr.Accordion(ui("qa_edit"), open=True):
            with gr.Row():
                name = gr.Textbox(label=ui("qa_name"), info=ui("qa_name_info"), elem_id="qa-name")
                kind = gr.Radio(
                    [(ui("qa_kind_forbidden"), "forbidden"), (ui("qa_kind_required"), "required")],
                    value="forbidden",
                    label=ui("qa_kind"),
                    info=ui("qa_kind_info"),
                    elem_id="qa-kind",
                )
            with gr.Row():
                phrases = gr.Textbox(label=ui("qa_phrases"), info=ui("qa_phrases_info"), lines=3, elem_id="qa-phrases")
                with gr.Column():
                    window = gr.Textbox(label=ui("qa_window"), info=ui("qa_window_info"), elem_id="qa-window")
                    speaker = gr.Dropdown(
                        [(ui("qa_anyone"), ""), ("1", "1"), ("2", "2"), ("3", "3")],
                        value="",
                        label=ui("qa_speaker"),
                        info=ui("qa_speaker_info"),
                        elem_id="qa-speaker",
                    )
                    enabled = gr.Checkbox(value=True, label=ui("qa_enabled"), elem_id="qa-enabled")
            with gr.Row():
                save = gr.Button(ui("qa_save"), variant="primary", elem_id="qa-save")
                new = gr.Button(ui("qa_new"), elem_id="qa-new")
                delete = gr.Button(ui("qa_delete"), variant="stop", interactive=False, elem_id="qa-delete")
        with gr.Row(equal_height=False):
            upload = gr.File(
                label=ui("qa_import"), file_types=[".json"], type="filepath", height=110, elem_id="qa-import"
            )
            with gr.Column():
                gr.Markdown(ui("qa_import_info"), elem_classes="hint")
                export = gr.Button(ui("qa_export"), size="sm", elem_id="qa-export")
                export_file = gr.File(label=ui("qa_export"), visible=False, elem_id="qa-export-file")
        hotwords = gr.Checkbox(label=ui("qa_hotwords"), info=ui("qa_hotwords_info"), elem_id="qa-hotwords")

        gr.Markdown("### " + str(ui("qa_summary_title")))
        with gr.Row():
            date_from = gr.DateTime(label=ui("hist_from"), include_time=False, type="string", elem_id="qa-from")
            date_to = gr.DateTime(label=ui("hist_to"), include_time=False, type="string", elem_id="qa-to")
            with gr.Column(min_width=160):
                refresh = gr.Button(ui("qa_refresh"), variant="primary", elem_id="qa-refresh")
                apply = gr.Button(ui("qa_apply"), size="sm", elem_id="qa-apply")
        gr.Markdown(ui("qa_apply_info"), elem_classes="hint")
        summary_md = gr.Markdown("", elem_id="qa-summary")
        with gr.Row(equal_height=False):
            per_rule = gr.Dataframe(
                pd.DataFrame([], columns=per_rule_headers("en")),
                label=ui("qa_per_rule"),
                interactive=False,
                scale=1,
                elem_id="qa-per-rule",
            )
            flagged = gr.Dataframe(
                pd.DataFrame([], columns=flagged_headers("en")),
                label=ui("qa_flagged"),
                interactive=False,
                wrap=True,
                max_height=400,
                scale=2,
                elem_id="qa-flagged",
            )
        gr.Markdown("### " + str(ui("qa_call")))
        call_md = gr.Markdown(ui("qa_call_idle"), elem_id="qa-call")
        call_text = gr.Textbox(label=ui("transcript"), lines=3, interactive=False, elem_id="qa-call-text")
        hits = gr.Dataframe(
            pd.DataFrame([], columns=hit_headers("en")),
            label=ui("qa_hits"),
            interactive=False,
            wrap=True,
            elem_id="qa-hits",
        )
        with gr.Row(equal_height=False):
            report_fmt = gr.Dropdown(
                [("CSV", "csv"), ("Excel (XLSX)", "xlsx")], value="csv", label=ui("qa_report_format"), scale=1
            )
            with gr.Column(scale=2):
                gr.Markdown(ui("qa_report_hint"), elem_classes="hint")
                report = gr.Button(ui("qa_report"), elem_id="qa-report")
                report_file = gr.File(label=ui("qa_report_file"), visible=False, elem_id="qa-report-file")

        form = [selected, name, kind, phrases, window, speaker, enabled, delete]
        summary_out = [summary_md, per_rule, flagged]
        fast = {"show_progress": "minimal"}
        tab.select(callbacks.rules_view, [lang], [rules, hotwords], **fast).then(
            callbacks.summary, [date_from, date_to, lang], summary_out, **fast
        )
        rules.select(callbacks.rule_select, [lang], form, **fast)
        save.click(callbacks.rule_save, [*form[:-1], lang], [rules, selected, delete], **fast)
        new.click(callbacks.empty_form, None, form, queue=False)
        delete.click(callbacks.rule_delete, [selected, lang], [rules, *form], **fast)
        upload.upload(callbacks.rules_import, [upload, lang], [rules, upload], **fast)
        export.click(callbacks.rules_export, [lang], export_file, **fast)
        hotwords.input(callbacks.set_hotwords, [hotwords, lang], None, **fast)
        refresh.click(callbacks.summary, [date_from, date_to, lang], summary_out, **fast)
        apply.click(callbacks.apply, [date_from, date_to, lang], summary_out, **fast)
        flagged.select(callbacks.flagged_select, [lang], [call_md, call_text, hits], **fast)
        report.click(callbacks.report, [report_fmt, date_from, date_to, lang], report_file, **fast)
    return QaTab(tab, rules, flagged, callbacks)
