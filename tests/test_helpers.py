"""The shared small helpers, and the CLI's one settings factory."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from funasr_webui import cli
from funasr_webui.helpers import (
    base_name,
    format_duration,
    format_size,
    parse_date_or_datetime,
    printable,
    safe_file_name,
    safe_stem,
    split_hotwords,
)


def test_durations_and_sizes_read_per_language() -> None:
    assert format_duration(12.34, "en") == "12.3 s" and format_duration(12.34, "zh") == "12.3 秒"
    assert format_duration(75, "zh") == "1:15" and format_duration(4 * 3600 + 5, "en") == "4:00:05"
    assert format_duration(None, "en") == "—"
    assert format_size(256 * 1024) == "256.0 KB" and format_size(3 * 2**20) == "3.0 MB"
    assert format_size(2**30) == "1.0 GB" and format_size(500) == "500 bytes"


def test_names() -> None:
    assert base_name("C:\\Users\\me\\call.mp3") == "call.mp3" and base_name("/srv/a/b.wav") == "b.wav"
    assert printable("caf\udce9.wav") == "caf\ufffd.wav" and printable("会议.wav") == "会议.wav"
    assert safe_stem("../会议 纪要 (1).m4a") == "会议_纪要_1" and safe_stem("...", "recording") == "recording"
    assert safe_file_name("a/b c?.wav") == "b_c_.wav" and safe_file_name("..") == "record"


def test_iso_dates() -> None:
    assert parse_date_or_datetime(" 2024-05-01 ") == date(2024, 5, 1)
    assert parse_date_or_datetime("2024-05-01T08:00:00Z") == datetime(2024, 5, 1, 8, tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        parse_date_or_datetime("2024-13-01")


def test_hotwords_split() -> None:
    assert split_hotwords("达摩院，预算, Q3") == ["达摩院", "预算", "Q3"]
    assert split_hotwords("DAMO Academy\nQ3 budget\nDAMO Academy") == ["DAMO Academy", "Q3 budget"]
    assert split_hotwords("a b  a") == ["a", "b"] and split_hotwords(None) == []


def test_every_command_builds_its_settings_through_one_factory(monkeypatch) -> None:
    root = Path(cli.__file__).parent
    for name in ("cli.py", "history_cli.py"):
        calls = re.findall(r"\bSettings\(", (root / name).read_text(encoding="utf-8"))
        assert len(calls) == (1 if name == "cli.py" else 0), name  # only settings_from_args builds one
    monkeypatch.setenv("FUNASR_WEBUI_MAX_HOTWORDS", "7")
    monkeypatch.setenv("FUNASR_WEBUI_PORT", "9000")
    args = cli.build_parser().parse_args(["serve", "--port", "8123"])
    assert args.max_live_sessions == cli.settings_from_args().max_live_sessions  # parser defaults: the factory's
    settings = cli.settings_from_args(args)
    assert (settings.port, settings.max_hotwords) == (8123, 7)  # the option over the variable; the variable kept
