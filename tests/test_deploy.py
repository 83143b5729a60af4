"""The files in deploy/ that README's "Scaling out" shows: the same text in both places, and the systemd units
valid for systemd (`systemd-analyze verify`). tests/test_scale_out.py runs the programs they start."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from funasr_webui.settings import PROJECT_ROOT
from tests.deploy_units import DEPLOY, write_units
from tests.helpers import require

UNITS = {"funasr-worker.service", "funasr-web.service", "funasr-ingest-queue.service", "funasr-ingest-queue.timer"}


def test_readme_shows_every_deploy_file_as_it_is() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```(?:ini|nginx)\n(.*?)^```", readme, flags=re.S | re.M)
    files = sorted(DEPLOY.iterdir())
    assert {f.name for f in files} == UNITS | {"nginx-funasr.conf"}
    for f in files:
        assert f.read_text(encoding="utf-8") in blocks, f"README does not show deploy/{f.name} as it is"


def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    require(analyze, "systemd-analyze is not installed (apt-get install systemd)")
    units = write_units(tmp_path, "postgresql://webui@127.0.0.1/funasr")  # this checkout for /opt/funasr-webui
    assert {u.name for u in units} == UNITS
    done = subprocess.run([analyze, "verify", *map(str, units)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr + done.stdout
