"""Small media for the reliability tests and the load benchmark: short clips cut from the shared speech, unique
silent clips (the VAD finds nothing, so the engine answers in milliseconds), and the bad-input matrix."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from tests import audio_fixtures as af

RATE = 16000
# Whisper base reliably hears "欢迎大家来" in this second of asr_example.wav, whatever the hotwords.
SPEECH_SPAN = (1.0, 2.0)
SPEECH_MARK = "欢迎"


def wav_bytes(samples: np.ndarray, rate: int = RATE) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def speech_clip(extra_ms: int = 0) -> np.ndarray:
    """One second of real Mandarin speech, followed by ``extra_ms`` of silence (which makes the bytes unique)."""
    __tracebackhide__ = True  # without the shared audio, the skip names the test
    speech = af.load_speech()
    start, end = (int(s * RATE) for s in SPEECH_SPAN)
    return np.concatenate([speech[start:end], np.zeros(extra_ms * RATE // 1000, dtype=np.float32)])


def long_speech(seconds: float) -> np.ndarray:
    """The whole shared recording again and again with 0.8 s pauses: many seconds of recognition work."""
    __tracebackhide__ = True  # without the shared audio, the skip names the test
    speech, pause = af.load_speech(), np.zeros(int(0.8 * RATE), dtype=np.float32)
    repeats = int(seconds * RATE / (speech.size + pause.size)) + 1
    return np.tile(np.concatenate([speech, pause]), repeats)[: int(seconds * RATE)]


def silent_samples(tag: int) -> int:
    """Sample count of the silent clip number ``tag``: 0.3 s + tag ms, so each clip's duration names it."""
    return int(0.3 * RATE) + tag * RATE // 1000


def silent_clip(tag: int) -> np.ndarray:
    """Near-silence (a faint hum far below what the VAD calls speech) of a length unique to ``tag``."""
    n = silent_samples(tag)
    t = np.arange(n, dtype=np.float32) / RATE
    return (1e-4 * np.sin(2 * np.pi * 50.0 * t)).astype(np.float32)


def duration_of(samples: int) -> float:
    """The duration a transcript reports for this many 16 kHz samples."""
    return round(samples / RATE, 3)


# --------------------------------------------------------------------------- the bad-input matrix


@dataclass(frozen=True)
class Case:
    """One bad (or odd) input: the file to send and what must come of it.

    ``error`` is the error code a user must get, or None when a correct transcript is the right answer;
    ``mark`` is then a piece of text the transcript must contain, or "" when the file holds no speech: the
    transcript must then be empty. (The messages each refusal must show are written out in test_bad_input.py.)"""

    id: str
    file_name: str  # the name as the user's file has it (may be non-UTF-8 bytes decoded with surrogateescape)
    error: str | None
    mark: str = ""
    hotwords: str | None = None  # sent with the file (the 10,000 hotwords case)
    upload_name: str | None = None  # the name sent by the page and the API, when not file_name
    status: int = 200  # the API's answer


MAX_UPLOAD_MB = 16.0  # the servers and CLI runs of the matrix use this limit; FOUR_HOURS stays below it
OVER_LIMIT_BYTES = 20 * 1024 * 1024
NON_UTF8_NAME = os.fsdecode(b"rec-\xff\xfe-\xe9t\xe9.wav")  # Latin-1 bytes, as old Windows tools write them
LONG_NAME = "会议记录" * 20 + "-" + "x" * 10 + ".wav"  # 255 bytes in UTF-8: the longest a Linux file system takes
API_LONG_NAME = "会议记录" * 300 + ".wav"  # an upload can carry a name longer than a file system allows
TEN_THOUSAND_HOTWORDS = "\n".join(f"w{i}" for i in range(10_000))

CASES = [
    Case("empty", "empty.wav", "empty", status=422),
    Case("one_ms", "one_ms.wav", None),
    Case("truncated_wav", "cut.wav", "truncated", status=422),
    Case("random_bytes_mp3", "noise.mp3", "not_media", status=415),
    Case("text_file", "notes.txt", "not_media", status=415),
    Case("zero_channels", "zero_channels.wav", "unreadable", status=422),
    Case("zero_rate", "zero_rate.wav", "unreadable", status=422),
    Case("8khz_mono", "phone_8k.wav", None, mark=SPEECH_MARK),
    Case("48khz_6ch", "surround_48k.wav", None, mark=SPEECH_MARK),
    Case("four_hours_silence", "night.mp3", "too_long", status=422),
    Case("over_size_limit", "huge.wav", "too_big", status=413),
    Case("video_no_audio", "silent_video.mp4", "no_audio", status=415),
    Case("non_utf8_name", NON_UTF8_NAME, None),
    Case("long_name", LONG_NAME, None, upload_name=API_LONG_NAME),
    Case("10000_hotwords", "hotwords.wav", "too_many_hotwords", hotwords=TEN_THOUSAND_HOTWORDS, status=422),
]
CASE_IDS = [c.id for c in CASES]
NAME_TAGS = {"non_utf8_name": 1, "long_name": 2, "10000_hotwords": 3}


def build_case(case: Case, folder: Path) -> Path:
    """Write the case's file into ``folder`` under its own name; returns the path."""
    path = folder / case.file_name
    __tracebackhide__ = True  # without the shared audio, the skip names the test
    speech = af.load_speech()[int(0.5 * RATE) : int(2.5 * RATE)]
    if case.id == "empty":
        path.write_bytes(b"")
    elif case.id == "one_ms":
        sf.write(path, np.full(RATE // 1000, 0.01, dtype=np.float32), RATE, subtype="PCM_16")
    elif case.id == "truncated_wav":
        whole = wav_bytes(speech)
        path.write_bytes(whole[: len(whole) // 3])  # the header still claims every sample
    elif case.id == "random_bytes_mp3":
        path.write_bytes(np.random.default_rng(7).integers(0, 256, 64 * 1024, dtype=np.uint8).tobytes())
    elif case.id == "text_file":
        path.write_text("Minutes of the meeting\n会议纪要：无\n" * 50, encoding="utf-8")
    elif case.id == "zero_channels":
        path.write_bytes(af.wav_header(0, RATE, 16, 3200) + bytes(3200))
    elif case.id == "zero_rate":
        path.write_bytes(af.wav_header(1, 0, 16, 3200) + bytes(3200))
    elif case.id == "8khz_mono":
        af.write_pcm(path, af.resample_with_av(speech, 8000), 8000, "PCM_16")
    elif case.id == "48khz_6ch":
        af.write_pcm(path, af.multichannel(af.resample_with_av(speech, 48000), 6), 48000, "PCM_16")
    elif case.id == "four_hours_silence":
        frame = af.silent_mp3_frame()  # 72 ms of 8 kHz silence in 72 bytes: 4 h is 14 MB
        path.write_bytes(frame * int(4 * 3600 / 0.072 + 1))
    elif case.id == "over_size_limit":
        af.sparse_silent_wav(path, (OVER_LIMIT_BYTES - 44) / (2 * RATE))
    elif case.id == "video_no_audio":
        af.video_only(path, seconds=1.0)
    elif case.id in NAME_TAGS:
        # Unique content per case: the page answers a repeated file from History instead of transcribing it.
        path.write_bytes(wav_bytes(silent_clip(NAME_TAGS[case.id])))  # (libsndfile cannot open a non-UTF-8 name)
    else:
        raise ValueError(f"unknown case {case.id}")
    return path
