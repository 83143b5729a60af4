"""How the embedded engine packs sentences into windows: accuracy and speed of each choice, against bare
faster-whisper on the same loaded weights, timed side by side (app, bare, app, bare...).

    python bench/bench_windows.py [--configs 20/1.0/10/3,0/0/10/3/10] [--repeat 1]

A config is pack/gap/min-window/pad[/dense min-window] in seconds (pack 0 = every sentence in its own window;
the dense min-window is the least window in a file of more sentences than a batch, default the engine's). Mean CER after
ITN over the 14 shared files with references (no hotwords), dev_long, a 150 s excerpt of dense speech (the shared
clips, 0.8 s pauses) and the 3-minute file of short sentences (0.3-0.5 s pauses). Prints a markdown table.
Not a test: figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import SHARED, dense_speech, machine, now, short_sentences_wav, table  # noqa: E402


class NO_STATS:  # noqa: N801 - the engine of a checkout that does not count
    windows = retried = alone = 0


def reference_files() -> list[tuple[Path, str]]:
    shared = json.loads((SHARED / "refs.json").read_text(encoding="utf-8"))
    files = [(SHARED / k, v["text"]) for k, v in shared.items() if "text" in v and "*" not in k]
    tts = json.loads((SHARED / "tts" / "refs.json").read_text(encoding="utf-8"))
    return files + [(SHARED / "tts" / r["file"], r["text"]) for r in tts]


def configure(config: str, dense_default: float | None) -> None:
    """Set the engine's window choice; `dense_default`: the engine's own dense min-window (None: it has none)."""
    from funasr_webui import whisper

    pack, gap, min_window, pad, *dense = (float(x) for x in config.split("/"))
    whisper.PACK_S = pack or 0.001  # nothing fits with another: one sentence per window
    whisper.GAP_S, whisper.MIN_WINDOW_S, whisper.PAD_S = gap, min_window, pad
    if dense_default is not None:
        whisper.DENSE_MIN_WINDOW_S = dense[0] if dense else dense_default


def bare(engine, audio) -> str:
    """faster-whisper's own documented batched call (its Silero VAD, language detection, 30 s windows)."""
    from faster_whisper import BatchedInferencePipeline

    segments, _ = BatchedInferencePipeline(engine.model).transcribe(
        audio, batch_size=engine.batch_size, beam_size=engine.beam_size
    )
    return "".join(s.text for s in segments)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--configs", default="0/0/10/3/10,7/0.6/10/3/10,7/0.6/10/3/7")
    p.add_argument("--repeat", type=int, default=1, help="timed runs of each (app and bare alternate)")
    p.add_argument("--code", help="measure the funasr_webui package of another checkout (e.g. main: the engine before)")
    args = p.parse_args()
    if args.code:
        sys.path.insert(0, str(Path(args.code).resolve()))

    from funasr_webui.engine import TranscribeOptions
    from funasr_webui.metrics import cer, strip_punctuation
    from funasr_webui.pipeline import Pipeline
    from funasr_webui.settings import Settings
    from funasr_webui.whisper import tidy_chinese

    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Pipeline.load(Settings(engine="whisper", offline=True, db=Path(tmp) / "h.db", device="cpu"))
    engine = pipeline.engine
    refs = [(pipeline.decode(path), text) for path, text in reference_files()]
    dev = json.loads((SHARED / "tts" / "dev_long.json").read_text(encoding="utf-8"))
    short_path, short_text = short_sentences_wav()
    timed_files = {
        "dev_long": (pipeline.decode(SHARED / "tts" / "dev_long.wav"), dev["text"]),
        "dense 150 s": dense_speech(150, (0.8, 0.8), short_only=False),
        "short sentences 184 s": (pipeline.decode(short_path), short_text),
    }
    print(f"# Window choice — {now()} — {machine()} — {len(refs)} reference files\n")

    def app(audio) -> tuple[str, object]:
        t = pipeline.transcribe(audio, TranscribeOptions())
        return t.text, getattr(engine, "last_stats", None) or NO_STATS

    rows = []
    bare_times = {name: [] for name in timed_files}
    bare_cer = {}
    from funasr_webui import whisper

    dense_default = getattr(whisper, "DENSE_MIN_WINDOW_S", None)  # another checkout's engine may have none
    for config in args.configs.split(","):
        configure(config, dense_default)
        scores, retried, alone, windows = [], 0, 0, 0
        errors, chars = 0.0, 0  # over every reference, weighted by its length
        for audio, text in refs:
            hyp, stats = app(audio)
            scores.append(cer(text, hyp))
            errors, chars = errors + scores[-1] * len(strip_punctuation(text)), chars + len(strip_punctuation(text))
            retried, alone, windows = retried + stats.retried, alone + stats.alone, windows + stats.windows
        row = [config, f"{statistics.mean(scores):.1%}"]
        print(config, " ".join(f"{x:.2f}" for x in scores), file=sys.stderr)
        for name, (audio, text) in timed_files.items():
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                hyp, stats = app(audio)
                times.append(time.perf_counter() - started)
                started = time.perf_counter()
                bare_hyp = bare(engine, audio)
                bare_times[name].append(time.perf_counter() - started)
            bare_cer[name] = cer(text, pipeline.itn(tidy_chinese(bare_hyp)))
            retried, alone, windows = retried + stats.retried, alone + stats.alone, windows + stats.windows
            row.append(f"{statistics.median(times):.2f} s / {cer(text, hyp):.1%}")
            errors, chars = errors + cer(text, hyp) * len(strip_punctuation(text)), chars + len(strip_punctuation(text))
        rows.append([*row, f"{errors / chars:.1%}", f"{windows} / {retried} / {alone}"])
        print(f"{config}: {row}", file=sys.stderr, flush=True)
    rows.append(
        ["bare faster-whisper", ""]
        + [f"{statistics.median(bare_times[n]):.2f} s / {bare_cer[n]:.1%}" for n in timed_files]
        + ["", ""]
    )
    headers = ["pack / gap / min window / pad (s)", "mean CER (14 files)"]
    headers += [f"{name}: time / CER" for name in timed_files]
    headers += ["CER of all (by length)", "windows / retried / decoded alone"]
    print(table(headers, rows))


if __name__ == "__main__":
    main()
