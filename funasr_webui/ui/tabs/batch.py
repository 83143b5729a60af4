"""Batch: many files in one go, a table filling in file by file, one zip of every transcript (with a work queue,
the files go to the workers: batch_queue.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from ... import writers
from ...audio import AudioError
from ...errors import UserError
from ...helpers import format_duration, safe_stem
from ...history import write_transcripts_zip
from ...i18n import lang_of, t, ui
from ...service import TranscriptionService
from ...transcript import Transcript
from ..components import PROGRESS, Downloads, OptionWidgets, inference, option_widgets, report_progress, warn
from ..context import PageContext
from ..format import esc, failure_text, preview, stored_error, strip_name, warn_status
from .batch_queue import queued_batch

log = logging.getLogger(__name__)

TAB_KEY = "tab_batch"


@dataclass
class BatchResults:
    """What a batch produced, kept per browser session to rebuild the zip in another format."""

    done: list[tuple[str, Transcript]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def batch_headers(lang: str) -> list[str]:
    return [t(k, lang) for k in ("col_file", "col_duration", "col_status", "col_preview", "col_elapsed")]


def zip_update(path: Path | None) -> Any:
    return gr.update(value=str(path) if path else None, interactive=path is not None)


class BatchCallbacks:
    def __init__(self, service: TranscriptionService, downloads: Downloads | None = None) -> None:
        self.service = service
        self.downloads = downloads or Downloads()

    def batch_run(
        self,
        files: list[str] | None,
        hotwords: str,
        itn: bool,
        language: str,
        fmt: str,
        lang: str,
        engine: str = "",
        speakers: str = "",
        progress: gr.Progress = PROGRESS,
    ) -> Iterator[list[Any]]:
        """Transcribe each file in turn, updating the table after each; a bad file fails alone.

        Yields [status, table, zip button, BatchResults]."""
        lang = lang_of(lang)
        settings = self.service.settings
        headers = batch_headers(lang)
        no_zip = gr.update(value=None, interactive=False)
        files = list(files or [])
        problem = None
        if not files:
            problem = t("msg_no_files", lang)
        elif len(files) > settings.max_batch_files:
            problem = t("msg_too_many_files", lang, count=len(files), max=settings.max_batch_files)
        if problem is None:
            try:
                options = self.service.options(hotwords, itn, language, engine=engine or None, speakers=speakers)
            except Exception as e:
                problem = failure_text(e, lang)
        if problem is not None:
            warn(problem, lang)
            yield [warn_status(problem), pd.DataFrame([], columns=headers), no_zip, BatchResults()]
            return
        names = [Path(f).name for f in files]
        if self.service.work_queue is not None:
            yield from self._batch_queued(files, names, options, engine, fmt, lang, progress)
            return
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
        yield [icon + esc(summary), pd.DataFrame(rows, columns=headers), zip_update(zip_path), results]

    def _batch_queued(
        self, files: list[str], names: list[str], options: Any, engine: str, fmt: str, lang: str, progress: Any
    ) -> Iterator[list[Any]]:
        """Serve --queue: the files go to the work queue; the table fills in as workers finish them."""
        headers = batch_headers(lang)
        no_zip = gr.update(value=None, interactive=False)
        results = BatchResults()

        def collect(name: str, record: Any) -> None:
            if record.status == "done":
                results.done.append((name, record.transcript()))
            else:
                results.failed.append((name, strip_name(stored_error(record, lang), name)))

        rows: list[list[str]] = []
        try:
            for status, rows, ended in queued_batch(self.service, files, names, options, engine, lang, collect):
                progress(ended / len(files), desc=status)
                if ended < len(files):
                    yield ["▶ " + esc(status), pd.DataFrame(rows, columns=headers), no_zip, results]
        except UserError as e:
            warn(e.message(lang), lang)
            yield [warn_status(e.message(lang)), pd.DataFrame(rows, columns=headers), no_zip, results]
            return
        icon = "✔ " if not results.failed else "⚠ "
        yield [
            icon + esc(status),
            pd.DataFrame(rows, columns=headers),
            zip_update(self.batch_zip(results, fmt, lang)),
            results,
        ]

    def _batch_one(self, path: str, name: str, options: Any, lang: str, results: BatchResults) -> list[str]:
        try:
            outcome = self.service.transcribe_file(path, name=name, source=name, options=options)
        except Exception as e:  # transcribe_file already saved the failure to History
            if not isinstance(e, UserError | AudioError):
                log.exception("batch file %s failed", name)
            reason = strip_name(failure_text(e, lang), name)
            results.failed.append((name, reason))
            return [name, "—", t("st_failed", lang, reason=reason), "", "—"]
        tr = outcome.transcript
        results.done.append((name, tr))
        status = t("st_done", lang) if not outcome.save_error else t("msg_done_unsaved", lang, error=outcome.save_error)
        return [name, format_duration(tr.duration, lang), status, preview(tr.text), format_duration(tr.elapsed, lang)]

    def batch_zip(self, results: BatchResults, fmt: str, lang: str) -> Path | None:
        """One file per finished recording in ``fmt``, plus a list of the files that failed and why."""
        if not results.done and not results.failed:
            return None
        fmt = fmt if fmt in writers.FORMATS else "txt"
        path = self.downloads.request_dir() / f"transcripts-{fmt}-{datetime.now():%Y%m%d-%H%M%S}.zip"
        extra = []
        if results.failed:
            lines = [f"{name}\t{reason}" for name, reason in results.failed]
            extra.append(("failed.txt", t("zip_failed_list", lang) + "\n" + "\n".join(lines) + "\n"))
        done = [(safe_stem(name), tr, writers.DocumentInfo(title=name)) for name, tr in results.done]
        write_transcripts_zip(path, done, fmt, extra)
        return path

    def batch_format_changed(self, results: BatchResults | None, fmt: str, lang: str) -> Any:
        return zip_update(self.batch_zip(results or BatchResults(), fmt, lang_of(lang)))


@dataclass
class BatchTab:
    tab: gr.Tab
    files: gr.File
    options: OptionWidgets
    format: gr.Dropdown
    start: gr.Button
    status: gr.Markdown
    table: gr.Dataframe
    zip_button: gr.DownloadButton
    results: gr.State
    callbacks: BatchCallbacks = field(repr=False)


def create_batch(ctx: PageContext) -> BatchTab:
    callbacks = BatchCallbacks(ctx.service, ctx.downloads)
    with gr.Tab(ui(TAB_KEY), id="batch") as tab:
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                files = gr.File(
                    label=ui("batch_files"), file_count="multiple", type="filepath", height=180, elem_id="batch-files"
                )
                ctx.uploads.append(files)
                gr.Markdown(ui("batch_hint"), elem_classes="hint")
                if ctx.service.work_queue is not None:
                    gr.Markdown(ui("batch_queue_hint"), elem_classes="hint", elem_id="batch-queue-hint")
                options = option_widgets(ctx.service, "batch", speakers=True)
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
                    pd.DataFrame([], columns=batch_headers("en")),
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
        inputs = [files, *options.inputs(), fmt, ctx.lang, options.engine, options.speakers]
        if ctx.service.work_queue is None:
            inference(start.click, callbacks.batch_run, inputs, outputs, show_progress_on=[status])
        else:  # the workers transcribe: following the jobs must not hold this page's recognizer slot
            start.click(
                callbacks.batch_run,
                inputs,
                outputs,
                concurrency_id="work-queue",
                concurrency_limit=16,
                show_progress="full",
                show_progress_on=[status],
            )
        fmt.change(callbacks.batch_format_changed, [results, fmt, ctx.lang], zip_button, show_progress="hidden")
    return BatchTab(tab, files, options, fmt, start, status, table, zip_button, results, callbacks)
