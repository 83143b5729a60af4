"""One settings object, built once at start-up (env vars FUNASR_WEBUI_*, then command-line options)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FUNASR_WEBUI_")

    host: str = "127.0.0.1"
    port: int = 7860
    device: Literal["auto", "cuda", "cpu"] = "auto"
    engine: Literal["auto", "paraformer", "fun-asr-nano", "fun-asr-mlt-nano", "sensevoice", "whisper"] = "auto"
    engines: str = ""  # comma-separated engines loaded besides --engine, chosen per request (see engines.py)
    models_dir: Path = PROJECT_ROOT / "models"
    db: Path | str = PROJECT_ROOT / "history.db"  # a SQLite file, or a postgresql://user@host[:port]/db URL
    batch_size: int = 8  # segments decoded together (whisper) / batch_size_s scale (paraformer)
    beam_size: int = 5  # whisper beams for files and final live sentences (live partials are greedy)
    threads: int = os.cpu_count() or 1  # torch / CTranslate2 CPU threads
    offline: bool = False  # never try to download models
    fp16: bool = False  # half precision on CUDA (off by default: Paraformer is trained in fp32)
    download_timeout: float = 600.0  # seconds for the one automatic Paraformer download
    itn: bool = True  # default for requests that do not say
    max_duration: float = 3 * 3600.0  # seconds of audio per file
    max_upload_mb: float = 1024.0
    max_hotwords: int = 100
    max_batch_files: int = 50
    vad_max_end_silence_ms: int = 500  # pause that ends a sentence segment
    vad_max_segment_ms: int = 30_000  # longer speech is cut (Whisper's window is 30 s)
    keep_days: float | None = None  # purge history older than this at start-up
    keep_audio: bool = False  # keep a copy of each upload beside the database (privacy: off)
    auth: str | None = None  # "user:password" protecting the page
    api_key: str | None = None  # Bearer key protecting the API
    max_queue: int = 64  # waiting requests before the API answers 503
    max_queue_per_client: int = 16  # one client's share of the queue (API key, page user or address)
    allowed_hosts: list[str] = []  # Host names accepted besides localhost and --host ("*": any)
    max_uploads: int = 32  # request bodies being received at once
    max_uploads_per_client: int = 8  # ... of them from one address, so one host cannot take every place
    upload_idle_timeout: float = 30.0  # seconds an upload may send nothing before it is refused
    upload_timeout: float = 3600.0  # seconds one upload may take in all
    max_live_sessions: int = 4  # live dictations at once (each keeps the recognizer busy in real time)
    funasr_ws_port: int | None = None  # FunASR's runtime WebSocket protocol on this port (FunASR uses 10095)
    funasr_ws_max_connections: int = 4  # FunASR WebSocket connections at once
    ssl_certfile: Path | None = None  # HTTPS (and wss for the FunASR listener) with this certificate ...
    ssl_keyfile: Path | None = None  # ... and its private key
    queue: bool = False  # Batch tab and POST /api/v1/jobs enqueue for workers (needs a PostgreSQL db)
    ssl_self_signed: bool = False  # make (once, beside the database) a self-signed certificate and serve HTTPS

    @field_validator("db", mode="before")
    @classmethod
    def _db_target(cls, value: object) -> object:
        """A URL stays text (a Path would fold its "//"); anything else is a file path."""
        from .history.target import db_target

        return db_target(value) if isinstance(value, str | os.PathLike) else value

    @property
    def tls(self) -> bool:
        return self.ssl_certfile is not None

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
