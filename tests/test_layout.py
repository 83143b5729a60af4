"""The code's layout rules (README "How the code is laid out"): small modules, and the page and the API reach
the history and the models only through the service."""

from __future__ import annotations

import re

from funasr_webui.settings import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "funasr_webui"


def test_no_module_is_over_700_lines() -> None:
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert len(sizes) > 40
    assert {name: n for name, n in sizes.items() if n > 700} == {}


def test_page_and_api_go_through_the_service() -> None:
    reaching = re.compile(r"service\.(history|pipeline)\b")
    found = [
        f"{p.relative_to(PACKAGE)}:{i}"
        for folder in ("ui", "api")
        for p in (PACKAGE / folder).rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if reaching.search(line)
    ]
    assert found == []
