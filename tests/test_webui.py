"""The page's callbacks called directly (no browser): what each tab shows for good input, bad input and edge cases."""

from __future__ import annotations

import json
import re
import zipfile
from datetime import date
from pathlib import Path

import gradio as gr
import pandas as pd
import pytest
from fastapi import FastAPI

from funasr_webui import i18n
from funasr_webui.helpers import format_duration, format_size, safe_stem
from funasr_webui.history import HistoryStore, audio_hash
from funasr_webui.transcript import Segment, Transcript
from funasr_webui.ui.app import Header, build_ui
from funasr_webui.ui.assets import REDRAW_MARK
from funasr_webui.ui.format import esc, language_choices, preview, segments_frame
from funasr_webui.ui.tabs.batch import BatchCallbacks, BatchResults
from funasr_webui.ui.tabs.history import HISTORY_PAGE_SIZE, HistoryCallbacks, history_headers
from funasr_webui.ui.tabs.microphone import MicCallbacks
from funasr_webui.ui.tabs.single import SingleCallbacks
from funasr_webui.ui.tabs.system import SystemCallbacks
from tests import media_samples as ms
from tests.helpers import job_owner, jobs_in, kill

# gr.Warning outside a running event is a Python warning: expected here, where callbacks are called directly
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:gradio.helpers")

XSS = '<img src=x onerror="alert(1)"><script>alert(2)</script>[link](javascript:alert(3))'

# Output positions of the single-file / microphone callbacks.
STATUS, TEXT, STATS, SEGMENTS, DL_TXT, DL_SRT, DL_VTT, DL_JSON, DL_MD, DL_DOCX, RERUN = range(11)


@pytest.fixture
def single(service) -> SingleCallbacks:
    return SingleCallbacks(service)


@pytest.fixture
def batch(service) -> BatchCallbacks:
    return BatchCallbacks(service)


@pytest.fixture
def mic(service) -> MicCallbacks:
    return MicCallbacks(service)


@pytest.fixture
def history(service) -> HistoryCallbacks:
    return HistoryCallbacks(service)


@pytest.fixture
def system(service) -> SystemCallbacks:
    return SystemCallbacks(service)


@pytest.fixture
def header(service) -> Header:
    return Header(service)


@pytest.fixture
def speech(shared_audio: Path) -> Path:
    return shared_audio / "zh" / "asr_example.wav"


@pytest.fixture
def not_audio(tmp_path: Path) -> Path:
    path = tmp_path / "minutes.wav"  # a text file wearing an audio extension
    path.write_text("meeting minutes, not a recording\n", encoding="utf-8")
    return path


def value(update):
    return update["value"] if isinstance(update, dict) else update


def transcript(text: str, source_lang: str = "zh") -> Transcript:
    return Transcript(
        text=text,
        raw_text=text,
        segments=[Segment(0.0, 1.5, text)],
        language=source_lang,
        duration=1.5,
        engine="whisper",
        model="whisper-base",
        device="cpu",
        elapsed=0.5,
    )


def seed(service, texts: list[str], source: str = "meeting.wav") -> list[int]:
    return [
        service.history.add(transcript(text), source=source, audio_hash=audio_hash(text.encode())) for text in texts
    ]


# --------------------------------------------------------------------------- translations and helpers


def test_every_message_has_both_languages_with_the_same_placeholders():
    for key, (en, zh) in i18n.MESSAGES.items():
        assert en.strip() and zh.strip(), key
        assert set(re.findall(r"{(\w+)}", en)) == set(re.findall(r"{(\w+)}", zh)), key


def test_t_follows_the_page_language_and_fills_placeholders():
    assert i18n.t("msg_no_file", "zh") == "请先选择文件。"
    assert i18n.t("msg_no_file", "zh-TW") == "请先选择文件。"
    assert i18n.t("msg_no_file", "en") == "Please choose a file first."
    assert i18n.t("msg_no_file", None) == "Please choose a file first."
    assert "51" in i18n.t("msg_too_many_files", "en", count=51, max=50)


