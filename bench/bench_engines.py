"""Several engines in one process (issue 13): load time, per-request switching, batching, fp16.

    python bench/bench_engines.py                      # tiny random-weight models (what this machine can run)
    python bench/bench_engines.py --models-dir models --engines fun-asr-nano,paraformer,sensevoice --device cuda
    python bench/bench_engines.py --models-dir models --engines fun-asr-nano,sensevoice --device cuda --fp16

With the tiny models (built into bench/out/engine_models) the figures are this app's own cost around each
engine (our FSMN-VAD, cutting, batching, AutoModel calls, ITN), not the speed of the real models. With real
models on a GPU, run it with and without --fp16 and compare the texts ("same text" column) before
recommending fp16: the guides warn it garbles some audio. Prints markdown tables; not a test.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import OUT, long_wav, machine, now, peak_rss_mb, rss_mb, table  # noqa: E402


def tiny_models_dir() -> Path:
    """The tiny models laid out as `download --model all` leaves models/ (built once)."""
    import shutil
    import tempfile

    from funasr_webui import models
    from tests.tiny_funasr_models import build_all, build_sensevoice, tiny_fun_asr_nano

    d = OUT / "engine_models"
    if (d / ".built").is_file():
        return d
    with tempfile.TemporaryDirectory() as tmp:
        build_all(tmp)
        for hub, tiny in [(models.PARAFORMER, "tiny_seaco_paraformer"), (models.VAD, "tiny_fsmn_vad")]:
            shutil.copytree(Path(tmp) / tiny, hub.path(d), dirs_exist_ok=True)
        shutil.copytree(Path(tmp) / "tiny_ct_punc", models.PUNC.path(d), dirs_exist_ok=True)
    build_sensevoice(str(models.SENSEVOICE.path(d)))
    tiny_fun_asr_nano(str(models.NANO.path(d)))
    (d / ".built").write_text("tiny random weights\n")
    return d


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models-dir", type=Path, help="default: tiny random-weight models")
    parser.add_argument("--engines", default="sensevoice,fun-asr-nano,paraformer")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fp16", action="store_true")
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the test recording")
    args = parser.parse_args()

    from funasr_webui.audio import decode_audio
    from funasr_webui.engine import TranscribeOptions
    from funasr_webui.pipeline import Pipeline
    from funasr_webui.settings import Settings

    models_dir = args.models_dir or tiny_models_dir()
    names = args.engines.split(",")
    audio = decode_audio(long_wav(args.seconds))
    print(f"# engines side by side, {now()}, {machine()}, models {'tiny' if not args.models_dir else models_dir}")

    rss0 = rss_mb()
    started = time.perf_counter()
    settings = Settings(
        models_dir=models_dir, engines=args.engines, offline=True, device=args.device, fp16=args.fp16, threads=2
    )
    pipeline = Pipeline.load(settings)
    load_s = time.perf_counter() - started
    print(f"\nloaded {', '.join(names)} in {load_s:.1f} s; RSS +{rss_mb() - rss0:.0f} MB\n")

    rows, texts = [], {}
    for name in names:
        engine = pipeline.engines[name]
        for batch in (1, 8):
            if hasattr(engine, "batch_size"):
                engine.batch_size = batch
            elif batch != 8:
                continue  # Paraformer batches by seconds of speech (batch_size_s), left as configured
            t0 = time.perf_counter()
            t = pipeline.transcribe(audio, TranscribeOptions(engine=name))
            elapsed = time.perf_counter() - t0
            texts.setdefault(name, t.text)
            rows.append([name, batch, len(t.segments), f"{elapsed:.2f}", f"{elapsed / t.duration:.4f}"])
    print(table(["engine", "batch", "segments", f"time for {args.seconds:.0f} s (s)", "RTF"], rows))

    # switching per request: alternate engines; each request costs what it costs alone (nothing reloads)
    switch = []
    clip = audio[: 16000 * 10]
    for name in names * 3:
        t0 = time.perf_counter()
        pipeline.transcribe(clip, TranscribeOptions(engine=name))
        switch.append((name, time.perf_counter() - t0))
    per = {n: sorted(s for m, s in switch if m == n) for n in names}
    print()
    print(
        table(
            ["engine", "10 s clip, alternating requests: min / max (s)"],
            [[n, f"{v[0]:.3f} / {v[-1]:.3f}"] for n, v in per.items()],
        )
    )
    print(f"\npeak RSS {peak_rss_mb():.0f} MB; fp16 {'on' if args.fp16 else 'off'}")
    if args.device == "cuda":
        import torch

        print(f"GPU memory reserved {torch.cuda.memory_reserved() / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
