"""The real page in Debian's headless Chromium, against the real app (create_app) on 127.0.0.1 with the embedded engine.

Screenshots of every step go to test-artifacts/ (git-ignored). With FUNASR_WEBUI_SCREENSHOTS=1 the tab screenshots
are also written to docs/screenshots/ for the README.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from funasr_webui.history import audio_hash
from funasr_webui.transcript import Segment, Transcript
from tests.browser_setup import ARTIFACTS, DOCS_SHOTS, LAUNCH_ARGS, UPDATE_DOCS, VIEWPORT, playwright_sync_api
from tests.helpers import job_owner, kill

RECOGNITION_TIMEOUT_MS = 120_000  # a few seconds per clip here; generous for a busy CI machine
TABS = ("single", "batch", "microphone", "history", "qa", "system")
ZH_TABS = ["单文件识别", "批量处理", "实时录音", "历史记录", "质检", "系统信息"]

pytestmark = pytest.mark.browser

sync_api = playwright_sync_api()
expect = sync_api.expect


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


class Session:
    """One browser context on the live server, recording every request the page makes."""

    def __init__(self, browser, url: str, locale: str, **context_args) -> None:
        self.url = url
        self.requests: list[str] = []
        self.context = browser.new_context(locale=locale, viewport=VIEWPORT, accept_downloads=True, **context_args)
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.context.on("websocket", lambda ws: self.requests.append(ws.url))
        self.page = self.context.new_page()

    def open(self) -> None:
        self.page.goto(self.url)
        expect(self.page.locator("#single-start")).to_be_visible(timeout=60_000)
        # the language is settled once the server has written the header
        expect(self.page.locator("#engine-line")).to_contain_text("whisper")

    def tab(self, index: int) -> None:
        self.page.get_by_role("tab").nth(index).click()

    def shot(self, name: str, docs: bool = False) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        if docs and UPDATE_DOCS:
            DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_SHOTS / f"{name}.png")

    def table_text(self, elem_id: str) -> str:
        return self.page.locator(f"#{elem_id}").inner_text()

    def click_row(self, elem_id: str, text: str) -> None:
        # Gradio's table keeps a hidden copy of its cells for sizing: click the visible one
        self.page.locator(f"#{elem_id}").get_by_text(text).filter(visible=True).first.click()

    def assert_only_local_requests(self) -> None:
        assert self.requests, "no requests were recorded"
        hosts = set()
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme == "data":
                continue  # inline data, no network
            if parts.scheme == "blob":
                parts = urlsplit(url[len("blob:") :])
            hosts.add(parts.hostname)
        assert hosts == {"127.0.0.1"}, f"requests left the machine: {sorted(h or '' for h in hosts)}"

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def session_factory(browser, live_server, request) -> Iterator:
    """Browser sessions on the live server; each one's last state is kept as a screenshot (for failures)."""
    sessions: list[Session] = []

    def make(locale: str = "en-US", **context_args) -> Session:
        session = Session(browser, live_server.url + "/", locale, **context_args)
        sessions.append(session)
        return session

    yield make
    for n, session in enumerate(sessions):
        try:
            session.shot(f"last-{request.node.name}-{n}")
        finally:
            session.close()


@pytest.fixture
def not_audio(tmp_path: Path) -> Path:
    path = tmp_path / "minutes.wav"  # a text file renamed .wav
    path.write_text("meeting minutes, not a recording\n", encoding="utf-8")
    return path


