"""Benchmark the work queue (not a test; prints a markdown table): one folder of shared recordings queued with
`ingest --queue`, then drained by `worker --until-empty` processes on this machine, for each layout in --layouts
(WORKERSxTHREADS: 1x2 = one worker with 2 inference threads, 2x1 = two workers with one each).

    python bench/bench_queue.py                          # a throw-away PostgreSQL cluster, as the tests start
    python bench/bench_queue.py --db postgresql://postgres@127.0.0.1/bench --files 48 --layouts 1x2,2x1,2x2

Each layout queues the same files with its own hotword, so each is a new set of jobs and records in the same
database (nothing is wiped). Figures: files per minute and seconds of audio per wall-clock second, over the whole
run (workers' start-up, engine loading included: what a nightly job sees) and over the busy span (first job
taken to last job done, from the database's own times). The embedded Whisper engine (no download needed).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import OUT, ROOT, machine, now, speech_clips, table  # noqa: E402


def make_folder(n: int) -> Path:
    """``n`` recordings of distinct content: the shared Mandarin clips in turn, each with its own lead-in pause."""
    folder = OUT / f"queue_calls_{n}"
    if folder.is_dir() and len(list(folder.glob("*.wav"))) == n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    clips = speech_clips()
    for i in range(n):
        clip = clips[i % len(clips)]
        pad = np.zeros(int(0.05 * (i // len(clips)) * 16000) + 1, dtype=np.float32)
        sf.write(folder / f"call-{i:03d}.wav", np.concatenate([pad, clip]), 16000, subtype="PCM_16")
    return folder


def cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "funasr_webui", *argv]


def run_layout(url: str, folder: Path, workers: int, threads: int, tag: str) -> dict:
    import psycopg

    queued = subprocess.run(
        cli("ingest", str(folder), "--queue", "--db", url, "--engine", "whisper", "--settle", "0", "--hotwords", tag),
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            cli(
                "worker",
                "--db",
                url,
                "--offline",
                "--engine",
                "whisper",
                "--threads",
                str(threads),
                "--until-empty",
                "--poll",
                "0.2",
            ),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(workers)
    ]
    errors = [p.communicate()[1] for p in procs]
    wall = time.perf_counter() - started
    if any(p.returncode for p in procs):
        raise SystemExit(f"a worker failed: {errors}")
    with psycopg.connect(url) as conn:
        n, audio, busy = conn.execute(
            "SELECT count(*), sum(r.duration), extract(epoch FROM max(j.finished_at) - min(j.started_at))"
            " FROM queue_jobs j JOIN records r ON r.id = j.record_id WHERE j.spec LIKE %s AND j.state = 'done'",
            (f"%{tag}%",),
        ).fetchone()
    assert "queued" in queued.stdout
    return {"files": n, "audio": float(audio), "wall": wall, "busy": float(busy)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", help="a postgresql:// URL (default: a throw-away cluster, as the tests start)")
    ap.add_argument("--files", type=int, default=32)
    ap.add_argument("--layouts", default="1x2,2x1", help="WORKERSxTHREADS, comma-separated")
    args = ap.parse_args()
    server = None
    url = args.db
    if url is None:
        from tests.postgres_server import PostgresServer

        server = PostgresServer().start()
        url = server.new_database()
    try:
        folder = make_folder(args.files)
        rows = []
        for layout in args.layouts.split(","):
            workers, threads = (int(x) for x in layout.split("x"))
            r = run_layout(url, folder, workers, threads, f"bench{layout}t{int(time.time())}")
            rows.append([
                f"{workers} worker(s) × {threads} thread(s)", r["files"], f"{r['audio']:.0f}",
                f"{r['wall']:.1f}", f"{60 * r['files'] / r['wall']:.1f}", f"{r['audio'] / r['wall']:.2f}",
                f"{r['busy']:.1f}", f"{60 * r['files'] / r['busy']:.1f}", f"{r['audio'] / r['busy']:.2f}",
            ])  # fmt: skip
            print(f"{layout}: done", file=sys.stderr)
    finally:
        if server is not None:
            server.stop()
    print(f"{now()} · {machine()} · embedded Whisper-base, {args.files} files of the shared Mandarin clips\n")
    print(table(["layout", "files", "audio s", "wall s", "files/min", "audio s / wall s", "busy s",
                 "files/min (busy)", "audio s / s (busy)"], rows))  # fmt: skip


if __name__ == "__main__":
    main()
