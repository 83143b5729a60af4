"""Live dictation on the Microphone tab: the page's callbacks called directly (shared recordings fed in
browser-sized chunks), the wiring of the events, and the real page in Chromium with a fake microphone.

Screenshots go to test-artifacts/; with FUNASR_WEBUI_SCREENSHOTS=1 the live ones are also written to
docs/screenshots/live.png and live-zh.png for the README.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from funasr_webui.engine import TranscribeOptions
from funasr_webui.live import LiveState, LiveTranscriber
from funasr_webui.metrics import cer, strip_punctuation
from funasr_webui.transcript import Segment
from funasr_webui.ui.app import build_page, build_ui
from funasr_webui.ui.dictation import LIVE_FEED_MAX_S, LIVE_JUST_OPENED_S, PARTIAL_MARK, LiveSession, live_display
from funasr_webui.ui.format import segments_frame
from funasr_webui.ui.tabs.microphone import LIVE_STREAM_EVERY_S, LIVE_TIME_LIMIT_S, MicCallbacks
from tests.browser_setup import ARTIFACTS, DOCS_SHOTS, UPDATE_DOCS, VIEWPORT, playwright_sync_api
from tests.browser_setup import LAUNCH_ARGS as BROWSER_ARGS
from tests.helpers import jobs_in

# gr.Warning outside a running event is a Python warning: expected here, where callbacks are called directly
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:gradio.helpers")

EXPECTED = "欢迎大家来体验达摩院推出的语音识别模型"  # zh/asr_example.wav
RATE = 48_000  # what browsers record at: the callbacks resample
# live_stop's outputs: the live result view (status, text, stats, sentences, 6 downloads), the session, the mode
STATUS, TEXT, STATS, SEGMENTS, DL_TXT, DL_SRT, DL_VTT, DL_JSON, DL_MD, DL_DOCX, SESSION, MODE = range(12)
# live_stream's outputs
S_TEXT, S_STATUS, S_TABLE, S_SESSION = range(4)


@pytest.fixture
def ui(service) -> MicCallbacks:
    return MicCallbacks(service)


def recording(path: Path, lead_s: float = 0.5, tail_s: float = 1.5) -> np.ndarray:
    """A shared recording as a browser would send it: 48 kHz int16, with pauses around the speech."""
    audio, rate = sf.read(path, dtype="float32")
    audio = np.concatenate([np.zeros(int(lead_s * rate), np.float32), audio, np.zeros(int(tail_s * rate), np.float32)])
    up = np.interp(np.arange(0, audio.size, rate / RATE), np.arange(audio.size), audio)
    return (up * 32767).astype(np.int16)


def chunks(pcm: np.ndarray, seconds: float = LIVE_STREAM_EVERY_S) -> Iterator[tuple[int, np.ndarray]]:
    step = int(seconds * RATE)
    for i in range(0, pcm.size, step):
        yield RATE, pcm[i : i + step]


def request(session_hash: str) -> SimpleNamespace:
    return SimpleNamespace(session_hash=session_hash)  # what the callbacks read from gr.Request


def settle(session: LiveSession, timeout: float = 60) -> None:
    """Wait until the session's worker has fed everything received so far."""
    deadline = time.monotonic() + timeout
    while session.feeding:
        assert time.monotonic() < deadline, "the live worker did not catch up"
        time.sleep(0.05)


def start(ui: MicCallbacks, hotwords: str = "", lang: str = "en", who: str = "tab-1") -> LiveSession:
    out = ui.live_start(None, hotwords, True, "auto", lang, request(who))
    session = out[0]
    assert isinstance(session, LiveSession), out
    assert out[-1]["interactive"] is False  # the mode switch is locked while dictating
    return session


def stream(ui: MicCallbacks, session: LiveSession, pcm: np.ndarray, hotwords: str = "") -> list:
    """Every chunk through the page's stream callback; returns its outputs for each."""
    outputs = []
    for chunk in chunks(pcm):
        out = ui.live_stream(chunk, session, hotwords, True, "auto", "en", request(session.session_hash or ""))
        assert out[S_SESSION] is session
        outputs.append(out)
    return outputs


def value(update):
    return update["value"] if isinstance(update, dict) else update


# --------------------------------------------------------------------------- callbacks


