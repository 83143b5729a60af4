"""The command line, run as a user runs it: a real subprocess, real models, a real history file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from funasr_webui.metrics import strip_punctuation
from funasr_webui.settings import PROJECT_ROOT


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "funasr_webui", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def run(shared_audio: Path, tmp_path_factory) -> dict:
    """One CLI run over a good file, a bad file and a missing one (models load once)."""
    tmp = tmp_path_factory.mktemp("cli")
    bad = tmp / "broken.wav"
    bad.write_text("this is not audio")
    db = tmp / "history.db"
    out = tmp / "out"
    proc = cli(
        "transcribe",
        str(shared_audio / "zh" / "sample.wav"),
        str(bad),
        str(tmp / "missing.wav"),
        "--hotwords",
        "滨海新区",
        "--format",
        "json",
        "--out",
        str(out),
        "--db",
        str(db),
        "--offline",
        "--engine",
        "whisper",
    )
    return {"proc": proc, "out": out, "db": db}


def test_sample_with_hotword(run: dict) -> None:
    data = json.loads((run["out"] / "sample.json").read_text(encoding="utf-8"))
    assert strip_punctuation(data["text"]) == "我想问我在滨海新区有房"
    assert data["hotwords"] == ["滨海新区"] and data["engine"] == "whisper"
    assert data["segments"] and data["segments"][0]["start"] >= 0


def test_failures_exit_non_zero_and_name_the_file(run: dict) -> None:
    proc = run["proc"]
    assert proc.returncode == 1
    assert "broken.wav" in proc.stderr and "missing.wav" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_results_are_in_the_history(run: dict) -> None:
    listing = cli("history", "--db", str(run["db"]), "search", "滨海新区")
    assert listing.returncode == 0, listing.stderr
    assert "sample.wav" in listing.stdout


def test_prints_to_stdout_without_out(shared_audio: Path, tmp_path: Path) -> None:
    proc = cli(
        "transcribe",
        str(shared_audio / "zh" / "asr_example.wav"),
        "--hotwords",
        "达摩院",
        "--format",
        "srt",
        "--db",
        str(tmp_path / "h.db"),
        "--offline",
        "--no-history",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("1\n00:00:0")
    assert "达摩院" in proc.stdout


def test_bad_option_exits_2() -> None:
    proc = cli("transcribe", "x.wav", "--format", "pdf")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr
