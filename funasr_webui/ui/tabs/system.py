"""System: engine, models, device, versions, memory, the history's size and the work queue (when there is one);
a button to free GPU memory."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import pandas as pd

from ... import __version__
from ...errors import UserError
from ...helpers import format_size, loaded_torch
from ...i18n import lang_of, t, ui
from ...service import TranscriptionService
from ..components import info
from ..context import PageContext
from ..format import failure_text

log = logging.getLogger(__name__)

TAB_KEY = "tab_system"


def device_label(device: str, lang: str) -> str:
    """The engine's device for people: the GPU's name (when torch is loaded), or "CPU"."""
    if device == "cuda":
        try:
            return t("device_cuda", lang, name=loaded_torch().cuda.get_device_name(0))
        except Exception:
            return "GPU (CUDA)"
    return t("device_cpu", lang) if device == "cpu" else device


def torch_rows(lang: str) -> list[tuple[str, str]]:
    """PyTorch, CUDA and the GPU with its memory, as far as they are there. Torch is asked only when an engine
    loaded it: the embedded engine runs without it, and importing it here would add seconds to every start."""
    torch = loaded_torch()
    if torch is None:
        return untouched_torch_rows(lang)
    rows = [("sys_torch", torch.__version__), ("sys_cuda", torch.version.cuda or t("none", lang))]
    if not torch.cuda.is_available():
        return [*rows, ("sys_gpu", t("sys_no_gpu", lang))]
    free, total = torch.cuda.mem_get_info()
    rows += [
        ("sys_gpu", torch.cuda.get_device_name(0)),
        ("sys_gpu_mem", f"{format_size(total - free)} / {format_size(total)}"),
        ("sys_gpu_reserved", format_size(torch.cuda.memory_reserved())),
    ]
    return rows


def untouched_torch_rows(lang: str) -> list[tuple[str, str]]:
    """Without importing torch: its installed version, and the GPUs CTranslate2 (the embedded engine) sees."""
    try:
        version = t("sys_torch_unloaded", lang, version=importlib.metadata.version("torch"))
    except importlib.metadata.PackageNotFoundError:
        version = t("sys_not_installed", lang)
    import ctranslate2

    gpus = ctranslate2.get_cuda_device_count()
    return [("sys_torch", version), ("sys_gpu", t("sys_gpu_count", lang, n=gpus) if gpus else t("sys_no_gpu", lang))]


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
    return f"{format_size(total - available)} / {format_size(total)}"


class SystemCallbacks:
    def __init__(self, service: TranscriptionService) -> None:
        self.service = service

    def system_table(self, lang: str) -> pd.DataFrame:
        lang = lang_of(lang)
        rows = [(t(key, lang), value) for key, value in self.system_rows(lang)]
        return pd.DataFrame(rows, columns=[t("col_item", lang), t("col_value", lang)])

    def system_rows(self, lang: str) -> list[tuple[str, str]]:
        """(label key, value) for each line of the table."""
        described = self.service.describe()
        rows = [
            ("sys_engine", described.get("engine", "")),
            ("sys_model", described.get("model", "")),
            ("sys_model_path", described.get("model_path", "")),
            ("sys_vad_model", described.get("vad_model", "")),
        ]
        if described.get("punc_model"):
            rows.append(("sys_punc_model", described["punc_model"]))
        rows.append(("sys_device", device_label(self.service.engine.device, lang)))
        if described.get("compute_type"):
            rows.append(("sys_compute", described["compute_type"]))
        if len(self.service.engines) > 1:  # --engines: each loaded engine, its model and device
            for e in self.service.engines:
                rows.append(("sys_engines", f"{e.name}: {e.model_name} ({device_label(e.device, lang)})"))
        rows += torch_rows(lang)
        rows += [
            ("sys_cpu", str(os.cpu_count() or "?")),
            ("sys_ram", ram_usage() or t("sys_not_installed", lang)),
            ("sys_python", platform.python_version()),
            ("sys_gradio", f"{gr.__version__} (funasr-webui {__version__})"),
        ]
        rows += self.listening_rows(lang)
        rows += self.history_rows()
        if self.service.work_queue is not None:
            rows.append(("sys_work_queue", self.queue_line(lang)))
        return [(k, str(v)) for k, v in rows]

    def listening_rows(self, lang: str) -> list[tuple[str, str]]:
        """HTTPS (why the microphone works from other PCs, or not) and the FunASR WebSocket listener."""
        https = self.service.listening.https()
        if not https.enabled:
            line = t("sys_https_off", lang)
        else:
            kind = t("sys_https_self_signed" if https.self_signed else "sys_https_certificate", lang)
            names = ", ".join(https.names) or "—"
            line = t("sys_https_on", lang, kind=kind, names=names, until=https.valid_until or "—")
        funasr = self.service.listening.funasr_ws()
        if funasr is None:
            ws = t("sys_funasr_ws_off", lang)
        else:
            ws = t("sys_funasr_ws_on", lang, url=funasr.url, now=funasr.connections, cap=funasr.max_connections)
        return [("sys_https", line), ("sys_funasr_ws", ws)]

    def queue_line(self, lang: str) -> str:
        """The work queue in one line: jobs per state and the live workers (host: engines, jobs done)."""
        try:
            counts, workers = self.service.queue_status()
        except UserError as e:
            return failure_text(e, lang)
        names = ", ".join(f"{w.host} ({w.engines}, {w.jobs_done})" for w in workers)
        return t("sys_queue_line", lang, **counts, workers=len(workers), names=f": {names}" if names else "")

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
            ("sys_hist_size", format_size(stats["db_bytes"] + stats["audio_bytes"])),
            ("sys_hist_path", str(self.service.history_path)),
        ]

    def system_free_gpu(self, lang: str) -> pd.DataFrame:
        lang = lang_of(lang)
        freed = self.service.free_gpu_memory()
        if freed is None:
            info(t("msg_no_gpu", lang), lang)
            return self.system_table(lang)
        before, after = freed
        info(t("msg_gpu_freed", lang, before=format_size(before), after=format_size(after)), lang)
        return self.system_table(lang)


@dataclass
class SystemTab:
    tab: gr.Tab
    table: gr.Dataframe
    refresh: gr.Button
    free: gr.Button
    callbacks: SystemCallbacks = field(repr=False)


def create_system(ctx: PageContext) -> SystemTab:
    callbacks = SystemCallbacks(ctx.service)
    with gr.Tab(ui(TAB_KEY), id="system") as tab:
        table = gr.Dataframe(
            callbacks.system_table("en"),
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
        refresh.click(callbacks.system_table, [ctx.lang], table, show_progress="minimal")
        free.click(callbacks.system_free_gpu, [ctx.lang], table, show_progress="minimal")
    return SystemTab(tab, table, refresh, free, callbacks)
