"""Speaker diarization benchmarks: what it adds to a long file, its memory as files grow, and its accuracy on
conversations of real voices.

    python bench/bench_speakers.py [--minutes 10] [--memory 5,10,30] [--sections cost,memory,accuracy]

cost: a file of N minutes (the shared clips of several voices in turn, bench.common.long_wav) transcribed by the
embedded engine, then the diarization post-pass over its sentences: the extra time as a share of the
transcription time. memory: the post-pass alone over FSMN-VAD's sentences of longer files, each in a fresh
process (peak RSS over the loaded process). accuracy: DER (0.25 s collar) on tests/conversations.py.
Prints markdown tables (paste them into bench/RESULTS.md). Not a test: figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import SHARED, long_wav, machine, now, rss_mb, table  # noqa: E402


def pipeline():
    from funasr_webui.pipeline import Pipeline
    from funasr_webui.settings import Settings

    p = Pipeline.load(Settings(engine="whisper", offline=True, device="cpu"))
    p.speakers.get()  # loaded and warmed up, as at a server's start-up
    return p


def cost(minutes: float) -> str:
    import soundfile as sf

    from funasr_webui.engine import TranscribeOptions

    p = pipeline()
    audio = sf.read(long_wav(minutes * 60), dtype="float32")[0]
    started = time.perf_counter()
    result = p.engine.transcribe(audio, TranscribeOptions(language="zh"))
    asr = time.perf_counter() - started
    started = time.perf_counter()
    labelled = p.speakers.label(audio, result.segments, 0)
    extra = time.perf_counter() - started
    voices = len({s.speaker for s in labelled})
    rows = [[f"{minutes:g} min", len(result.segments), f"{asr:.1f} s", f"{extra:.2f} s", f"{extra / asr:.1%}", voices]]
    head = ["audio", "sentences", "transcription (whisper)", "diarization", "extra", "voices found"]
    return table(head, rows)


def memory_one(minutes: float) -> dict:
    """In this process: the post-pass over VAD sentences of an N-minute file; peak RSS above the loaded state."""
    import soundfile as sf

    from funasr_webui.transcript import Segment

    p = pipeline()
    audio = sf.read(long_wav(minutes * 60), dtype="float32")[0]
    segments = [Segment(a, b, "x") for a, b in p.vad.segments(audio)]
    base, peak, done = rss_mb(), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.02)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    started = time.perf_counter()
    labelled = p.speakers.label(audio, segments, 0)
    seconds = time.perf_counter() - started
    done.set()
    watcher.join()
    return {
        "minutes": minutes,
        "sentences": len(segments),
        "seconds": seconds,
        "extra_mb": max(peak[0], rss_mb()) - base,
        "voices": len({s.speaker for s in labelled}),
    }


def memory(lengths: list[float]) -> str:
    rows = []
    for m in lengths:
        out = subprocess.run(
            [sys.executable, __file__, "--memory-one", str(m)], capture_output=True, text=True, check=True
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        rows.append(
            [
                f"{m:g} min",
                r["sentences"],
                f"{r['seconds']:.1f} s",
                f"{r['seconds'] / (m * 60):.4f}",
                f"{r['extra_mb']:.0f} MB",
                r["voices"],
            ]
        )
    return table(["audio", "sentences", "diarization", "RTF", "peak RSS above loaded", "voices found"], rows)


def accuracy() -> str:
    from funasr_webui.transcript import Segment
    from tests.conversations import build, scores
    from tests.test_diarization import CONVERSATIONS

    p = pipeline()
    rows = []
    for name, turns in CONVERSATIONS.items():
        conv = build(SHARED, turns)
        segments = [Segment(a, b, "x") for a, b in p.vad.segments(conv.audio)]
        for speakers in (0, len(conv.voices)):
            s = scores(conv, p.speakers.label(conv.audio, segments, speakers))
            rows.append(
                [
                    name,
                    f"{conv.audio.size / 16000:.0f} s",
                    "auto" if not speakers else speakers,
                    s["speakers"],
                    f"{s['der']:.1%}",
                    f"{s['missed']:.1%}",
                    f"{s['false_alarm']:.1%}",
                    f"{s['confusion']:.1%}",
                    f"{s['correct']:.1%}",
                ]
            )
    head = ["conversation", "length", "asked", "found", "DER", "missed", "false alarm", "confusion", "right label"]
    return table(head, rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--memory", default="5,10,30")
    ap.add_argument("--sections", default="cost,memory,accuracy")
    ap.add_argument("--memory-one", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_one:
        print(json.dumps(memory_one(args.memory_one)))
        return
    print(f"{now()} · {machine()}\n")
    sections = args.sections.split(",")
    if "cost" in sections:
        print(f"### Extra time on a {args.minutes:g}-minute file\n\n{cost(args.minutes)}\n")
    if "memory" in sections:
        print(f"### Memory as files grow\n\n{memory([float(m) for m in args.memory.split(',')])}\n")
    if "accuracy" in sections:
        print(f"### Accuracy on conversations of real voices\n\n{accuracy()}\n")


if __name__ == "__main__":
    main()