def test_dictation_shows_sentences_and_saves_one_record(ui, service, shared_audio: Path):
    session = start(ui, "达摩院")
    stream(ui, session, recording(shared_audio / "zh" / "asr_example.wav"), "达摩院")
    settle(session)
    # the next chunk shows what the worker finished: the sentence, in the text and in the table
    out = ui.live_stream((RATE, np.zeros(RATE // 2, np.int16)), session, "达摩院", True, "auto", "zh", None)
    assert strip_punctuation(out[S_TEXT].replace(PARTIAL_MARK, "")) == EXPECTED
    assert list(out[S_TABLE].columns) == ["开始", "结束", "文本"] and len(out[S_TABLE]) == 1
    assert out[S_STATUS].startswith("● 正在听写") and "已定稿 1 句" in out[S_STATUS]
    assert jobs_in(service.history.db_path) == ["microphone"]  # a crash now would be reported as interrupted

    stopping = list(ui.live_stopping(session, "en"))
    assert stopping[0][0].startswith("⏳ Finishing")  # said at once, before the recognizer finishes
    out = stopping[-1]
    again = ui.live_stop(session, "en")  # Stop again: the same record, nothing new
    assert (again[STATUS], again[TEXT]) == (out[STATUS], out[TEXT])
    assert re.fullmatch(r"✔ Dictation ended and saved in History \(#\d+\)\.", out[STATUS])
    assert strip_punctuation(out[TEXT]) == EXPECTED and PARTIAL_MARK not in out[TEXT]
    assert "real time" in out[STATS] and out[MODE]["interactive"] is True
    assert isinstance(out[SEGMENTS], pd.DataFrame) and len(out[SEGMENTS]) == 1
    paths = [Path(value(out[i])) for i in (DL_TXT, DL_SRT, DL_VTT, DL_JSON)]
    assert [p.suffix for p in paths] == [".txt", ".srt", ".vtt", ".json"]
    assert all(p.stem.startswith("dictation-") for p in paths)
    assert "-->" in paths[1].read_text(encoding="utf-8") and EXPECTED[:4] in paths[0].read_text(encoding="utf-8")

    found = service.history.search("")
    assert found.total == 1
    record = found.records[0]
    assert record.source == "microphone" and record.hotwords == ["达摩院"]
    assert strip_punctuation(record.text) == EXPECTED
    assert len(record.segments) == 1 and 0.3 < record.segments[0].start < record.segments[0].end < 7.0
    assert ui.dictation.sessions == {}  # nothing left to save when the tab closes
    assert jobs_in(service.history.db_path) == []


def test_two_sessions_streaming_at_once_keep_their_own_text(ui, service, shared_audio: Path):
    a, b = start(ui, "达摩院", who="tab-a"), start(ui, "滨海新区", who="tab-b")
    ca = list(chunks(recording(shared_audio / "zh" / "asr_example.wav")))
    cb = list(chunks(recording(shared_audio / "zh" / "sample.wav")))
    for i in range(max(len(ca), len(cb))):  # interleaved, as two tabs' chunks reach the server
        if i < len(ca):
            ui.live_stream(ca[i], a, "达摩院", True, "auto", "en", request("tab-a"))
        if i < len(cb):
            ui.live_stream(cb[i], b, "滨海新区", True, "auto", "en", request("tab-b"))
    out_a, out_b = ui.live_stop(a, "en"), ui.live_stop(b, "en")
    assert strip_punctuation(out_a[TEXT]) == EXPECTED
    assert cer("我想问我在滨海新区有房", out_b[TEXT]) <= 0.2, out_b[TEXT]
    assert "滨海" not in out_a[TEXT] and "达摩" not in out_b[TEXT]
    assert service.history.search("", source="microphone").total == 2


def test_silence_gives_no_text_and_no_record(ui, service):
    session = start(ui)
    rng = np.random.default_rng(0)
    quiet = (rng.standard_normal(RATE * 4) * 30).astype(np.int16)  # 4 s of faint room noise
    outputs = stream(ui, session, quiet)
    assert all(out[S_TEXT] == "" for out in outputs)
    out = ui.live_stop(session, "zh")
    assert out[STATUS] == "ℹ 听写已结束。没有检测到说话声，因此没有保存记录。"
    assert out[TEXT] == "" and value(out[DL_TXT]) is None and out[DL_TXT]["interactive"] is False
    assert service.history.search("").total == 0 and session.job is None  # silence is never a job
    idle = "Press **Record** and start speaking: the text appears here as you talk."
    assert ui.live_stop(None, "en")[STATUS] == idle  # Stop with nothing started


def test_a_closed_tab_saves_its_dictation_once(ui, service, shared_audio: Path):
    pcm = recording(shared_audio / "zh" / "sample.wav", tail_s=0)  # ends mid-sentence: the tab just went away
    # Gradio's heartbeat: the tab is gone, live_unload finishes and saves at once
    session = start(ui, "滨海新区", who="gone")
    stream(ui, session, pcm, "滨海新区")
    ui.live_unload(request("gone"))
    assert session.state.finished and session.state.record_id is not None
    ui.live_unload(request("gone"))  # nothing left under that session
    assert service.history.search("").total == 1

    # gr.State's delete_callback (an hour later for Gradio): the fallback for a dictation still open
    page = build_page(service)
    blocks, mic = page.blocks, page.microphone.callbacks  # the page's own microphone callbacks
    states = [b for b in blocks.blocks.values() if isinstance(b, gr.State) and b.delete_callback == mic.live_expired]
    assert len(states) == 1
    delete_callback = states[0].delete_callback
    session = start(mic, "滨海新区", who="expired")
    stream(mic, session, pcm, "滨海新区")
    thread = delete_callback(session)
    assert thread is not None  # finishing runs the recognizer: not on Gradio's event loop
    thread.join(60)
    assert delete_callback(session) is None and mic.live_stop(session, "en")[STATUS].startswith("✔")
    records = service.history.search("", source="microphone").records
    assert len(records) == 2 and all(cer("我想问我在滨海新区有房", r.text) <= 0.3 for r in records), records
    assert delete_callback(None) is None  # a session that never dictated


def test_a_monologue_is_cut_into_sentences_even_when_the_worker_catches_up(ui, service, shared_audio: Path):
    ui.dictation.live = LiveTranscriber(service.pipeline, max_utterance_s=6.0)
    audio, rate = sf.read(shared_audio / "zh" / "asr_example.wav", dtype="int16")
    speech = audio[int(0.7 * rate) : int(5.3 * rate)]
    monologue = np.repeat(np.concatenate([speech] * 3), RATE // rate)  # ~14 s without a pause, sent at once
    session = start(ui)
    stream(ui, session, monologue)  # faster than real time: the worker feeds big backlogs
    ui.live_stop(session, "en")
    sentences = session.state.sentences
    assert len(sentences) >= 2, sentences
    assert all(s.end - s.start <= 6.0 + LIVE_FEED_MAX_S + 0.7 for s in sentences), sentences


def test_start_checks_the_options_in_the_users_language(ui, service):
    too_many = "\n".join(f"词{i}" for i in range(service.settings.max_hotwords + 1))
    out = ui.live_start(None, too_many, True, "auto", "zh", request("bad"))
    assert out[0] is None and out[1].startswith("⚠") and "热词" in out[1]
    assert out[-1]["interactive"] is True
    # chunks that come anyway say the same and start nothing
    out = ui.live_stream((RATE, np.zeros(RATE // 2, np.int16)), None, too_many, True, "auto", "zh", request("bad"))
    assert out[S_SESSION] is None and "热词" in out[S_STATUS]
    assert ui.dictation.sessions == {}


def test_start_and_first_chunk_racing_share_one_session(ui, service):
    # the first chunk reaches the server before the start event: both end up with the same dictation
    out = ui.live_stream((RATE, np.zeros(RATE // 2, np.int16)), None, "", True, "auto", "en", request("race"))
    first = out[S_SESSION]
    assert isinstance(first, LiveSession)
    assert ui.live_start(None, "", True, "auto", "en", request("race"))[0] is first
    assert ui.live_start(first, "", True, "auto", "en", request("race"))[0] is first
    # a dictation left open by a lost Stop is saved, and the next Record gets a new one
    first.heard = LIVE_JUST_OPENED_S + 1
    second = ui.live_start(first, "", True, "auto", "en", request("race"))[0]
    assert second is not first and first.state.finished and ui.dictation.sessions["race"] is second
    settle(first)


def test_a_model_error_on_a_chunk_is_shown_and_the_dictation_goes_on(ui, monkeypatch):
    session = start(ui)
    calls = []

    def broken(state, samples, rate):
        calls.append(samples.size)
        raise RuntimeError("out of memory")

    monkeypatch.setattr(ui.dictation.live, "feed", broken)
    # the worker may fail before or after the chunk's own answer is built: the error shows on one of the two
    statuses = []
    for _ in range(2):
        statuses.append(ui.live_stream((RATE, np.zeros(RATE // 2, np.int16)), session, "", True, "auto", "en", None))
        settle(session)
    warned = [o[S_STATUS] for o in statuses if o[S_STATUS].startswith("⚠ Something went wrong")]
    assert calls and warned and "RuntimeError" in warned[0], [o[S_STATUS] for o in statuses]
    settle(session)
    monkeypatch.undo()
    assert ui.live_stop(session, "en")[STATUS].startswith("ℹ")  # nothing said, nothing saved, no crash


def test_partial_is_marked_on_its_own_line():
    state = LiveState(TranscribeOptions(language="zh"))
    state.partial = "推出的语音"
    assert live_display(state) == "▌ 推出的语音"
    state.sentences = [Segment(0.5, 2.0, "欢迎大家。"), Segment(2.5, 4.0, "来体验。")]
    assert live_display(state) == "欢迎大家。来体验。\n▌ 推出的语音"
    state.partial = ""
    assert live_display(state) == "欢迎大家。来体验。"
    state.options = TranscribeOptions(language="en")
    state.sentences = [Segment(0.5, 2.0, "Hello."), Segment(2.5, 4.0, "Welcome.")]
    assert live_display(state) == "Hello. Welcome."


def test_live_events_have_their_own_concurrency_and_the_mode_switch_shows_one_way(ui, service):
    blocks = build_ui(service)
    live = [fn for fn in blocks.fns.values() if fn.concurrency_id == "live"]
    assert sorted(fn.name for fn in live) == ["live_start", "live_stopping", "live_stream"]
    assert all(fn.concurrency_limit is None for fn in live)  # a dictation never waits behind a file
    stream_fn = next(fn for fn in live if fn.connection == "stream")
    assert stream_fn.stream_every == LIVE_STREAM_EVERY_S and stream_fn.time_limit == LIVE_TIME_LIMIT_S
    assert stream_fn.show_progress == "hidden"
    audio = stream_fn.inputs[0]
    assert isinstance(audio, gr.Audio) and audio.streaming and audio.sources == ["microphone"]
    assert any(fn.name == "live_unload" for fn in blocks.fns.values())  # a closed tab saves its dictation
    inference = [fn for fn in blocks.fns.values() if fn.concurrency_id == "inference"]
    assert len(inference) == 5 and all(fn.concurrency_limit == 1 for fn in inference)  # unchanged
    record = [gr.update(visible=True)] * 3 + [gr.update(visible=False)] * 2
    assert ui.mic_mode("record") == record
    assert ui.mic_mode("live") == [gr.update(visible=False)] * 3 + [gr.update(visible=True)] * 2
    table = ui.relabel_segments("zh", segments_frame(None, "en"))
    assert list(table.columns) == ["开始", "结束", "文本"]


# --------------------------------------------------------------------------- the real page

LAUNCH_ARGS = [*BROWSER_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
SENTENCE_TIMEOUT_S = 60  # Whisper base takes ~2 s a call on 2 cores, with Chromium drawing beside it


def shot(page, name: str, docs: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if docs and UPDATE_DOCS:
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SHOTS / f"{name}.png")


def live_text(page) -> str:
    return page.locator("#mic-live-text textarea").input_value()


def finished_part(text: str) -> str:
    """The finished sentences of the live text (the line after the mark is still being spoken)."""
    return text.split(PARTIAL_MARK)[0].strip()


def says(text: str, sentence: str, max_cer: float = 0.3) -> bool:
    """Whether the text holds the sentence, give or take Whisper base's mistakes (sentences may run together)."""
    text, n = strip_punctuation(text), len(sentence)
    windows = [text[i : i + n + d] for i in range(max(1, len(text) - n + 1)) for d in (-2, -1, 0, 1, 2)]
    return any(cer(sentence, window) <= max_cer for window in windows if window)


def finished_and_partial(text: str) -> bool:
    return bool(finished_part(text)) and PARTIAL_MARK in text


def wait_for(page, condition, timeout_s: float, what: str) -> list[str]:
    """Poll the live text until condition(text); returns every text seen on the way."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while True:
        text = live_text(page)
        if not seen or seen[-1] != text:
            seen.append(text)
        if condition(text):
            return seen
        status = page.locator("#mic-live-status").inner_text()
        assert time.monotonic() < deadline, f"{what} within {timeout_s} s; the page showed: {seen}, {status!r}"
        page.wait_for_timeout(200)


def open_live(browser, url: str, locale: str):
    from playwright.sync_api import expect

    context = browser.new_context(locale=locale, viewport=VIEWPORT, permissions=["microphone"])
    page = context.new_page()
    page.goto(url)
    expect(page.locator("#single-start")).to_be_visible(timeout=60_000)
    expect(page.locator("#engine-line")).to_contain_text("whisper")
    page.get_by_role("tab").nth(2).click()
    page.locator("#mic-mode input[value=live]").check()
    expect(page.locator("#mic-live-audio")).to_be_visible()
    expect(page.locator("#mic-audio")).to_be_hidden()
    return context, page


@pytest.mark.browser
def test_live_dictation_in_the_browser(chromium: Path, live_server, service, shared_audio: Path, tmp_path: Path):
    sync_api = playwright_sync_api()
    expect = sync_api.expect
    # Chromium's fake microphone plays this file in a loop: a second of quiet, the sentence, a pause. The recording's
    # faint lead-in is left out: Chromium's automatic gain lifts it into a blip that Whisper answers with its prompt.
    speech, rate = sf.read(shared_audio / "zh" / "asr_example.wav", dtype="int16")
    speech = speech[int(0.85 * rate) :]
    fake = tmp_path / "dictation.wav"
    sf.write(fake, np.concatenate([np.zeros(rate, np.int16), speech, np.zeros(rate * 5 // 2, np.int16)]), rate)
    mic = [f"--use-file-for-fake-audio-capture={fake}"]

    def close_to_expected(text: str) -> bool:
        return says(finished_part(text), EXPECTED)

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=LAUNCH_ARGS + mic)
        page = None
        try:
            # English page: dictate, see partials and a finished sentence, stop, find it in History
            context, page = open_live(browser, live_server.url + "/", "en-US")
            page.locator("#mic-hotwords textarea").fill("达摩院")
            page.locator("#mic-live-audio").get_by_role("button", name="Record").click()
            expect(page.locator("#mic-live-status")).to_contain_text("Listening")
            expect(page.locator("#mic-mode input").first).to_be_disabled()  # no switching away mid-dictation
            seen = wait_for(page, close_to_expected, SENTENCE_TIMEOUT_S, "no finished sentence close to the speech")
            expect(page.locator("#mic-live-segments")).to_contain_text("00:0")
            # the file plays again: the next sentence's partial follows the finished text
            seen += wait_for(page, finished_and_partial, SENTENCE_TIMEOUT_S / 2, "no partial after the sentence")
            shot(page, "live", docs=True)
            assert any(PARTIAL_MARK in text for text in seen), f"no partial was shown: {seen}"
            page.locator("#mic-live-audio").get_by_role("button", name="Stop").click()
            expect(page.locator("#mic-live-status")).to_contain_text("saved in History (#", timeout=30_000)
            final = live_text(page)
            assert PARTIAL_MARK not in final and close_to_expected(final)
            expect(page.locator("#mic-live-download-txt")).to_be_enabled()
            expect(page.locator("#mic-mode input").first).to_be_enabled()
            page.get_by_role("tab").nth(3).click()
            expect(page.locator("#history-table")).to_contain_text("Microphone")
            records = service.history.search("", source="microphone").records
            assert len(records) == 1 and close_to_expected(records[0].text), records
            assert records[0].segments and records[0].hotwords == ["达摩院"]
            shot(page, "live-history")
            context.close()

            # Chinese page: closing the tab mid-dictation keeps what was said
            context, page = open_live(browser, live_server.url + "/", "zh-CN")
            expect(page.locator("#mic-mode")).to_contain_text("实时听写")
            page.locator("#mic-live-audio").get_by_role("button").filter(has_text="录制").click()
            expect(page.locator("#mic-live-status")).to_contain_text("正在听写")
            wait_for(page, finished_and_partial, SENTENCE_TIMEOUT_S, "no sentence and partial")
            shot(page, "live-zh", docs=True)
            context.close()  # no Stop: Gradio's heartbeat drops and the page's unload event saves it
            deadline = time.monotonic() + 30
            while service.history.search("", source="microphone").total < 2:
                assert time.monotonic() < deadline, "the closed tab's dictation was not saved"
                time.sleep(0.2)
            records = service.history.search("", source="microphone").records
            assert len(records) == 2 and records[0].text and records[0].segments
        except BaseException:
            if page is not None and not page.is_closed():
                shot(page, "last-test_live_dictation_in_the_browser")
            raise
        finally:
            browser.close()
