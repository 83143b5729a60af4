"""The files in deploy/ (systemd units, the nginx block) as the tests run them: the same text README shows, with
only this machine's values put in (the install folder, the database URL, ports).

A unit's ``ExecStart`` becomes an argv and its ``Environment=`` lines an environment, with systemd's own escapes
undone (``%%`` and ``$$`` are a literal ``%`` and ``$``).
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from funasr_webui.settings import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"
INSTALL_DIR = "/opt/funasr-webui"  # where README installs the project on each machine
VENV_PYTHON = INSTALL_DIR + "/.venv/bin/python"
DB_URL = "postgresql://webui:PW@db.internal/funasr"  # the database URL the units are written with
CALLS_DIR = "/data/calls"  # the shared call folder of the nightly ingest


@dataclass
class Unit:
    name: str
    exec_start: list[str]
    environment: dict[str, str]
    working_directory: str


def unit_text(name: str, db_url: str | None = None) -> str:
    """The unit's file with this checkout in place of /opt/funasr-webui (and ``db_url`` for the database)."""
    text = (DEPLOY / name).read_text(encoding="utf-8")
    assert VENV_PYTHON in text or name.endswith(".timer"), f"{name} does not run {VENV_PYTHON}"
    text = text.replace(VENV_PYTHON, sys.executable).replace(INSTALL_DIR, str(PROJECT_ROOT))
    if db_url is not None:
        assert DB_URL in text, f"{name} does not name {DB_URL}"
        text = text.replace(DB_URL, db_url)
    return text


def _unescape(value: str) -> str:
    return value.replace("%%", "%").replace("$$", "$")


def load_unit(name: str, db_url: str, replace: dict[str, str] | None = None) -> Unit:
    """The unit ``name`` of deploy/ as this machine runs it; ``replace``: more literal text to substitute first
    (the call folder, ...)."""
    text = unit_text(name, db_url)
    for old, new in (replace or {}).items():
        assert old in text, f"{name} has no {old!r}"
        text = text.replace(old, new)
    exec_start: list[str] = []
    environment: dict[str, str] = {}
    working_directory = ""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "ExecStart":
            exec_start = shlex.split(_unescape(value))
        elif key == "Environment":
            var, _, val = _unescape(value).partition("=")
            environment[var] = val
        elif key == "WorkingDirectory":
            working_directory = value
    assert exec_start, f"{name} has no ExecStart"
    return Unit(name, exec_start, environment, working_directory)


def write_units(folder: Path, db_url: str) -> list[Path]:
    """Every unit of deploy/ written into ``folder`` as this machine would install it (for systemd-analyze)."""
    paths = []
    for src in sorted(DEPLOY.glob("*.service")) + sorted(DEPLOY.glob("*.timer")):
        path = folder / src.name
        path.write_text(unit_text(src.name, None if src.suffix == ".timer" else db_url), encoding="utf-8")
        paths.append(path)
    return paths