def test_gradio_translations_cover_chinese_locales_and_fill_settings():
    table = i18n.gradio_i18n(max_hotwords=7, max_batch_files=3, max_upload_mb="9").translations_dict
    assert set(table) >= {"en", "zh", "zh-CN"}
    assert table["zh-CN"]["tab_single"] == "单文件识别"
    assert table["en"]["tab_history"] == "History"
    assert "7" in table["en"]["hotwords_info"] and "7" in table["zh"]["hotwords_info"]
    assert "3" in table["zh"]["batch_hint"]


def test_ui_rejects_an_unknown_key():
    with pytest.raises(KeyError):
        i18n.ui("no_such_label")


def test_esc_makes_user_text_inert_in_markdown():
    out = esc(XSS)
    assert "<" not in out and ">" not in out
    assert "&lt;script&gt;" in out
    assert "](" not in out  # the link syntax is broken up
    assert esc("a\nb") == "a b"


def test_safe_stem_keeps_chinese_and_drops_paths_and_symbols():
    assert safe_stem("周会 记录<1>.mp3") == "周会_记录_1"
    assert safe_stem("../../etc/passwd") == "passwd"
    assert safe_stem("C:\\Users\\me\\a b.wav") == "a_b"
    assert safe_stem("....wav") == "transcript"
    assert len(safe_stem("x" * 500 + ".wav")) == 80


def test_formatting_helpers():
    assert format_duration(5.54, "en") == "5.5 s"
    assert format_duration(5.54, "zh") == "5.5 秒"
    assert format_duration(125, "en") == "2:05"
    assert format_duration(3725, "zh") == "1:02:05"
    assert format_duration(None, "en") == "—"
    assert format_size(1536) == "1.5 KB"
    assert preview("a " * 100).endswith("…")
    frame = segments_frame(transcript("你好"), "zh")
    assert list(frame.columns) == ["开始", "结束", "文本"]
    assert frame.iloc[0].tolist() == ["00:00.000", "00:01.500", "你好"]


def test_language_choices_put_auto_and_common_languages_first():
    choices = language_choices(("de", "en", "zh", "sw"))
    assert [v for _, v in choices] == ["auto", "zh", "en", "de", "sw"]
    assert [v for _, v in language_choices(())] == ["auto"]


# --------------------------------------------------------------------------- the Blocks


def test_build_ui_keeps_its_page_settings_through_mount(service):
    blocks = build_ui(service)
    assert isinstance(blocks, gr.Blocks)
    assert blocks.i18n_instance.translations_dict["zh"]["tab_batch"] == "批量处理"
    # one recognition at a time, and a bounded queue
    assert blocks._queue.default_concurrency_limit == 1
    assert blocks._queue.max_size == service.settings.max_queue
    gr.mount_gradio_app(FastAPI(), blocks, path="/")  # what server.create_app does
    fonts = [*blocks.theme._font, *blocks.theme._font_mono]
    assert all(not isinstance(f, gr.themes.GoogleFont) for f in fonts)
    assert "Microsoft YaHei" in str(blocks.theme._font)
    assert blocks.run_history is False  # transcripts are not copied into the browser's storage
    assert blocks.footer_links == ["settings"]
    assert "Source Sans" not in blocks.theme._get_theme_css()
    assert blocks.i18n_instance is not None


def test_inference_events_share_one_slot(service):
    blocks = build_ui(service)
    inference = [fn for fn in blocks.fns.values() if fn.concurrency_id == "inference"]
    assert len(inference) == 5  # start, run again, batch, microphone stop and its "recognize again"
    assert all(fn.concurrency_limit == 1 for fn in inference)


# --------------------------------------------------------------------------- single file


def test_single_file_shows_text_segments_stats_and_downloads(single, service, speech):
    out = single.single_start(str(speech), "达摩院", True, "zh", "zh")
    assert "达摩院" in out[TEXT]
    assert out[STATUS].startswith("✔") and "历史记录" in out[STATUS]
    assert "倍实时" in out[STATS] and "5.5 秒" in out[STATS]
    assert isinstance(out[SEGMENTS], pd.DataFrame) and len(out[SEGMENTS]) >= 1
    paths = {Path(value(out[i])).suffix: Path(value(out[i])) for i in (DL_TXT, DL_SRT, DL_VTT, DL_JSON)}
    assert set(paths) == {".txt", ".srt", ".vtt", ".json"}
    assert all(p.stem == "asr_example" for p in paths.values())
    assert "-->" in paths[".srt"].read_text(encoding="utf-8")
    assert paths[".vtt"].read_text(encoding="utf-8").startswith("WEBVTT")
    assert out[RERUN]["visible"] is False
    page = service.history.search("")
    assert page.total == 1 and page.records[0].source == "asr_example.wav"