def test_single_file_history_batch_and_system(session_factory, shared_audio: Path, not_audio: Path, service):
    s = session_factory("en-US")
    page = s.page
    s.open()
    speech = shared_audio / "zh" / "asr_example.wav"

    # Single file: upload with a hotword, read the text, download the subtitles
    page.locator("#single-file input[type=file]").set_input_files(str(speech))
    page.locator("#single-hotwords textarea").fill("达摩院")
    page.locator("#single-start").click()
    expect(page.locator("#single-text textarea")).to_have_value(re.compile("达摩院"), timeout=RECOGNITION_TIMEOUT_MS)
    expect(page.locator("#single-status")).to_contain_text("saved in History")
    expect(page.locator("#single-stats")).to_contain_text("real time")
    expect(page.locator("#single-segments")).to_contain_text("达摩院")
    with page.expect_download() as download:
        page.locator("#single-download-srt").click()
    assert download.value.suggested_filename == "asr_example.srt"
    srt = Path(download.value.path()).read_text(encoding="utf-8")
    assert "-->" in srt and "达摩院" in srt
    s.shot("single", docs=True)

    # History: the transcript is listed, and a search finds it
    s.tab(3)
    expect(page.locator("#history-table")).to_contain_text("asr_example.wav")
    page.locator("#history-query textarea").fill("不存在的内容")
    page.locator("#history-search").click()
    expect(page.locator("#history-page")).to_contain_text("No transcripts match")
    page.locator("#history-query textarea").fill("语音识别")
    page.locator("#history-search").click()
    expect(page.locator("#history-page")).to_contain_text("1 transcripts")
    expect(page.locator("#history-table")).to_contain_text("asr_example.wav")
    s.click_row("history-table", "asr_example.wav")
    expect(page.locator("#history-text textarea")).to_have_value(re.compile("达摩院"))
    expect(page.locator("#history-detail")).to_contain_text("hotwords: 达摩院")
    s.shot("history", docs=True)

    # Batch: two recordings and a text file renamed .wav
    s.tab(1)
    batch = [str(speech), str(shared_audio / "zh" / "sample.wav"), str(not_audio)]
    page.locator("#batch-files input[type=file]").set_input_files(batch)
    page.locator("#batch-start").click()
    expect(page.locator("#batch-status")).to_contain_text(
        "Finished 3 files: 2 done, 1 failed", timeout=2 * RECOGNITION_TIMEOUT_MS
    )
    table = s.table_text("batch-table")
    assert table.count("\ndone\n") == 2
    assert "failed: not an audio or video file we can read" in table
    with page.expect_download() as download:
        page.locator("#batch-zip").click()
    assert download.value.suggested_filename.endswith(".zip")
    s.shot("batch", docs=True)
    assert service.history.search("").total == 4  # the single file and every batch file, the failure too

    # A bad file on its own gets a clear message and the page keeps working
    s.tab(0)
    page.locator("#single-file").get_by_role("button", name="Clear").click()
    page.locator("#single-file input[type=file]").set_input_files(str(not_audio))
    page.locator("#single-start").click()
    expect(page.locator("#single-status")).to_contain_text("minutes.wav: not an audio or video file we can read")

    # System: the device and the engine
    s.tab(5)
    system = page.locator("#system-table")
    expect(system).to_contain_text("Device")
    expect(system).to_contain_text("CPU")
    expect(system).to_contain_text("whisper")
    page.locator("#system-refresh").click()
    expect(system).to_contain_text("History: transcripts (done / failed)")
    s.shot("system", docs=True)

    s.assert_only_local_requests()


