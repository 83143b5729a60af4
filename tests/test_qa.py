"""Quality rules: validation, the matcher, checks on real shared audio when a transcript is saved, re-checking the
history, the report, the schema migration, the API and the `qa` / `history list --format json` commands."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
import requests

from funasr_webui.errors import UserError
from funasr_webui.history import SCHEMA_VERSION, HistoryStore, open_store
from funasr_webui.qa import CallText, Rule, check, normalize, parse_rules, rule_from_dict
from funasr_webui.qa.report import render_report
from funasr_webui.settings import PROJECT_ROOT
from funasr_webui.transcript import Segment, Transcript, Word

RULES = [
    {"name": "greeting", "kind": "required", "phrases": ["您好", "你好"], "within_s": [0, 15]},
    {"name": "banned", "kind": "forbidden", "phrases": ["语音识别", "你自己查"]},
    {"name": "closing", "kind": "forbidden", "phrases": ["欢迎"], "within_s": [-2, 0]},  # said, but at the start
]


def call(*segments: Segment, raw: str | None = None, duration: float | None = None) -> CallText:
    raw_text = raw if raw is not None else "".join(s.text for s in segments)
    return CallText(list(segments), raw_text, duration if duration is not None else segments[-1].end)


# --------------------------------------------------------------------------- rules and their validation


@pytest.mark.parametrize(
    ("item", "says"),
    [
        ({"name": "x", "kind": "banned", "phrases": ["a"]}, "unknown kind 'banned'"),
        ({"name": "x", "kind": "forbidden", "phrases": []}, "phrases is empty"),
        ({"name": "x", "kind": "forbidden", "phrases": ["，。"]}, "phrases is empty"),
        ({"name": "x", "kind": "required", "phrases": ["a"], "within_s": [15, 0]}, "within_s must be"),
        ({"name": "x", "kind": "required", "phrases": ["a"], "within_s": [-5, 10]}, "within_s must be"),
        ({"name": "x", "kind": "required", "phrases": ["a"], "within_s": [0]}, "within_s must be"),
        ({"name": "x", "kind": "required", "phrases": ["a"], "speaker": 0}, "speaker must be"),
        ({"kind": "forbidden", "phrases": ["a"]}, "needs a name"),
        ({"name": "x", "kind": "forbidden", "phrases": ["a"], "color": "red"}, "unknown field 'color'"),
    ],
)
def test_bad_rules_are_refused_with_a_clear_message(item: dict, says: str) -> None:
    with pytest.raises(UserError) as e:
        rule_from_dict(item)
    assert e.value.code == "bad_rule" and says in e.value.message("en")
    assert e.value.message("zh").startswith("规则")


def test_rules_file_round_trips_and_names_are_unique() -> None:
    rules = parse_rules(json.dumps(RULES, ensure_ascii=False))
    assert [r.name for r in rules] == ["greeting", "banned", "closing"]
    assert rules[0].within_s == (0, 15) and rules[2].window(60.0) == (58.0, 60.0)
    again = parse_rules(json.dumps([r.to_dict() for r in rules]))
    assert again == rules
    with pytest.raises(UserError, match="two rules have this name"):
        parse_rules(json.dumps([RULES[1], RULES[1]]))
    with pytest.raises(UserError, match="not a rules file"):
        parse_rules("{not json")


def test_a_bad_import_changes_nothing(history_db: Path | str) -> None:
    with open_store(history_db) as store:
        store.import_rules(parse_rules(json.dumps(RULES)))
        before = store.rules()
        bad = [{"name": "greeting", "kind": "required", "phrases": ["早上好"]}, {"name": "y", "kind": "?"}]
        with pytest.raises(UserError):
            store.import_rules(parse_rules(json.dumps(bad)))
        assert store.rules() == before


# --------------------------------------------------------------------------- the matcher


def test_matching_ignores_punctuation_spaces_case_and_width() -> None:
    assert normalize("您 好，ＡＢＣ!") == "您好abc"
    hits = check(call(Segment(0, 4, "喂，您 好！我 不 知道。")), parse_rules(json.dumps([
        {"name": "banned", "kind": "forbidden", "phrases": ["我不知道"]},
        {"name": "greeting", "kind": "required", "phrases": ["您好"]},
    ], ensure_ascii=False)))  # fmt: skip
    assert [(h.rule, h.kind, h.phrase) for h in hits] == [("banned", "forbidden", "我不知道")]
    assert hits[0].text == "喂，您 好！我 不 知道。" and hits[0].segment == 0
    assert 0 < hits[0].start < hits[0].end <= 4


def test_one_hit_per_occurrence_with_its_time() -> None:
    c = call(Segment(0, 2, "你自己查。"), Segment(5, 9, "好的，你自己查吧，你自己查。"))
    hits = check(c, [Rule("banned", "forbidden", ["你自己查"])])
    assert [(h.segment, h.start) for h in hits] == [(0, 0.0), (1, 5.727), (1, 7.545)]  # by character share


def test_word_times_place_the_hit_when_the_engine_gave_them() -> None:
    words = [Word(10.0, 10.4, "请"), Word(10.4, 11.0, "您"), Word(11.0, 12.5, "自己"), Word(12.5, 13.0, "查")]
    hits = check(call(Segment(10, 13, "请您自己查", words=words)), [Rule("r", "forbidden", ["自己查"])])
    assert (hits[0].start, hits[0].end) == (11.0, 13.0)


def test_raw_text_finds_what_itn_rewrote() -> None:
    c = call(Segment(0, 3, "价格是1500元。"), raw="价格是一千五百块")
    hits = check(c, [Rule("amount", "forbidden", ["一千五百"])])
    assert [(h.phrase, h.segment) for h in hits] == [("一千五百", 0)]
    # said once: the written form in the final text and the spoken form in the raw text are one hit
    from funasr_webui.itn import InverseNormalizer

    assert len(check(call(Segment(0, 3, "价格是1500元。"), raw="价格是1500块"), [hits_rule := Rule(
        "amount", "forbidden", ["一千五百"])], InverseNormalizer())) == 1  # fmt: skip
    assert hits_rule.enabled


def test_time_windows_from_the_start_and_from_the_end() -> None:
    c = call(Segment(1, 3, "您好，这里是客服。"), Segment(50, 58, "再见，祝您愉快。"), duration=60)
    greeting = Rule("greeting", "required", ["您好"], within_s=(0, 15))
    late_greeting = Rule("late", "required", ["您好"], within_s=(-30, 0))
    goodbye = Rule("goodbye", "required", ["再见"], within_s=(-30, 0))
    hits = check(c, [greeting, late_greeting, goodbye])
    assert [(h.rule, h.kind, h.phrase, h.start, h.end) for h in hits] == [("late", "missing", "您好", 30.0, 60.0)]


def test_speaker_position_limits_a_rule_when_the_call_has_speakers() -> None:
    agent_first = call(Segment(0, 2, "您好。", speaker="S1"), Segment(2, 4, "我不知道。", speaker="S2"))
    rules = [Rule("agent-banned", "forbidden", ["我不知道"], speaker=1),
             Rule("agent-greets", "required", ["您好"], speaker=1)]  # fmt: skip
    assert check(agent_first, rules) == []  # the customer said it, the agent greeted
    customer_first = call(Segment(0, 2, "我不知道。", speaker="S2"), Segment(2, 4, "您好。", speaker="S1"))
    kinds = [(h.rule, h.kind) for h in check(customer_first, rules)]
    assert kinds == [("agent-banned", "forbidden"), ("agent-greets", "missing")]  # the first voice is position 1
    no_speakers = call(Segment(0, 2, "我不知道。"))
    assert [h.rule for h in check(no_speakers, rules)] == ["agent-banned", "agent-greets"]


def test_disabled_rules_are_not_checked() -> None:
    assert check(call(Segment(0, 1, "我不知道")), [Rule("r", "forbidden", ["我不知道"], enabled=False)]) == []


# --------------------------------------------------------------------------- real audio, through the service


@pytest.fixture
def rules_service(service):
    service.qa.import_rules(json.dumps(RULES, ensure_ascii=False))
    return service


def test_every_saved_transcript_is_checked(rules_service, shared_audio: Path) -> None:
    options = rules_service.options()
    outcome = rules_service.transcribe_file(
        shared_audio / "zh" / "asr_example.wav", name="asr_example.wav", source="asr_example.wav", options=options
    )
    found = [(h.rule, h.kind, h.phrase) for h in outcome.flags]
    # said: 语音识别; not said: a greeting; 欢迎 is said, but not in the last 2 s
    assert found == [("greeting", "missing", "您好 / 你好"), ("banned", "forbidden", "语音识别")]
    banned = outcome.flags[1]
    assert "语音识别" in banned.text and 0.5 < banned.start < banned.end < 5.6
    stored = rules_service.qa.hits([outcome.record_id])[outcome.record_id]
    assert [h.to_dict() for h in stored] == [h.to_dict() for h in outcome.flags]
    page = rules_service.search(rule="banned")
    assert [r.id for r in page.records] == [outcome.record_id]
    assert rules_service.search(flagged=True).total == 1 and rules_service.search(rule="closing").total == 0


def test_spoken_number_is_found_though_itn_wrote_digits(rules_service, shared_audio: Path) -> None:
    rules_service.qa.import_rules(json.dumps([{"name": "amount", "kind": "forbidden", "phrases": ["一千五百"]}]))
    outcome = rules_service.transcribe_file(
        shared_audio / "tts" / "d01.wav", name="d01.wav", source="d01.wav", options=rules_service.options()
    )
    assert "1500" in outcome.transcript.text  # ITN wrote the number as digits
    assert [h.phrase for h in outcome.flags if h.rule == "amount"] == ["一千五百"]


def test_apply_to_existing_finds_what_a_fresh_transcription_would(service, shared_audio: Path) -> None:
    path = shared_audio / "zh" / "asr_example.wav"
    service.qa.set_hotwords(False)  # the same engine input both times: the text, and so the hits, are the same
    before = service.transcribe_file(path, name="a.wav", source="a.wav", options=service.options())
    assert before.flags == [] and service.qa.summary()["checked"] == 0  # no rules yet: not checked
    service.qa.import_rules(json.dumps(RULES, ensure_ascii=False))
    assert service.qa.apply() == (1, 2)
    fresh = service.transcribe_file(path, name="b.wav", source="b.wav", options=service.options())
    applied = service.qa.hits([before.record_id])[before.record_id]
    assert [h.to_dict() for h in applied] == [h.to_dict() for h in fresh.flags]
    summary = service.qa.summary()
    assert (summary["checked"], summary["flagged"]) == (2, 2)
    assert {r["rule"]: (r["hits"], r["calls"]) for r in summary["rules"]} == {"greeting": (2, 2), "banned": (2, 2)}
    # a rule removed and the history re-checked: its hits go
    service.qa.delete_rule(service.history.rule_id("banned"))
    assert service.qa.apply() == (2, 2)
    assert [item.hit.rule for item in service.qa.report()] == ["greeting", "greeting"]


def test_report_formats(rules_service, shared_audio: Path) -> None:
    rec = rules_service.transcribe_file(
        shared_audio / "zh" / "asr_example.wav", name="=cmd.wav", source="=cmd.wav", options=rules_service.options()
    )
    items = rules_service.qa.report()
    data = json.loads(render_report(items, "json"))
    assert [(d["id"], d["name"], d["rule"], d["kind"]) for d in data] == [
        (rec.record_id, "=cmd.wav", "greeting", "missing"),
        (rec.record_id, "=cmd.wav", "banned", "forbidden"),
    ]
    assert {"phrase", "start", "end", "text"} <= data[1].keys() and "语音识别" in data[1]["text"]
    rows = list(csv.DictReader(io.StringIO(render_report(items, "csv").decode("utf-8-sig"))))
    assert rows[1]["rule"] == "banned" and rows[1]["name"] == "'=cmd.wav"  # a formula is written as text
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(render_report(items, "xlsx"))).active
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0][:6] == ["id", "name", "created_at", "rule", "kind", "phrase"] and cells[2][3] == "banned"


def test_deleting_a_record_deletes_its_hits(rules_service) -> None:
    t = Transcript(text="你自己查。", raw_text="你自己查", segments=[Segment(0, 1, "你自己查。")], duration=1)
    outcome = rules_service._save(t, source="x.wav", digest="h", audio_path=None)
    assert rules_service.qa.hits([outcome.record_id])
    rules_service.delete([outcome.record_id])
    assert rules_service.qa.report() == [] and rules_service.qa.summary()["checked"] == 0


# --------------------------------------------------------------------------- the schema


def test_migration_from_the_version_before_keeps_records(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with HistoryStore(db) as store:
        rid = store.add(Transcript(text="你好。", raw_text="你好", segments=[Segment(0, 1, "你好。")]),
                        source="old.wav", audio_hash="h")  # fmt: skip
    with closing(sqlite3.connect(db)) as conn:  # the file as version 5 (before quality checks) left it
        for table in ("qa_rules", "qa_hits", "qa_checked", "qa_settings"):
            conn.execute(f"DROP TABLE {table}")
        conn.executescript("DROP INDEX records_name; ALTER TABLE records DROP COLUMN name; PRAGMA user_version = 5;")
        conn.commit()
    with HistoryStore(db) as store:
        assert store._conn().execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store.get(rid).text == "你好。" and store.rules() == []
        store.import_rules(parse_rules(json.dumps(RULES)))
        checker = __import__("funasr_webui.qa", fromlist=["Checker"]).Checker(store.rules())
        assert store.apply_rules(checker) == (1, 0)  # 你好 said within 15 s; nothing forbidden
        assert store._conn().execute("PRAGMA foreign_key_check").fetchall() == []


# --------------------------------------------------------------------------- the API


def test_api_rules_crud_flags_and_report(live_server, shared_audio: Path) -> None:
    base = live_server.url + "/api/v1"
    r = requests.post(base + "/rules", json=RULES[1], timeout=10)
    assert r.status_code == 201, r.text
    rule_id = r.json()["id"]
    assert requests.post(base + "/rules", json=RULES[1], timeout=10).json()["error"]["code"] == "rule_exists"
    bad = requests.post(base + "/rules", json={"name": "x", "kind": "maybe", "phrases": ["a"]}, timeout=10)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_rule"
    assert "未知类型" in bad.json()["error"]["message_zh"]
    imported = requests.post(base + "/rules/import", json=[RULES[0]], timeout=10).json()
    assert (imported["added"], imported["updated"]) == (1, 0) and len(imported["rules"]) == 2
    changed = {**RULES[1], "phrases": ["语音识别", "我不知道"]}
    assert requests.put(f"{base}/rules/{rule_id}", json=changed, timeout=10).json()["phrases"] == changed["phrases"]
    assert requests.get(f"{base}/rules/{rule_id}", timeout=10).json()["name"] == "banned"
    assert requests.get(f"{base}/rules/9999", timeout=10).status_code == 404

    with (shared_audio / "zh" / "asr_example.wav").open("rb") as f:
        answer = requests.post(base + "/transcriptions", files={"file": ("call.wav", f)}, timeout=120).json()
    assert [(x["rule"], x["kind"]) for x in answer["flags"]] == [("banned", "forbidden"), ("greeting", "missing")]
    record = requests.get(f"{base}/history/{answer['id']}", timeout=10).json()
    assert record["flags"] == answer["flags"]
    listed = requests.get(base + "/history", params={"rule": "banned"}, timeout=10).json()
    assert [i["id"] for i in listed["items"]] == [answer["id"]] and listed["items"][0]["flags"]

    report = requests.get(base + "/qa/report", timeout=10).json()
    # an API upload's record has the source "api" and the upload's file name as its name
    assert {(x["id"], x["name"], x["rule"]) for x in report} == {(answer["id"], "call.wav", "banned"),
                                                                 (answer["id"], "call.wav", "greeting")}  # fmt: skip
    assert (record["source"], record["name"]) == ("api", "call.wav")
    csv_answer = requests.get(base + "/qa/report", params={"format": "csv", "rule": "banned"}, timeout=10)
    assert csv_answer.headers["content-type"].startswith("text/csv") and "语音识别" in csv_answer.text
    assert requests.get(base + "/qa/summary", timeout=10).json()["flagged"] == 1
    assert requests.delete(f"{base}/rules/{rule_id}", timeout=10).json() == {"deleted": rule_id}
    assert requests.post(base + "/qa/apply", timeout=10).json() == {"checked": 1, "hits": 1}


# --------------------------------------------------------------------------- the commands


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "funasr_webui", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=120, input=stdin)  # fmt: skip


def test_qa_commands(history_db: Path | str, tmp_path: Path) -> None:
    db = str(history_db)
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(RULES, ensure_ascii=False), encoding="utf-8")
    assert "3 added" in cli("qa", "--db", db, "import", str(rules)).stdout
    bad = cli("qa", "--db", db, "import", "-", stdin='[{"name": "x", "kind": "forbidden", "phrases": []}]')
    assert bad.returncode == 2 and "phrases is empty" in bad.stderr and "Traceback" not in bad.stderr
    listing = cli("qa", "--db", db, "list").stdout
    assert "greeting  required within [0.0, 15.0] s: 您好 / 你好" in listing and "hotwords from rules: on" in listing
    assert parse_rules(cli("qa", "--db", db, "export").stdout) == parse_rules(rules.read_text(encoding="utf-8"))
    with open_store(db) as store:  # a call saved before the rules: apply checks it
        store.add(Transcript(text="这个我不知道，你自己查。", raw_text="这个我不知道你自己查",
                             segments=[Segment(0, 3, "这个我不知道，你自己查。")], duration=3),
                  source="call-1.wav", audio_hash="h1")  # fmt: skip
    applied = cli("qa", "--db", db, "apply", "--from", "2000-01-01")
    assert applied.returncode == 0 and "checked 1 records with 3 rules: 2 hits" in applied.stdout
    report = json.loads(cli("qa", "--db", db, "report", "--format", "json").stdout)
    assert [(h["name"], h["rule"], h["kind"], h["phrase"]) for h in report] == [
        ("call-1.wav", "greeting", "missing", "您好 / 你好"),
        ("call-1.wav", "banned", "forbidden", "你自己查"),
    ]
    assert set(report[1]) >= {"id", "name", "rule", "kind", "phrase", "start", "end", "text"}
    listed = json.loads(cli("history", "--db", db, "list", "--format", "json", "--rule", "banned").stdout)
    assert [r["source"] for r in listed] == ["call-1.wav"] and len(listed[0]["flags"]) == 2
    assert cli("qa", "--db", db, "report", "--format", "xlsx").returncode == 2  # needs --out


def test_hotword_switch_passes_rule_phrases_without_changing_the_settings_key(rules_service, shared_audio) -> None:
    path = shared_audio / "tts" / "d03.wav"
    assert rules_service.qa.hotwords_on()  # on by default (measured: bench/RESULTS.md, issue 12)
    options = rules_service.options("张经理")
    first = rules_service.transcribe_file(path, name="d03.wav", source="d03.wav", options=options)
    assert first.transcript.hotwords[0] == "张经理" and {"您好", "语音识别"} <= set(first.transcript.hotwords)
    assert not any(p in first.transcript.text for p in ("您好", "你好", "语音识别", "你自己查"))  # none invented
    rules_service.qa.import_rules(json.dumps([{"name": "new", "kind": "forbidden", "phrases": ["文件"]}]))
    again = rules_service.previous(path, rules_service.options("张经理"))
    assert again is not None and again.id == first.record_id  # a rule change does not make the file new
    rules_service.qa.set_hotwords(False)
    off = rules_service.transcribe_file(path, name="d03.wav", source="d03.wav", options=rules_service.options())
    assert off.transcript.hotwords == [] and [h.phrase for h in off.flags if h.rule == "new"] == ["文件"]


def test_qa_tab_callbacks_save_refuse_and_summarize(service) -> None:
    from funasr_webui.ui.tabs.qa import QaCallbacks

    tab = QaCallbacks(service)
    table, selected, _ = tab.rule_save(None, "banned", "forbidden", "你自己查\n我不知道", "", "", True, "zh")
    assert list(table.columns)[:3] == ["编号", "名称", "类型"] and table.iloc[0, 3] == "你自己查 / 我不知道"
    with pytest.warns(UserWarning, match="rule 'late': phrases is empty"):  # the page's warning toast
        tab.rule_save(None, "late", "required", "", "-30, 0", "", True, "en")
    with pytest.warns(UserWarning, match="The time window must be two numbers"):
        tab.rule_save(None, "w", "required", "再见", "30", "", True, "en")
    assert [r.name for r in service.qa.rules()] == ["banned"]
    t = Transcript(text="我不知道。", raw_text="我不知道", segments=[Segment(0, 1, "我不知道。")], duration=1)
    rid = service._save(t, source="c.wav", digest="h", audio_path=None).record_id
    line, per_rule, flagged = tab.summary(None, None, "en")
    assert "**1** calls checked · **1** flagged (100.0%)" in line
    assert per_rule.values.tolist() == [["banned", 1, 1]] and flagged.iloc[0, 0] == rid
    call_line, text, hits = tab.call_values(rid, "zh")
    assert "c.wav" in call_line and hits.values.tolist()[0][:3] == ["banned", "禁用语", "我不知道"]