def test_same_file_same_settings_shows_the_earlier_result_and_offers_a_rerun(single, service, speech):
    single.single_start(str(speech), "达摩院", True, "zh", "en")
    again = single.single_start(str(speech), "达摩院", True, "zh", "en")
    assert "already transcribed" in again[STATUS]
    assert "达摩院" in again[TEXT]
    assert again[RERUN]["visible"] is True
    assert service.history.search("").total == 1  # nothing was run or saved twice
    rerun = single.single_rerun(str(speech), "达摩院", True, "zh", "en")
    assert rerun[STATUS].startswith("✔") and rerun[RERUN]["visible"] is False
    assert service.history.search("").total == 2


def test_a_bad_file_gives_a_clear_message_in_the_page_language(single, service, not_audio):
    zh = single.single_start(str(not_audio), "", True, "auto", "zh")
    assert zh[STATUS] == "⚠ minutes.wav：无法识别的音频或视频文件"
    assert zh[TEXT] == "" and value(zh[DL_SRT]) is None
    en = single.single_start(str(not_audio), "", True, "auto", "en")
    assert "not an audio or video file" in en[STATUS]
    assert "Traceback" not in en[STATUS]
    failed = service.history.search("", status="failed")
    assert failed.total == 2  # the service keeps failures too


def test_a_transcription_is_a_job_from_decoded_audio_until_its_record(
    single, service, not_audio, tmp_path, monkeypatch
):
    db, real = service.history.db_path, service.pipeline.transcribe
    during = []

    def transcribe(audio, options):
        during.append(jobs_in(db))
        if len(during) == 2:
            raise RuntimeError("injected engine fault")
        return real(audio, options)

    monkeypatch.setattr(service.pipeline, "transcribe", transcribe)
    quiet = tmp_path / "quiet.wav"
    quiet.write_bytes(ms.wav_bytes(ms.silent_clip(3)))
    assert "no speech" in single.single_start(str(quiet), "", True, "auto", "en")[STATUS]
    assert "RuntimeError" in single.single_rerun(str(quiet), "", True, "auto", "en")[STATUS]
    single.single_start(str(not_audio), "", True, "auto", "en")  # refused by the decoder: never a job
    assert during == [["quiet.wav"], ["quiet.wav"]] and jobs_in(db) == []
    assert [r.status for r in service.history.search("").records] == ["failed", "failed", "done"]


def test_too_many_hotwords_and_no_file(single, service, speech):
    words = "\n".join(f"词{i}" for i in range(service.settings.max_hotwords + 1))
    out = single.single_start(str(speech), words, True, "auto", "zh")
    assert "热词过多" in out[STATUS]
    out = single.single_start(None, "", True, "auto", "en")
    assert "choose a file" in out[STATUS]
    assert service.history.search("").total == 0