def test_page_follows_the_browser_language_and_the_switch_is_remembered(session_factory, service, shared_audio: Path):
    service.history.add(
        Transcript(
            text="欢迎参加周一例会", raw_text="", segments=[Segment(0.0, 2.0, "欢迎参加周一例会")], duration=2.0
        ),
        source="周一例会.m4a",
        audio_hash=audio_hash(b"meeting"),
    )
    with job_owner(service.history.db_path, "周二例会.wav") as owner:  # a server killed while transcribing it
        kill(owner)
    assert [j.source for j in service.history.reap_interrupted()] == ["周二例会.wav"]  # what a restart does
    zh = session_factory("zh-CN")
    zh.open()
    tabs = zh.page.get_by_role("tab")
    expect(tabs).to_have_text(ZH_TABS)
    expect(zh.page.locator("#engine-line")).to_contain_text("识别引擎")
    expect(zh.page.locator("#engine-notice")).to_contain_text("./run.sh download")
    expect(zh.page.locator("#single-start")).to_have_text("开始识别")
    expect(zh.page.locator("#single-file")).to_contain_text("点击上传")  # Gradio's own words follow too
    for index, name in enumerate(TABS):
        zh.tab(index)
        if name == "history":
            expect(zh.page.locator("#history-table")).to_contain_text("周一例会.m4a")
            zh.click_row("history-table", "周一例会.m4a")
            expect(zh.page.locator("#history-text textarea")).to_have_value("欢迎参加周一例会")
            expect(zh.page.locator("#history-table")).to_contain_text("已中断：服务在识别完成前停止了")
            zh.click_row("history-table", "周二例会.wav")
            expect(zh.page.locator("#history-detail")).to_contain_text("请重新识别这个文件")
        zh.shot(f"{name}-zh", docs=True)
    zh.tab(0)
    zh.page.locator("#single-start").click()  # no file: a message from the server, in Chinese
    expect(zh.page.locator("#single-status")).to_contain_text("请先选择文件")
    zh.assert_only_local_requests()

    en = session_factory("en-US")
    en.open()
    en_tabs = ["Single file", "Batch", "Microphone", "History", "Quality checks", "System"]
    expect(en.page.get_by_role("tab")).to_have_text(en_tabs)
    expect(en.page.locator("#single-start")).to_have_text("Start")
    en.page.locator("#single-file input[type=file]").set_input_files(str(shared_audio / "zh" / "asr_example.wav"))
    # the preview of the chosen file, once uploaded (Gradio writes its stem and extension as two spans: "asr_example
    # .wav" as text, so a plain "asr_example.wav" would only match the upload's progress line, if caught in time)
    chosen = en.page.locator('#single-file [aria-label="asr_example.wav"]')
    expect(chosen).to_contain_text(re.compile(r"^\s*asr_example\s*\.wav\s*$"))
    # the switch changes the page at once, keeps what was chosen, and is remembered on the next visit
    en.page.locator("#lang-switch").get_by_text("中文").click()
    expect(en.page.get_by_role("tab")).to_have_text(ZH_TABS)
    expect(en.page.locator("#single-start")).to_have_text("开始识别")
    expect(en.page.locator("#engine-line")).to_contain_text("识别引擎")
    expect(en.page.locator("#single-file")).to_contain_text("173.4 KB")  # the chosen file is still there
    en.page.locator("#single-file").get_by_role("button").first.click()  # clear it: Gradio's words are Chinese too
    expect(en.page.locator("#single-file")).to_contain_text("点击上传")
    en.page.reload()
    expect(en.page.locator("#single-start")).to_have_text("开始识别", timeout=60_000)
    expect(en.page.locator("#lang-switch input[value=zh]")).to_be_checked()
    en.page.locator("#single-start").click()
    expect(en.page.locator("#single-status")).to_contain_text("请先选择文件")
    en.page.locator("#lang-switch").get_by_text("English").click()
    expect(en.page.get_by_role("tab").first).to_have_text("Single file")
    en.shot("language-switched-back")
    en.assert_only_local_requests()


def test_microphone_records_and_recognizes(browser, chromium: Path, live_server, shared_audio: Path, service):
    # Chromium's fake microphone plays a file: the page records it as it would a person speaking
    fake_mic = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={shared_audio / 'zh' / 'asr_example.wav'}",
    ]
    playwright_browser = browser.browser_type.launch(
        executable_path=str(chromium), headless=True, args=LAUNCH_ARGS + fake_mic
    )
    try:
        s = Session(playwright_browser, live_server.url + "/", "en-US", permissions=["microphone"])
        page = s.page
        s.open()
        s.tab(2)
        page.locator("#mic-hotwords textarea").fill("达摩院")
        mic = page.locator("#mic-audio")
        mic.get_by_role("button", name="Record").click()
        page.wait_for_timeout(6500)  # the clip is 5.5 s long
        mic.get_by_role("button", name="Stop").click()  # recognition starts by itself
        expect(page.locator("#mic-text textarea")).to_have_value(re.compile("语音识别"), timeout=RECOGNITION_TIMEOUT_MS)
        expect(page.locator("#mic-status")).to_contain_text("saved in History")
        with page.expect_download() as download:
            page.locator("#mic-download-txt").click()
        assert download.value.suggested_filename.startswith("recording-")
        s.shot("microphone", docs=True)
        assert service.history.search("", source="microphone").total == 1
        s.assert_only_local_requests()
    finally:
        s.shot("last-test_microphone_records_and_recognizes")
        playwright_browser.close()


