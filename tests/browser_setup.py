"""What the browser tests share: Debian's Chromium, its flags for this closed network, where pictures go."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

from funasr_webui.settings import PROJECT_ROOT
from tests.helpers import require_import

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
DOCS_SHOTS = PROJECT_ROOT / "docs" / "screenshots"
UPDATE_DOCS = os.environ.get("FUNASR_WEBUI_SCREENSHOTS") == "1"
# without the background-networking flags Chromium keeps trying hosts this machine cannot reach
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1280, "height": 900}


def playwright_sync_api() -> ModuleType:
    """Playwright's sync API. Chromium itself is the ``chromium`` fixture (conftest.py); both follow tests.helpers'
    rule: missing, the browser tests skip saying why, and fail under CI=true."""
    return require_import("playwright.sync_api", "playwright is not installed (pip install -r requirements-dev.txt)")
