"""Temporary files a killed server left behind are removed at the next start; a running server's are not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from funasr_webui import tempfiles


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_sweep_removes_only_what_stopped_processes_left(tmp_path: Path) -> None:
    gone = dead_pid()
    left_upload = tmp_path / f"funasr-webui-upload-{gone}-abc.wav"
    left_upload.write_bytes(b"RIFF")
    left_page = tmp_path / f"funasr-webui-page-{gone}-xyz"
    (left_page / "req").mkdir(parents=True)
    (left_page / "req" / "a.srt").write_text("1")
    mine = tmp_path / (tempfiles.prefix("upload") + "in-flight.wav")
    mine.write_bytes(b"RIFF")
    unrelated = [tmp_path / "funasr-webui-lang", tmp_path / "other-123-file", tmp_path / f"gradio-{gone}-x"]
    for p in unrelated:
        p.write_text("keep")

    assert tempfiles.sweep_orphans(tmp_path) == 2
    assert not left_upload.exists() and not left_page.exists()
    assert mine.exists() and all(p.exists() for p in unrelated)
    assert tempfiles.sweep_orphans(tmp_path) == 0


def test_prefix_names_this_process() -> None:
    assert tempfiles.prefix("page") == f"funasr-webui-page-{os.getpid()}-"