def test_user_text_is_shown_as_text_never_as_html(session_factory, service):
    payload = '<img src=x onerror="window.__xss=1"><b>bold</b>'
    service.history.add(
        Transcript(text=payload, raw_text="", segments=[Segment(0.0, 1.0, payload)], duration=1.0),
        source=payload + ".wav",
        audio_hash=audio_hash(b"xss"),
    )
    s = session_factory("en-US")
    s.open()
    s.tab(3)
    expect(s.page.locator("#history-table")).to_contain_text(payload + ".wav")
    s.click_row("history-table", payload + ".wav")
    expect(s.page.locator("#history-text textarea")).to_have_value(payload)
    expect(s.page.locator("#history-detail")).to_contain_text(payload + ".wav")
    expect(s.page.locator("#history-segments")).to_contain_text(payload)
    assert s.page.evaluate("window.__xss") is None
    assert s.page.locator("img[src=x]").count() == 0
    assert s.page.locator("#history-table b, #history-detail b, #history-segments b").count() == 0
    s.shot("escaping")


MARKUP = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b>bold</b> [link](javascript:alert(3))'


def test_a_transcript_with_markup_is_shown_as_text_in_the_page(session_factory, service, shared_audio, monkeypatch):
    """What an engine returns is the user's text: markup in it shows as itself in every view, never as HTML or
    Markdown (the result, the batch table, and the History detail: its text, its segments, the summary)."""

    def transcribe(audio, options):  # an engine whose transcript is markup (answers at once)
        return Transcript(
            text=MARKUP,
            raw_text=MARKUP,
            segments=[Segment(0.0, 1.0, MARKUP)],
            language="en",
            duration=1.0,
            engine="whisper",
            model="whisper-base",
            device="cpu",
        )

    monkeypatch.setattr(service.pipeline, "transcribe", transcribe)
    s = session_factory("en-US")
    page = s.page
    s.open()
    page.locator("#single-file input[type=file]").set_input_files(str(shared_audio / "zh" / "sample.wav"))
    page.locator("#single-start").click()
    expect(page.locator("#single-text textarea")).to_have_value(MARKUP, timeout=RECOGNITION_TIMEOUT_MS)
    expect(page.locator("#single-segments")).to_contain_text(MARKUP)

    s.tab(1)
    page.locator("#batch-files input[type=file]").set_input_files([str(shared_audio / "zh" / "asr_example.wav")])
    page.locator("#batch-start").click()
    expect(page.locator("#batch-status")).to_contain_text("Finished 1 files: 1 done", timeout=RECOGNITION_TIMEOUT_MS)
    expect(page.locator("#batch-table")).to_contain_text(MARKUP[:59])  # the preview: 59 characters and "…"

    s.tab(3)
    expect(page.locator("#history-table")).to_contain_text(MARKUP[:59])
    s.click_row("history-table", "sample.wav")
    expect(page.locator("#history-text textarea")).to_have_value(MARKUP)
    expect(page.locator("#history-segments")).to_contain_text(MARKUP)
    expect(page.locator("#history-detail")).to_contain_text("sample.wav")
    s.shot("markup-transcript")
    assert page.evaluate("window.__xss") is None
    assert page.locator("img[src=x]").count() == 0
    assert page.locator('a[href^="javascript"]').count() == 0
    views = "#single-segments, #batch-table, #history-table, #history-detail, #history-segments"
    assert page.locator(", ".join(f"{v} b" for v in views.split(", "))).count() == 0
    assert page.locator(", ".join(f"{v} script" for v in views.split(", "))).count() == 0
    assert [r.text for r in service.history.search("").records] == [MARKUP, MARKUP]


