"""Load and memory of the real server: `python app.py --offline` on a free port with a temporary history database.

    python bench/bench_load.py [--sequential 500] [--clients 8] [--per-client 25] [--page-clients 2]
                               [--clip speech|silence]

1. warm-up requests, then the server's resident memory (psutil, the server process only);
2. ``--sequential`` requests one after another, each a short real clip (1 s of zh/asr_example.wav, made unique
   by a few ms of trailing silence), RSS sampled along the way;
3. ``--clients`` concurrent clients × ``--per-client`` requests, ``--page-clients`` of them through the page's own
   queue (gradio_client, /single_start), the others through POST /api/v1/transcriptions, each client with its own
   hotwords; every answer's hotwords and audio length are checked against its own request;
then a table: requests, ok, 503s, errors, p50/p95 latency, RSS before/after/delta, and whether History holds
exactly one record per success (read from the database file itself).
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import requests
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import OUT, ROOT, SHARED, machine, now, table  # noqa: E402

RATE = 16000
RSS_LIMIT_MB = 100.0
START_TIMEOUT_S = 300
REQUEST_TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clip(kind: str, tag: int) -> tuple[bytes, float]:
    """A unique short clip (WAV bytes) and the duration the server must report for it."""
    if kind == "speech":
        speech, _ = sf.read(SHARED / "zh" / "asr_example.wav", dtype="float32")
        body = speech[RATE : 2 * RATE]
    else:
        body = np.zeros(int(0.3 * RATE), dtype=np.float32)
    samples = np.concatenate([body, np.zeros(tag * RATE // 1000, dtype=np.float32)])  # tag ms longer: unique
    buf = io.BytesIO()
    sf.write(buf, samples, RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue(), round(samples.size / RATE, 3)


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    busy: int = 0  # clean 503 queue_full
    errors: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)  # an answer that is not its own request's
    api_ids: list[int] = field(default_factory=list)
    page_names: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def total(self) -> int:
        return self.ok + self.busy + len(self.errors)


class Server:
    def __init__(self, folder: Path) -> None:
        self.db = folder / "history.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(folder / "server.log", "wb")  # noqa: SIM115 -- closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "app.py", "--offline", "--engine", "whisper", "--port", str(self.port), "--db", self.db],
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TMPDIR": str(folder)},
        )
        started = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited with {self.proc.returncode}; see {folder / 'server.log'}")
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() - started > START_TIMEOUT_S:
                self.stop()
                raise SystemExit(f"the server did not start in {START_TIMEOUT_S} s")
            time.sleep(0.5)
        self.start_s = time.monotonic() - started

    def rss_mb(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.log.close()


def api_request(
    session: requests.Session, server: Server, phase: Phase, name: str, kind: str, tag: int, hotwords: list[str]
) -> None:
    content, duration = clip(kind, tag)
    started = time.perf_counter()
    try:
        r = session.post(
            server.url + "/api/v1/transcriptions",
            files={"file": (name, content)},
            data={"hotwords": " ".join(hotwords)},
            timeout=REQUEST_TIMEOUT_S,
        )
    except requests.RequestException as e:
        with phase.lock:
            phase.errors.append(f"{name}: {type(e).__name__}")
        return
    elapsed = time.perf_counter() - started
    with phase.lock:
        if r.status_code == 503 and r.json().get("error", {}).get("code") == "queue_full":
            phase.busy += 1
        elif r.status_code != 200:
            phase.errors.append(f"{name}: HTTP {r.status_code} {r.text[:100]}")
        else:
            body = r.json()
            phase.ok += 1
            phase.latencies.append(elapsed)
            phase.api_ids.append(body["id"])
            if (body["name"], body["hotwords"], body["duration"]) != (name, hotwords, duration):
                phase.mismatches.append(name)


def page_request(
    client, server: Server, phase: Phase, folder: Path, name: str, kind: str, tag: int, hotwords: list[str]
) -> None:
    from gradio_client import handle_file

    content, duration = clip(kind, tag)
    path = folder / name
    path.write_bytes(content)
    started = time.perf_counter()
    try:
        out = client.predict(handle_file(str(path)), "\n".join(hotwords), True, "auto", "en", api_name="/single_start")
        saved = requests.get(out[7]["value"]["url"], timeout=60).json()  # the page's JSON download
    except Exception as e:  # noqa: BLE001 -- counted, the run goes on
        with phase.lock:
            phase.errors.append(f"{name}: {type(e).__name__}: {str(e)[:100]}")
        return
    elapsed = time.perf_counter() - started
    with phase.lock:
        if not out[0].startswith(("✔", "ℹ")):
            phase.errors.append(f"{name}: {out[0][:100]}")
            return
        phase.ok += 1
        phase.latencies.append(elapsed)
        phase.page_names.append(name)
        if (saved["hotwords"], saved["duration"]) != (hotwords, duration):
            phase.mismatches.append(name)


def history_check(server: Server, phases: list[Phase]) -> tuple[bool, str]:
    """Every success has exactly one record, and History holds nothing else."""
    with sqlite3.connect(server.db, timeout=30) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM records ORDER BY id")]
        sources = [r[0] for r in conn.execute("SELECT source FROM records WHERE source != 'api'")]
        failed = conn.execute("SELECT count(*) FROM records WHERE status != 'done'").fetchone()[0]
    api_ids = [i for p in phases for i in p.api_ids]
    page_names = [n for p in phases for n in p.page_names]
    expected = len(api_ids) + len(page_names)
    ok = (
        len(ids) == expected
        and sorted(i for i in ids if i in set(api_ids)) == sorted(api_ids)
        and sorted(sources) == sorted(page_names)
        and failed == 0
    )
    return ok, f"{len(ids)} records for {expected} successes, {failed} failed"


def pct(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q):.2f} s" if values else "—"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sequential", type=int, default=500)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--per-client", type=int, default=25)
    p.add_argument("--page-clients", type=int, default=2, help="of --clients, how many use the page's queue")
    p.add_argument("--clip", choices=["speech", "silence"], default="speech")
    p.add_argument("--warmup", type=int, default=5)
    args = p.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-load-"))
    print(f"# Load benchmark — {now()} — {machine()} — clip: {args.clip}\n", flush=True)
    server = Server(folder)
    print(f"server started in {server.start_s:.1f} s (pid {server.proc.pid}, {folder})", flush=True)
    rows = []
    try:
        warm = Phase("warm-up")
        with requests.Session() as session:
            for i in range(args.warmup):
                api_request(session, server, warm, f"warm{i}.wav", args.clip, 900 + i, ["warm"])
        if warm.errors:
            raise SystemExit(f"warm-up failed: {warm.errors}")
        rss_before = server.rss_mb()
        samples = [(0, rss_before)]

        seq = Phase("sequential")
        t0 = time.monotonic()
        with requests.Session() as session:
            for i in range(args.sequential):
                api_request(session, server, seq, f"seq{i:04d}.wav", args.clip, i % 900, ["sequential", f"n{i}"])
                if (i + 1) % 50 == 0:
                    samples.append((i + 1, server.rss_mb()))
                    print(f"  {i + 1}/{args.sequential} sequential, RSS {samples[-1][1]:.0f} MB", flush=True)
        seq_wall = time.monotonic() - t0
        rss_after_seq = server.rss_mb()

        conc = Phase("concurrent")
        page_folder = folder / "page"
        page_folder.mkdir()

        def run_client(c: int) -> None:
            hotwords = [f"alpha{c}", f"客户{c}"]
            if c < args.page_clients:
                from gradio_client import Client

                client = Client(server.url, verbose=False, download_files=False)
                try:
                    for i in range(args.per_client):
                        page_request(client, server, conc, page_folder, f"page-c{c}-{i:02d}.wav", args.clip,
                                     c * args.per_client + i, hotwords)  # fmt: skip
                finally:
                    client.close()
            else:
                with requests.Session() as session:
                    for i in range(args.per_client):
                        api_request(session, server, conc, f"api-c{c}-{i:02d}.wav", args.clip,
                                    c * args.per_client + i, hotwords)  # fmt: skip

        t0 = time.monotonic()
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(run_client, range(args.clients)))
        conc_wall = time.monotonic() - t0
        rss_after = server.rss_mb()

        history_ok, history_note = history_check(server, [warm, seq, conc])
        for phase, wall, rss_end in ((seq, seq_wall, rss_after_seq), (conc, conc_wall, rss_after)):
            rows.append(
                [
                    phase.name,
                    phase.total(),
                    phase.ok,
                    phase.busy,
                    len(phase.errors),
                    len(phase.mismatches),
                    pct(phase.latencies, 50),
                    pct(phase.latencies, 95),
                    f"{wall:.0f} s",
                    f"{rss_before:.0f} MB",
                    f"{rss_end:.0f} MB",
                    f"{rss_end - rss_before:+.0f} MB",
                ]
            )
    finally:
        server.stop()

    headers = ["phase", "requests", "ok", "503", "errors", "mixed-up", "p50", "p95", "wall", "RSS before",
               "RSS after", "RSS delta"]  # fmt: skip
    report = [
        f"# Load benchmark — {now()} — {machine()}",
        "",
        f"Server: `python app.py --offline --engine whisper` (started in {server.start_s:.0f} s); clip: "
        f"{'1 s of real speech' if args.clip == 'speech' else '0.3 s of silence'}, unique per request; "
        f"{args.clients} clients × {args.per_client} ({args.page_clients} through the page's queue).",
        "",
        table(headers, rows),
        "",
        f"History check: {'PASS' if history_ok else 'FAIL'} ({history_note}).",
        f"Memory over the {args.sequential} sequential requests: "
        f"{'PASS' if rss_after_seq - rss_before < RSS_LIMIT_MB else 'FAIL'} "
        f"(RSS {rss_before:.0f} -> {rss_after_seq:.0f} MB; limit +{RSS_LIMIT_MB:.0f} MB). "
        f"After the concurrent phase too: {rss_after:.0f} MB ({rss_after - rss_before:+.0f} MB).",
        "",
        "RSS during the sequential phase: " + ", ".join(f"{n}: {mb:.0f} MB" for n, mb in samples),
    ]
    errors = [e for phase in (seq, conc) for e in phase.errors[:5]]
    if errors:
        report += ["", "First errors: " + "; ".join(errors)]
    text = "\n".join(report) + "\n"
    print("\n" + text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "load.md").write_text(text, encoding="utf-8")
    print(f"median sequential latency {statistics.median(seq.latencies or [0]):.2f} s; report in {OUT / 'load.md'}")
    memory_ok = rss_after_seq - rss_before < RSS_LIMIT_MB
    clean = not (seq.errors or conc.errors or seq.mismatches or conc.mismatches)
    sys.exit(0 if history_ok and memory_ok and clean else 1)


if __name__ == "__main__":
    main()