def test_an_unexpected_error_is_a_short_message_not_a_traceback(single, service, speech, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(service, "transcribe_file", boom)
    out = single.single_start(str(speech), "", True, "auto", "en")
    assert "RuntimeError" in out[STATUS]
    assert "secret internal detail" not in out[STATUS]


def test_a_transcript_with_markup_is_returned_as_plain_text(single, history, service, speech, monkeypatch):
    real = service.pipeline.transcribe

    def with_markup(audio, options):
        result = real(audio, options)
        result.text = XSS
        return result

    monkeypatch.setattr(service.pipeline, "transcribe", with_markup)
    out = single.single_start(str(speech), "", True, "zh", "en")
    assert out[TEXT] == XSS  # a Textbox shows it as text, never as HTML
    rec = service.history.search("").records[0]
    assert rec.text == XSS  # saved verbatim; the History tab's text box shows it as it is
    assert history.detail_values(rec, "en")[1] == XSS
    # How the page renders such a transcript is checked in Chromium (test_browser.py,
    # test_a_transcript_with_markup_is_shown_as_text_in_the_page): the summary Markdown holds no transcript.


# --------------------------------------------------------------------------- batch


def test_batch_marks_the_bad_file_failed_and_zips_the_rest(batch, service, speech, not_audio):
    runs = list(batch.batch_run([str(speech), str(not_audio)], "", True, "zh", "srt", "en"))
    status, table, zip_update, results = runs[-1]
    assert "2 files: 1 done, 1 failed" in status
    assert table.iloc[0, 2] == "done" and "语音识别" in table.iloc[0, 3]
    assert table.iloc[1, 2].startswith("failed: not an audio or video file")
    assert len(runs) == 3  # one update per file, then the summary
    with zipfile.ZipFile(value(zip_update)) as zf:
        assert sorted(zf.namelist()) == ["asr_example.srt", "failed.txt"]
        assert "minutes.wav" in zf.read("failed.txt").decode("utf-8")
    # another format rebuilds the zip from the same results, without running anything again
    with zipfile.ZipFile(value(batch.batch_format_changed(results, "txt", "en"))) as zf:
        assert "asr_example.txt" in zf.namelist()
    assert service.history.search("").total == 2  # every file lands in the history


def test_batch_refuses_more_files_than_the_cap(batch, service, speech):
    service.settings.max_batch_files = 2
    runs = list(batch.batch_run([str(speech)] * 3, "", True, "auto", "txt", "zh"))
    assert len(runs) == 1
    assert "文件过多" in runs[0][0] and "3" in runs[0][0] and "2" in runs[0][0]
    assert service.history.search("").total == 0
    assert "请先选择文件" in next(iter(batch.batch_run([], "", True, "auto", "txt", "zh")))[0]


def test_batch_zip_keeps_two_files_with_the_same_name(batch):
    results = BatchResults(done=[("a.wav", transcript("一")), ("a.wav", transcript("二"))])
    with zipfile.ZipFile(batch.batch_zip(results, "txt", "en")) as zf:
        assert sorted(zf.namelist()) == ["a-2.txt", "a.txt"]


# --------------------------------------------------------------------------- microphone


def test_microphone_recording_is_saved_with_source_microphone(mic, service, speech):
    out = mic.mic_recognize(str(speech), "达摩院", True, "zh", "en")
    assert "达摩院" in out[TEXT]
    assert Path(value(out[DL_TXT])).name.startswith("recording-")
    page = service.history.search("", source="microphone")
    assert page.total == 1
    assert mic.mic_recognize(None, "", True, "auto", "zh")[STATUS] == "⚠ 请先录音。"


# --------------------------------------------------------------------------- history


FILTERS = ("", None, None, "", "", "", "")  # query, from, to, engine, source, status, quality checks


def test_history_pages_search_and_filters(history, service):
    seed(service, [f"第{i}次周会讨论预算" for i in range(25)])
    seed(service, ["客户电话"], source="microphone")
    table, line, page, prev_btn, next_btn = history.history_first(*FILTERS, 1, "zh")
    assert len(table) == HISTORY_PAGE_SIZE and line == "第 1 / 2 页 · 共 26 条"
    assert table.iloc[0, 2] == "麦克风" and prev_btn["interactive"] is False and next_btn["interactive"] is True
    table, line, page, *_ = history.history_next(*FILTERS, page, "en")
    assert len(table) == 6 and page == 2 and line == "Page 2 of 2 · 26 transcripts"
    table, *_ = history.history_first("客户", None, None, "", "", "", "", 2, "en")
    assert table.iloc[:, 4].tolist() == ["客户电话"]
    table, *_ = history.history_first("", None, None, "", "microphone", "", "", 1, "en")
    assert len(table) == 1
    table, line, *_ = history.history_first("", "2000-01-01", "2000-01-02", "", "", "", "", 1, "en")
    assert len(table) == 0 and line == "No transcripts match."
    today = date.today().isoformat()
    table, *_ = history.history_first("", today, today + " 00:00:00", "whisper", "", "done", "", 1, "en")
    assert len(table) == 20
    table, *_ = history.history_first("", "last tuesday", None, "", "", "", "", 1, "zh")  # a warning, not a crash
    assert len(table) == 0


def test_history_select_shows_the_record_and_downloads(history, service):
    rid = seed(service, ["欢迎体验语音识别"], source="周会.wav")[0]
    event = gr.SelectData(None, {"index": [0, 1], "value": "x", "row_value": [rid, "t", "周会.wav", "1.5 s", "…"]})
    summary, text, segments, audio, txt, srt, vtt, js, md, docx, selected, delete = history.history_select(event, "zh")
    assert text == "欢迎体验语音识别" and selected == rid and delete["interactive"] is True
    assert "周会.wav" in summary and "whisper" in summary
    assert Path(value(srt)).name == "周会.srt" and "-->" in Path(value(srt)).read_text(encoding="utf-8")
    assert audio["visible"] is False  # no audio kept (keep_audio is off by default)
    assert list(segments.columns) == ["开始", "结束", "文本"]


def test_history_names_a_record_and_says_where_it_came_from(history, service):
    old = service.history.add(transcript("旧的上传"), source="api", audio_hash="h1")  # saved before records had names
    api = service.history.add(transcript("客户来电"), source="api", name="客户来电.wav", audio_hash="h2")
    ws = service.history.add(transcript("实时转写"), source="websocket", name="demo", audio_hash="h3")
    table, *_ = history.history_first(*FILTERS, 1, "zh")
    assert table.iloc[:, 2].tolist() == ["demo (FunASR WebSocket)", "客户来电.wav (API)", "API"]
    table, *_ = history.history_first("", None, None, "", "客户来电.wav", "", "", 1, "en")  # the file-name filter
    assert table.iloc[:, 0].tolist() == [api]
    table, *_ = history.history_first("", None, None, "", "api", "", "", 1, "en")
    assert table.iloc[:, 0].tolist() == [api, old]
    summary, *_, txt, srt, vtt, js, md, docx, selected, _delete = history.detail_values(service.history.get(api), "zh")
    assert r"客户来电.wav \(API\)" in summary and Path(value(srt)).name == "客户来电.srt"  # Markdown-escaped
    assert json.loads(Path(value(js)).read_text(encoding="utf-8"))["name"] == "客户来电.wav"
    assert selected == api and ws


def test_history_plays_back_kept_audio(history, service, speech):
    service.history.keep_audio = True
    rid = service.history.add(transcript("有录音"), source="a.wav", audio_hash="h", audio_path=speech)
    audio = history.detail_values(service.history.get(rid), "en")[3]
    assert audio["visible"] is True and Path(audio["value"]).read_bytes() == speech.read_bytes()


def test_history_failed_record_reads_in_the_page_language(single, history, service, not_audio):
    single.single_start(str(not_audio), "", True, "auto", "en")
    table, *_ = history.history_first(*FILTERS, 1, "zh")
    assert table.iloc[0, 4] == "失败：无法识别的音频或视频文件"
    rec = service.history.search("").records[0]
    summary = history.detail_values(rec, "zh")[0]
    assert "无法识别的音频或视频文件" in summary


def test_history_interrupted_record_reads_in_the_page_language(history, system, service):
    seed(service, ["完成的记录"])
    with job_owner(service.history.db_path, "周会.wav") as owner:  # a server killed while transcribing it
        kill(owner)
    with HistoryStore(service.history.db_path) as restarted:
        (job,) = restarted.interrupted
    table, *_ = history.history_first("", None, None, "", "", "interrupted", "", 1, "zh")
    assert table.iloc[:, 2].tolist() == ["周会.wav"] and table.iloc[0, 4] == "已中断：服务在识别完成前停止了"
    table, *_ = history.history_first(*FILTERS, 1, "en")
    assert table.iloc[0, 4] == "interrupted: the server stopped before this file finished" and len(table) == 2
    summary, text, _segments, _audio, *downloads, selected, _delete = history.detail_values(
        service.history.get(job.record_id), "en"
    )
    assert "Interrupted: the server stopped" in summary and text == "" and selected == job.record_id
    assert all(d["interactive"] is False for d in downloads)
    assert "已中断" in history.detail_values(service.history.get(job.record_id), "zh")[0]
    rows = dict(zip(*[c.tolist() for _, c in system.system_table("en").items()], strict=True))
    assert rows["History: transcripts (done / failed)"] == "2 (1 / 1)"  # interrupted counts as not done


def test_history_escapes_names_in_the_summary(history, service):
    rid = seed(service, ["文本"], source=XSS)[0]
    summary = history.detail_values(service.history.get(rid), "en")[0]
    assert "<img" not in summary and "<script" not in summary and "&lt;img" in summary
    table, *_ = history.history_first(*FILTERS, 1, "en")
    assert table.iloc[0, 2] == XSS  # the Dataframe escapes it


def test_history_delete_asks_first_then_deletes(history, service):
    rid = seed(service, ["要删除的记录"])[0]
    assert history.history_delete_ask(None, "en")["visible"] is False
    assert history.history_delete_ask(rid, "en")["visible"] is True
    confirm_row, summary, *_rest = history.history_delete(rid, "en")
    assert confirm_row["visible"] is False and "Click a row" in summary
    assert service.history.get(rid) is None


def test_history_export_of_the_filtered_set(history, service):
    seed(service, ["预算会议", "招聘会议", "客户电话"])
    path = Path(value(history.history_export("csv", "会议", None, None, "", "", "", "", "en")))
    text = path.read_text(encoding="utf-8-sig")
    assert "预算会议" in text and "招聘会议" in text and "客户电话" not in text
    path = Path(value(history.history_export("zip-srt", "", None, None, "", "", "", "", "en")))
    with zipfile.ZipFile(path) as zf:
        assert len(zf.namelist()) == 3 and all(n.endswith(".srt") for n in zf.namelist())
    nothing = history.history_export("json", "不存在的词", None, None, "", "", "", "", "en")
    assert nothing["visible"] is False


def test_history_purge_asks_first(history, service):
    seed(service, ["旧记录"])
    row, message = history.history_purge_ask(30, "zh")
    assert row["visible"] is True and "30 天" in message
    assert history.history_purge_ask("abc", "zh")[0]["visible"] is False
    history.history_purge(30, "zh")
    assert service.history.search("").total == 1  # nothing is 30 days old yet
    history.history_purge(0, "zh")
    assert service.history.search("").total == 0


# --------------------------------------------------------------------------- system and language


def test_system_table_lists_engine_device_versions_and_history(system, service, monkeypatch):
    import torch

    # The engine runs on the CPU (conftest pins it); the GPU row reports the hardware, so the test pins that too.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    seed(service, ["一", "二"])
    table = system.system_table("en")
    rows = dict(zip(table.iloc[:, 0], table.iloc[:, 1], strict=True))
    assert rows["Engine"] == "whisper" and rows["Device"] == "CPU"
    assert rows["GPU"] == "none (running on the CPU)"
    assert rows["CPU cores"].isdigit() and "/" in rows["Memory (RAM) used / total"]
    assert rows["History: transcripts (done / failed)"] == "2 (2 / 0)"
    assert re.match(r"\d+\.\d+", rows["Python version"]) and rows["PyTorch version"]
    zh = system.system_table("zh")
    assert list(zh.columns) == ["项目", "值"] and "运行设备" in zh.iloc[:, 0].tolist()
    assert system.system_free_gpu("en").equals(system.system_table("en"))  # on the CPU: a message, nothing freed


def test_header_names_the_engine_and_explains_the_stand_in(header):
    assert "whisper" in header.engine_line("en") and "CPU" in header.engine_line("en")
    notice = header.notice("zh")
    assert notice["visible"] is True
    assert "./run.sh download" in notice["value"] and "models/README.md" in notice["value"]


def test_language_switch_relabels_the_tables(header):
    seg = segments_frame(transcript("你好"), "en")
    out = header.on_language("zh", seg, seg, pd.DataFrame(), pd.DataFrame(columns=history_headers("en")), seg, "")
    lang, engine_line, notice, *tabs_and_tables, redraw = out
    tabs, tables, system = tabs_and_tables[:6], tabs_and_tables[6:11], tabs_and_tables[11]
    assert redraw is False and header.on_language("en", *tables, REDRAW_MARK)[-1] is True
    assert lang == "zh" and "识别引擎" in engine_line
    assert [tab["label"] for tab in tabs] == ["单文件识别", "批量处理", "实时录音", "历史记录", "质检", "系统信息"]
    assert list(tables[0].columns) == ["开始", "结束", "文本"] and tables[0].iloc[0, 2] == "你好"
    assert list(tables[3].columns)[1] == "时间"
    assert list(system.columns) == ["项目", "值"]