def test_a_second_request_waits_in_the_queue_and_sees_its_position(session_factory, shared_audio: Path):
    first, second = session_factory("en-US"), session_factory("en-US")
    # the first is long enough (36 s) to be still recognizing when the second asks: short files finish in
    # well under a second now
    for s, name in ((first, "tts/dev_long.wav"), (second, "zh/asr_example.wav")):
        s.open()
        s.page.locator("#single-file input[type=file]").set_input_files(str(shared_audio / name))
        expect(s.page.locator("#single-file")).to_contain_text(re.compile(r"[KM]B"))
    first.page.locator("#single-start").click()
    expect(first.page.locator("#single-status")).to_contain_text("Recognizing")
    second.page.locator("#single-start").click()
    # one recognition at a time: the second waits, and says where it stands
    expect(second.page.locator("#single-status")).to_contain_text("queue: 1/1")
    second.shot("queue-waiting")
    for s in (first, second):
        expect(s.page.locator("#single-status")).to_contain_text("saved in History", timeout=RECOGNITION_TIMEOUT_MS)
    expect(second.page.locator("#single-text textarea")).to_have_value(re.compile("语音识别"))
    first.assert_only_local_requests()


def test_qa_tab_rule_transcribe_flagged_call_and_report(session_factory, shared_audio: Path, service):
    """A supervisor adds a rule on the QA tab, a call is transcribed, the QA tab shows it flagged with the sentence,
    the History tab filters by the rule and marks the sentence, and the report downloads."""
    s = session_factory("en-US")
    page = s.page
    s.open()
    s.tab(4)
    expect(page.locator("#qa-rules")).to_contain_text("Name")
    page.locator("#qa-name textarea, #qa-name input").first.fill("banned")
    page.locator("#qa-phrases textarea").fill("语音识别\n你自己查")
    page.locator("#qa-save").click()
    expect(page.locator("#qa-rules")).to_contain_text("语音识别 / 你自己查")
    page.locator("#qa-new").click()
    page.locator("#qa-name textarea, #qa-name input").first.fill("greeting")
    page.locator("#qa-kind").get_by_text("required", exact=True).click()
    page.locator("#qa-phrases textarea").fill("您好")
    page.locator("#qa-window textarea, #qa-window input").first.fill("0, 15")
    page.locator("#qa-save").click()
    expect(page.locator("#qa-rules")).to_contain_text("0, 15")
    assert [r.name for r in service.qa.rules()] == ["banned", "greeting"]

    s.tab(0)
    page.locator("#single-file input[type=file]").set_input_files(str(shared_audio / "zh" / "asr_example.wav"))
    page.locator("#single-start").click()
    expect(page.locator("#single-status")).to_contain_text("saved in History", timeout=RECOGNITION_TIMEOUT_MS)

    s.tab(4)
    expect(page.locator("#qa-summary")).to_contain_text("1 calls checked")
    expect(page.locator("#qa-per-rule")).to_contain_text("banned")
    expect(page.locator("#qa-flagged")).to_contain_text("asr_example.wav")
    s.click_row("qa-flagged", "asr_example.wav")
    expect(page.locator("#qa-hits")).to_contain_text("语音识别")
    expect(page.locator("#qa-hits")).to_contain_text("missing")
    s.shot("qa", docs=True)
    with page.expect_download() as download:
        page.locator("#qa-report").click()
        page.locator("#qa-report-file a").first.click()
    report = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert report.startswith("id,name,created_at,rule,kind,phrase,start,end,speaker,text")
    assert "asr_example.wav" in report and "banned,forbidden,语音识别" in report and "greeting,missing" in report

    s.tab(3)
    page.locator("#history-qa input").click()
    page.get_by_role("option", name="banned").click()
    expect(page.locator("#history-table")).to_contain_text("asr_example.wav")
    s.click_row("history-table", "asr_example.wav")
    expect(page.locator("#history-detail")).to_contain_text("⚑ banned")
    expect(page.locator("#history-segments")).to_contain_text("【语音识别】")
    s.assert_only_local_requests()
