"""Pipeline benchmarks: overhead over the bare engine, throughput, long audio (RTF and memory), start-up.

    python bench/bench_pipeline.py [--engine whisper] [--sections overhead,process,throughput,long,startup]
                                   [--long 600,3600]
    python bench/bench_pipeline.py --device cuda --sections overhead,throughput,long,gpu     # on a GPU server

Prints markdown tables (paste them into bench/RESULTS.md). Not a test: figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    SHARED,
    long_wav,
    machine,
    now,
    peak_rss_mb,
    rss_mb,
    short_sentences_wav,
    table,
    timed,
)

ROOT = Path(__file__).resolve().parent.parent

DEVICE = {"device": "auto", "fp16": False, "batch_size": 8}  # set from the command line


def load_service(engine: str, db: Path, **overrides):
    from funasr_webui.service import build_service
    from funasr_webui.settings import Settings

    return build_service(Settings(engine=engine, offline=True, db=db, **{**DEVICE, **overrides}))


def gpu_used_mb() -> float:
    """Device-wide used memory (CTranslate2 allocates outside torch's allocator, so ask the driver)."""
    import torch

    free, total = torch.cuda.mem_get_info()
    return (total - free) / 2**20


def gpu(engine: str, jobs: int = 200) -> str:
    """CUDA only: fp16 vs fp32 and batch sizes; memory back to the post-load baseline; a long run of jobs."""
    path = SHARED / "tts" / "dev_long.wav"
    rows = []
    for fp16 in (False, True):
        for batch in (1, 4, 8, 16):
            with tempfile.TemporaryDirectory() as tmp:
                service = load_service(engine, Path(tmp) / "h.db", fp16=fp16, batch_size=batch, device="cuda")
                base = gpu_used_mb()
                wall, _ = timed(lambda s=service: app_call(s, path))
                after = gpu_used_mb()
                rows.append(
                    [
                        "fp16" if fp16 else "fp32",
                        batch,
                        f"{wall:.2f} s",
                        f"{wall / 36.33:.4f}",
                        f"{base:.0f} MB",
                        f"{after:.0f} MB",
                    ]
                )
                del service
    out = table(["precision", "batch", "dev_long wall", "RTF", "GPU used after load", "after 3 jobs"], rows)
    with tempfile.TemporaryDirectory() as tmp:
        service = load_service(engine, Path(tmp) / "h.db", device="cuda")
        app_call(service, path)
        base, peak, devices = gpu_used_mb(), 0.0, set()
        for _ in range(jobs):
            t = service.transcribe_file(path, name=path.name, source=path.name, options=service.options()).transcript
            devices.add(t.device)
            peak = max(peak, gpu_used_mb())
        out += "\n\n" + table(
            ["jobs", "GPU used after first job", "max during run", "after run", "devices seen"],
            [[jobs, f"{base:.0f} MB", f"{peak:.0f} MB", f"{gpu_used_mb():.0f} MB", ",".join(sorted(devices))]],
        )
    return out


def bare_engine_call(service, path: Path):
    """The engine alone, called the way its own documentation shows, on the same loaded weights (for Whisper:
    faster-whisper's batched pipeline with its own VAD and language detection, and the app's beam size)."""
    engine = service.pipeline.engine
    if engine.name == "whisper":
        from faster_whisper import BatchedInferencePipeline

        batched = BatchedInferencePipeline(engine.model)
        segments, _ = batched.transcribe(str(path), batch_size=engine.batch_size, beam_size=engine.beam_size)
        return "".join(s.text for s in segments)
    return engine.model.generate(input=str(path), batch_size_s=engine.batch_size_s)[0]["text"]


def app_call(service, path: Path):
    options = service.options()
    return service.transcribe_file(path, name=path.name, source=path.name, options=options).transcript.text


def overhead(service, files: list[Path], repeat: int = 3) -> str:
    """Bare, engine alone and app path timed in turn (bare, alone, app, bare, ...) so that other jobs on the
    machine weigh on all three alike; medians of `repeat`."""
    import statistics

    import soundfile as sf

    rows = []
    for path in files:
        audio = service.pipeline.decode(path)
        times: dict[str, list[float]] = {"bare": [], "alone": [], "app": []}
        calls = {
            "bare": lambda p=path: bare_engine_call(service, p),
            "alone": lambda a=audio: service.pipeline.engine.transcribe(a, service.options()),
            "app": lambda p=path: app_call(service, p),
        }
        for _ in range(repeat):
            for name, call in calls.items():
                started = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - started)
        bare, alone, app = (statistics.median(times[n]) for n in ("bare", "alone", "app"))
        seconds = sf.info(path).duration
        rows.append(
            [
                path.name,
                f"{seconds:.0f} s",
                f"{bare:.2f} s",
                f"{alone:.2f} s",
                f"{app:.2f} s",
                f"{app / bare:.2f}×",
                f"{app / alone:.2f}×",
                f"{app / seconds:.3f}",
            ]
        )
    return table(
        [
            "audio",
            "length",
            "bare engine (its documented call)",
            "app's engine alone (decoded audio in, text out)",
            "app path (decode→VAD→ASR→punc→ITN→save)",
            "app / bare",
            "app / engine alone",
            "app RTF",
        ],
        rows,
    )


