"""Helpers shared by the benchmark scripts: test audio made from ../shared/audio, timers, memory readings."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "audio"
OUT = ROOT / "bench" / "out"


def speech_clips() -> list[np.ndarray]:
    """Every shared 16 kHz Mandarin recording (real and synthetic), as float32 arrays."""
    files = sorted((SHARED / "zh").glob("*.wav")) + sorted((SHARED / "tts").glob("d0*.wav"))
    return [sf.read(f, dtype="float32")[0] for f in files]


def long_wav(seconds: float) -> Path:
    """A recording of the given length: the shared speech clips in turn, each followed by a 0.8 s pause."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"long_{int(seconds)}s.wav"
    if path.exists():
        return path
    pause = np.zeros(int(0.8 * 16000), dtype=np.float32)
    clips, parts, total, i = speech_clips(), [], 0, 0
    while total < seconds * 16000:
        parts += [clips[i % len(clips)], pause]
        total += clips[i % len(clips)].size + pause.size
        i += 1
    sf.write(path, np.concatenate(parts)[: int(seconds * 16000)], 16000, subtype="PCM_16")
    return path


def trim_silence(clip: np.ndarray, frame: int = 160) -> np.ndarray:
    """The clip without its leading and trailing quiet (10 ms frames under 2% of its loudest frame)."""
    n = clip.size // frame
    rms = np.sqrt((clip[: n * frame].reshape(n, frame) ** 2).mean(axis=1))
    loud = np.flatnonzero(rms > 0.02 * rms.max())
    return clip[loud[0] * frame : (loud[-1] + 1) * frame] if loud.size else clip


def speech_refs() -> list[str]:
    """The reference text of each of speech_clips(), in the same order."""
    shared = json.loads((SHARED / "refs.json").read_text(encoding="utf-8"))
    tts = {r["file"]: r["text"] for r in json.loads((SHARED / "tts" / "refs.json").read_text(encoding="utf-8"))}
    files = sorted((SHARED / "zh").glob("*.wav")) + sorted((SHARED / "tts").glob("d0*.wav"))
    return [shared[f"zh/{f.name}"]["text"] if f.parent.name == "zh" else tts[f.name] for f in files]


def dense_speech(
    seconds: float, pauses: tuple[float, float], short_only: bool, seed: int = 15
) -> tuple[np.ndarray, str]:
    """Dense speech and its reference text: the shared clips, trimmed of their own silence, in turn, with pauses
    drawn from `pauses` seconds between them, whole clips until `seconds` is reached (seeded: the same audio
    every time). `short_only`: only the clips under 5 s (call-centre turns)."""
    rng = np.random.default_rng(seed)
    pairs = [(trim_silence(c), t) for c, t in zip(speech_clips(), speech_refs(), strict=True)]
    pairs = [(c, t) for c, t in pairs if c.size < 5 * 16000 or not short_only]
    parts, texts, total, i = [], [], 0, 0
    while total < seconds * 16000:
        clip, text = pairs[i % len(pairs)]
        pause = np.zeros(int(rng.uniform(*pauses) * 16000), dtype=np.float32)
        parts += [clip, pause]
        texts.append(text)
        total += clip.size + pause.size
        i += 1
    return np.concatenate(parts), "".join(texts)


def short_sentences_wav(seconds: float = 180.0) -> tuple[Path, str]:
    """About `seconds` of short sentences (the shared clips under 5 s) with 0.3-0.5 s pauses, and its text."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"short_sentences_{int(seconds)}s.wav"
    audio, text = dense_speech(seconds, (0.3, 0.5), short_only=True)
    if not path.exists():
        sf.write(path, audio, 16000, subtype="PCM_16")
    return path, text


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    """Median wall time of `repeat` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
