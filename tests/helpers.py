"""What the test modules share besides fixtures: the rule for missing prerequisites, where the shared audio is, a live
server in this process, and transcription jobs held by another process (a server to kill mid-transcription)."""

from __future__ import annotations

import importlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from types import ModuleType

import pytest
import requests

from funasr_webui.settings import PROJECT_ROOT

# --------------------------------------------------------------------------- missing prerequisites


def in_ci() -> bool:
    """CI=true (what GitHub Actions, GitLab CI and .ci/run set): a missing prerequisite fails instead of skipping."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require(condition: object, reason: str) -> None:
    """The one rule for a prerequisite a test cannot run without (the shared audio, Chromium, root, ...): when it
    is missing the test skips saying why (``pytest -rs`` lists the reasons), and under CI=true it fails, so a
    CI run never passes on tests that did not run."""
    __tracebackhide__ = True  # the skip or failure is reported at the test's line, not here
    if not condition:
        _missing(reason)


def require_import(name: str, reason: str) -> ModuleType:
    """Import a module a test module cannot run without; the same rule as ``require``. At module level a skip skips
    the whole module and a CI failure is a collection error (which fails the run)."""
    __tracebackhide__ = True
    try:
        return importlib.import_module(name)
    except ImportError as e:
        _missing(f"{reason} ({e})")
        raise  # not reached: _missing raises


def _missing(reason: str) -> None:
    __tracebackhide__ = True
    if in_ci():
        pytest.fail(f"missing prerequisite (CI=true, so this is a failure, not a skip): {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


# --------------------------------------------------------------------------- the shared audio


def _shared_audio_dir() -> Path:
    """../shared/audio beside the checkout (CI, and every worktree here), else the dev machine's /work/shared."""
    candidates = [PROJECT_ROOT.parent / "shared" / "audio", Path("/work/shared/audio")]
    return next((d for d in candidates if (d / "refs.json").is_file()), candidates[0])


SHARED_AUDIO = _shared_audio_dir()


def require_shared_audio() -> Path:
    __tracebackhide__ = True
    require(
        (SHARED_AUDIO / "refs.json").is_file(),
        f"the shared test audio is not at {SHARED_AUDIO} (it sits beside the project checkout, in ../shared/audio)",
    )
    return SHARED_AUDIO


# --------------------------------------------------------------------------- a live server in this process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, app, **config) -> None:
        """``config``: more uvicorn settings (``ssl_certfile``/``ssl_keyfile`` serve https)."""
        import uvicorn

        self.app = app
        self.port = free_port()
        self.url = f"{'https' if config.get('ssl_certfile') else 'http'}://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", **config)
        )
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


def fast_shutdown(server: LiveServer) -> LiveServer:
    """gradio_client keeps a heartbeat stream open, which uvicorn would wait ~10 s for when the server stops."""
    server.server.config.timeout_graceful_shutdown = 1
    return server


def assert_healthy(url: str) -> None:
    r = requests.get(url + "/health", timeout=10)
    assert r.status_code == 200 and r.json()["ready"] is True, r.text


# --------------------------------------------------------------------------- jobs held by another process

JOB_OWNER = """
import sys
from funasr_webui.history import HistoryStore
store = HistoryStore(sys.argv[1])
job = store.start_job(source=sys.argv[2], name=sys.argv[3], audio_hash="h-" + sys.argv[2], settings_key="k",
                      engine="whisper", model="whisper-base", device="cpu", hotwords="夜班 night", itn=False,
                      language="zh", duration=12.5)
print(job, flush=True)
sys.stdin.read()  # runs, holding the job, until the test closes stdin or kills it
"""


@contextmanager
def job_owner(db: Path, source: str, name: str = "") -> Iterator[subprocess.Popen]:
    """Another process transcribing ``source``: it has started its job (and holds it while it runs)."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", JOB_OWNER, str(db), source, name], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        assert proc.stdout.readline().strip().isdigit()
        yield proc
    finally:
        proc.kill()
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()  # reaped: not even a zombie is left


def _query(db: Path | str, sql: str) -> list[tuple]:
    """Rows read straight from the database (a SQLite file or a PostgreSQL URL), not through the store."""
    if isinstance(db, str) and db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db, autocommit=True) as conn:
            return conn.execute(sql).fetchall()
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


def jobs_in(db: Path | str) -> list[str]:
    return [r[0] for r in _query(db, "SELECT source FROM jobs ORDER BY id")]


def db_ok(store) -> None:
    """The store's database is sound: SQLite's integrity checks and both FTS indexes in sync with the text; on
    PostgreSQL every record with its body and every body with its record (the indexes are PostgreSQL's own)."""
    if not store.postgres:
        with closing(sqlite3.connect(store.db_path)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            conn.execute("INSERT INTO fts_text(fts_text) VALUES ('integrity-check')")  # raises if out of sync
            conn.execute("INSERT INTO fts_grams(fts_grams) VALUES ('integrity-check')")
        return
    conn = store._conn()
    assert conn.execute("SELECT count(*) FROM records r FULL JOIN bodies b ON b.id = r.id"
                        " WHERE r.id IS NULL OR b.id IS NULL").fetchone()[0] == 0  # fmt: skip
    assert conn.execute("SELECT count(*) FROM bodies WHERE grams <> '' AND text = ''").fetchone()[0] == 0