BARE_SCRIPT = """
import sys
from faster_whisper import BatchedInferencePipeline, WhisperModel
model = WhisperModel(sys.argv[1], device="cpu", compute_type="int8", cpu_threads=int(sys.argv[3]))
segments, _ = BatchedInferencePipeline(model).transcribe(sys.argv[2], batch_size=8, beam_size=5)
print("".join(s.text for s in segments))
"""


def whole_process(files: list[Path], repeat: int = 3) -> str:
    """The CLI on a file against a script calling faster-whisper's batched pipeline on the same weights, each a
    fresh process (start-up, model load, decoding, transcription, output), run in turn; medians of `repeat`."""
    import os
    import statistics

    import soundfile as sf

    from funasr_webui import models
    from funasr_webui.settings import Settings

    threads = str(Settings().threads)
    weights = str(models.embedded_whisper_dir(Settings().models_dir))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            commands = {
                "app": [sys.executable, "-m", "funasr_webui", "transcribe", str(path), "--engine", "whisper"]
                + ["--offline", "--device", "cpu", "--db", str(Path(tmp) / "h.db")],
                "bare": [sys.executable, "-c", BARE_SCRIPT, weights, str(path), threads],
            }
            times: dict[str, list[float]] = {"app": [], "bare": []}
            for _ in range(repeat):
                for name, command in commands.items():
                    started = time.perf_counter()
                    subprocess.run(
                        command, check=True, capture_output=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
                    )
                    times[name].append(time.perf_counter() - started)
            app, bare = statistics.median(times["app"]), statistics.median(times["bare"])
            rows.append(
                [path.name, f"{sf.info(path).duration:.0f} s", f"{app:.2f} s", f"{bare:.2f} s", f"{app / bare:.2f}×"]
            )
    return table(
        ["audio", "length", "CLI (whole process)", "faster-whisper script (whole process)", "CLI / script"], rows
    )


def throughput(service, n: int = 50) -> str:
    import soundfile as sf

    pool = sorted((SHARED / "zh").glob("*.wav")) + sorted((SHARED / "tts").glob("d0*.wav"))
    pool += [SHARED / "en" / "jfk.flac", SHARED / "en" / "hotwords.mp3"]
    files = [pool[i % len(pool)] for i in range(n)]
    audio_s = sum(sf.info(f).duration for f in files)
    started = time.perf_counter()
    for f in files:
        app_call(service, f)
    wall = time.perf_counter() - started
    return table(
        ["files", "audio", "wall", "files/hour", "RTF"],
        [[n, f"{audio_s:.0f} s", f"{wall:.1f} s", f"{n / wall * 3600:.0f}", f"{wall / audio_s:.3f}"]],
    )


def long_audio_child(engine: str, seconds: float) -> None:
    """Runs in its own process so that its peak memory is its own."""
    with tempfile.TemporaryDirectory() as tmp:
        service = load_service(engine, Path(tmp) / "h.db")
        path = long_wav(seconds)
        after_load = rss_mb()
        started = time.perf_counter()
        t = service.transcribe_file(path, name=path.name, source=path.name, options=service.options()).transcript
        wall = time.perf_counter() - started
        print(
            json.dumps(
                {
                    "seconds": seconds,
                    "wall": wall,
                    "rtf": wall / t.duration,
                    "after_load_mb": after_load,
                    "peak_mb": peak_rss_mb(),
                    "audio_mb": t.duration * 16000 * 4 / 2**20,
                    "segments": len(t.segments),
                }
            )
        )


