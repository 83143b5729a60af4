"""Live dictation latency: a shared recording fed in real time, in browser-sized chunks, through the same
function the page calls (LiveTranscriber.feed).

    python bench/bench_live.py [--chunk-ms 500] [--file tts/dev_long.wav]

- partial delay: when a partial is shown, how long after the end of the audio it covers (a word spoken just
  before that point waited this long);
- character delay: for each character of the reference (its end time spread evenly over its sentence's
  span in the .json), how long after it was spoken the page first showed text covering it — "end of a
  spoken word to its appearance", including the wait for the browser's chunk and for the next partial;
- final delay: when a sentence is finalized, how long after the speaker stopped (VAD end of the utterance).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import SHARED, machine, now, table  # noqa: E402


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--chunk-ms", type=int, default=500, help="Gradio's stream_every (the page uses 0.5 s)")
    p.add_argument("--file", default="tts/dev_long.wav")
    p.add_argument("--engine", default="whisper")
    args = p.parse_args()

    from funasr_webui.engine import TranscribeOptions
    from funasr_webui.live import LiveTranscriber
    from funasr_webui.metrics import cer
    from funasr_webui.pipeline import Pipeline
    from funasr_webui.settings import Settings

    live = LiveTranscriber(Pipeline.load(Settings(engine=args.engine, offline=True)))
    audio, _ = sf.read(SHARED / args.file, dtype="float32")
    pcm = (audio * 32767).astype(np.int16)
    step = args.chunk_ms * 16
    state = live.start(TranscribeOptions())
    partial_delays, final_delays, behind = [], [], []
    shown_covering: list[tuple[float, float]] = []  # (when shown, stream time covered) of every update
    last_partial, n_sentences = "", 0
    t0 = time.perf_counter()
    for i in range(0, pcm.size, step):
        arrival = (i + step) / 16000  # the chunk exists only once its last sample has been spoken
        wait = arrival - (time.perf_counter() - t0)
        if wait > 0:
            time.sleep(wait)
        behind.append(max(0.0, -wait))
        live.feed(state, pcm[i : i + step], 16000)
        shown = time.perf_counter() - t0
        if state.partial and state.partial != last_partial:
            partial_delays.append(shown - state.drafted_at)
            shown_covering.append((shown, state.drafted_at))
        last_partial = state.partial
        for s in state.sentences[n_sentences:]:
            final_delays.append(shown - s.end)
            shown_covering.append((shown, s.end))
        n_sentences = len(state.sentences)
    live.finish(state)
    for s in state.sentences[n_sentences:]:
        final_delays.append(time.perf_counter() - t0 - s.end)
    wall = time.perf_counter() - t0

    ref_file = (SHARED / args.file).with_suffix(".json")
    ref = json.loads(ref_file.read_text(encoding="utf-8")) if ref_file.exists() else None
    score = cer(ref["text"], state.text) if ref else None
    char_delays = []
    for seg in ref["segments"] if ref else []:
        n = len(seg["text"])
        for k in range(n):
            spoken = seg["start"] + (k + 1) / n * (seg["end"] - seg["start"])
            char_delays.append(next((at - spoken for at, covered in shown_covering if covered >= spoken), wall))
    print(f"# Live dictation — {now()} — {machine()} — engine {args.engine}, chunks of {args.chunk_ms} ms\n")
    rows = [
        [
            "partial delay (s)",
            len(partial_delays),
            f"{pct(partial_delays, 50):.2f}",
            f"{pct(partial_delays, 95):.2f}",
            f"{max(partial_delays, default=float('nan')):.2f}",
        ],
        [
            "character delay: spoken → first shown (s)",
            len(char_delays),
            f"{pct(char_delays, 50):.2f}",
            f"{pct(char_delays, 95):.2f}",
            f"{max(char_delays, default=float('nan')):.2f}",
        ],
        [
            "final delay after speech ends (s)",
            len(final_delays),
            f"{pct(final_delays, 50):.2f}",
            f"{pct(final_delays, 95):.2f}",
            f"{max(final_delays, default=float('nan')):.2f}",
        ],
        [
            "chunk fed late by (s)",
            len(behind),
            f"{pct(behind, 50):.2f}",
            f"{pct(behind, 95):.2f}",
            f"{max(behind):.2f}",
        ],
    ]
    print(table(["measure", "n", "p50", "p95", "max"], rows))
    print(
        f"\naudio {pcm.size / 16000:.1f} s, wall {wall:.1f} s, processing {state.busy_s:.1f} s "
        f"({state.busy_s / (pcm.size / 16000):.2f} of real time), sentences {len(state.sentences)}"
        + (f", CER {score:.1%}" if score is not None else "")
    )
    print(f"mean partial delay {statistics.mean(partial_delays):.2f} s" if partial_delays else "no partials")


if __name__ == "__main__":
    main()
