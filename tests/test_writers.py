"""Output formats: TXT, SRT, VTT, JSON."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from funasr_webui.transcript import Segment, Transcript, Word
from funasr_webui.writers import format_timestamp, render


@pytest.fixture
def transcript() -> Transcript:
    return Transcript(
        text="第一句。第二句。",
        raw_text="第一句第二句",
        segments=[Segment(0.0, 1.5, "第一句。"), Segment(3661.25, 3662.0, "第二句。")],
        language="zh",
        duration=3662.0,
        engine="whisper",
        elapsed=10.0,
    )


def transcript_from_json(d: dict) -> Transcript:
    """Read back what render(..., "json") wrote (only this test reads that file back, so this lives here)."""
    known = {f.name for f in fields(Transcript)}
    return Transcript(
        **{
            **{k: v for k, v in d.items() if k in known},
            "segments": [Segment(**{**s, "words": [Word(**w) for w in s.get("words", [])]}) for s in d["segments"]],
        }
    )


def test_timestamps() -> None:
    assert format_timestamp(3661.25, ",") == "01:01:01,250"
    assert format_timestamp(0.0016) == "00:00:00.002"
    assert format_timestamp(-1) == "00:00:00.000"


def test_txt(transcript: Transcript) -> None:
    assert render(transcript, "txt") == "第一句。第二句。\n"


def test_srt(transcript: Transcript) -> None:
    assert render(transcript, "srt") == (
        "1\n00:00:00,000 --> 00:00:01,500\n第一句。\n\n2\n01:01:01,250 --> 01:01:02,000\n第二句。\n"
    )


def test_vtt(transcript: Transcript) -> None:
    assert render(transcript, "vtt") == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\n第一句。\n\n01:01:01.250 --> 01:01:02.000\n第二句。\n"
    )


def test_json_roundtrip(transcript: Transcript) -> None:
    data = json.loads(render(transcript, "json"))
    assert data["rtf"] == pytest.approx(10.0 / 3662.0, abs=1e-4)
    assert data["segments"][1] == {"start": 3661.25, "end": 3662.0, "text": "第二句。"}
    assert transcript_from_json(data) == transcript


def test_unknown_format(transcript: Transcript) -> None:
    with pytest.raises(ValueError, match="unknown format"):
        render(transcript, "pdf")
    with pytest.raises(ValueError, match="binary format"):  # DOCX comes only as bytes (render_bytes)
        render(transcript, "docx")


def test_json_shows_only_the_optional_fields_that_are_set(transcript: Transcript) -> None:
    transcript.segments[0].speaker = "S1"
    transcript.segments[0].tags = ["HAPPY"]
    transcript.segments[0].words = [Word(0.0, 0.5, "第一")]
    data = json.loads(render(transcript, "json"))
    assert data["segments"][0]["speaker"] == "S1"
    assert data["segments"][0]["tags"] == ["HAPPY"]
    assert data["segments"][0]["words"] == [{"start": 0.0, "end": 0.5, "word": "第一"}]
    assert set(data["segments"][1]) == {"start", "end", "text"}
    assert transcript_from_json(data) == transcript