def long_audio(engine: str, lengths: list[float]) -> str:
    rows = []
    for seconds in lengths:
        proc = subprocess.run(
            [sys.executable, __file__, "--engine", engine, "--child-long", str(seconds)]
            + (["--models-dir", str(DEVICE["models_dir"])] if "models_dir" in DEVICE else []),
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            rows.append([f"{seconds / 60:.0f} min", "failed", proc.stderr.strip().splitlines()[-1][:80], "", "", ""])
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        growth = r["peak_mb"] - r["after_load_mb"]
        rows.append(
            [
                f"{seconds / 60:.0f} min",
                f"{r['wall']:.0f} s",
                f"{r['rtf']:.3f}",
                f"{r['after_load_mb']:.0f} MB",
                f"{r['peak_mb']:.0f} MB",
                f"{growth:.0f} MB (audio buffer {r['audio_mb']:.0f} MB)",
            ]
        )
    return table(["audio", "wall", "RTF", "RSS after load", "peak RSS", "peak growth during the job"], rows)


def startup_once(engine: str) -> tuple[float | None, float, bool]:
    """(start → page answers, start → first transcript, first request ok) of one `app.py` process."""
    import requests

    from tests.helpers import free_port

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "app.py", "--offline", "--engine", engine, "--port", str(port)]
            + ["--db", str(Path(tmp) / "h.db")],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            page = None
            while page is None and time.perf_counter() - started < 300:
                try:
                    if requests.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200:
                        page = time.perf_counter() - started
                except (requests.ConnectionError, requests.Timeout):  # not listening yet, or slow to answer
                    time.sleep(0.05)
            with open(SHARED / "zh" / "asr_example.wav", "rb") as f:
                r = requests.post(f"http://127.0.0.1:{port}/api/v1/transcriptions", files={"file": f}, timeout=300)
            return page, time.perf_counter() - started, r.status_code == 200
        finally:
            proc.terminate()
            proc.wait(30)


def startup(engine: str, repeat: int = 3) -> str:
    import statistics

    runs = [startup_once(engine) for _ in range(repeat)]
    pages = [p for p, _first, _ok in runs if p is not None]
    page = f"{statistics.median(pages):.1f} s" if pages else "never"
    first = statistics.median(first for _p, first, _ok in runs)
    return table(
        ["engine", f"start → page answers (median of {repeat})", "start → first transcript (API)", "requests ok"],
        [[engine, page + f" ({', '.join(f'{p:.1f}' for p in pages)})", f"{first:.1f} s", all(r[2] for r in runs)]],
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--engine", default="whisper")
    p.add_argument("--sections", default="overhead,process,throughput,long,startup")
    p.add_argument("--long", default="600,3600", help="long-audio lengths in seconds")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--fp16", action="store_true")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeat", type=int, default=3, help="timed runs of each (overhead, whole processes)")
    p.add_argument("--models-dir", help="e.g. tiny random-weight Paraformer models: memory figures, not speed")
    p.add_argument("--child-long", type=float, help=argparse.SUPPRESS)
    args = p.parse_args()
    DEVICE.update(device=args.device, fp16=args.fp16, batch_size=args.batch_size)
    if args.models_dir:
        DEVICE["models_dir"] = Path(args.models_dir)
    if args.child_long:
        long_audio_child(args.engine, args.child_long)
        return
    sections = args.sections.split(",")
    print(f"# Pipeline benchmark — {now()} — {machine()} — engine {args.engine}\n")
    if "overhead" in sections or "throughput" in sections:
        with tempfile.TemporaryDirectory() as tmp:
            service = load_service(args.engine, Path(tmp) / "h.db")
            if "overhead" in sections:
                files = [SHARED / "tts" / "dev_long.wav", long_wav(600), short_sentences_wav()[0]]
                print(
                    f"## Overhead: app path vs bare engine (in turn, median of {args.repeat})\n\n"
                    + overhead(service, files, args.repeat)
                    + "\n",
                    flush=True,
                )
            if "throughput" in sections:
                print("## Throughput: 50 files end to end\n\n" + throughput(service) + "\n", flush=True)
    if "process" in sections:
        files = [SHARED / "tts" / "d01.wav", SHARED / "tts" / "dev_long.wav", short_sentences_wav()[0], long_wav(600)]
        print(f"## Whole processes: CLI vs faster-whisper script (in turn, median of {args.repeat})\n", flush=True)
        print(whole_process(files, args.repeat) + "\n", flush=True)
    if "long" in sections:
        lengths = [float(x) for x in args.long.split(",")]
        print("## Long audio\n\n" + long_audio(args.engine, lengths) + "\n", flush=True)
    if "gpu" in sections:
        print("## CUDA\n\n" + gpu(args.engine) + "\n", flush=True)
    if "startup" in sections:
        print("## Start-up (models already installed)\n\n" + startup(args.engine, args.repeat) + "\n", flush=True)


if __name__ == "__main__":
    main()
