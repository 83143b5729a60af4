"""Overhead against FunASR's own OpenAI-compatible server (`funasr-server`, shipped with funasr), on the same
tiny random-weight Paraformer model and the same audio: request → response time through
`POST /v1/audio/transcriptions`, requests to the two servers in turn, medians.

    python bench/bench_peer.py [--requests 10]

The tiny models make the recognition itself nearly free, so the figures are each server's own cost per request
(upload, decoding, VAD/punctuation where it runs them, answer; ours also saves to history). funasr-server with
--model-path runs that model alone (no VAD, no punctuation); ours runs its whole pipeline. Not a test.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import SHARED, machine, now, table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def wait_ready(url: str, proc: subprocess.Popen, limit: float = 300) -> float:
    import requests

    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}) before answering {url}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return time.perf_counter() - started
        except requests.ConnectionError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {limit} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--requests", type=int, default=10)
    args = p.parse_args()

    import requests

    from funasr_webui import models
    from tests.helpers import free_port
    from tests.tiny_funasr_models import build_all

    files = [SHARED / "zh" / "asr_example.wav", SHARED / "tts" / "dev_long.wav"]
    with tempfile.TemporaryDirectory() as tmp:
        tiny, models_dir = Path(tmp) / "tiny", Path(tmp) / "models"
        build_all(str(tiny))
        for hub, name in [
            (models.PARAFORMER, "tiny_seaco_paraformer"),
            (models.VAD, "tiny_fsmn_vad"),
            (models.PUNC, "tiny_ct_punc"),
            (models.STREAMING, "tiny_paraformer_streaming"),
        ]:
            shutil.copytree(tiny / name, hub.path(models_dir))
        ours_port, peer_port = free_port(), free_port()
        servers = {
            "funasr-webui": (
                [sys.executable, "app.py", "--offline", "--engine", "paraformer", "--device", "cpu"]
                + ["--models-dir", str(models_dir), "--db", str(Path(tmp) / "h.db"), "--port", str(ours_port)],
                f"http://127.0.0.1:{ours_port}",
            ),
            "funasr-server": (
                [str(Path(sys.executable).parent / "funasr-server"), "--host", "127.0.0.1", "--device", "cpu"]
                + ["--port", str(peer_port), "--model-path", str(models.PARAFORMER.path(models_dir))],
                f"http://127.0.0.1:{peer_port}",
            ),
        }
        procs, ready = {}, {}
        try:
            for name, (command, url) in servers.items():
                procs[name] = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                ready[name] = wait_ready(url + "/health", procs[name])
            rows = []
            for path in files:
                times: dict[str, list[float]] = {name: [] for name in servers}
                for _ in range(args.requests):
                    for name, (_command, url) in servers.items():
                        started = time.perf_counter()
                        with open(path, "rb") as f:
                            r = requests.post(
                                url + "/v1/audio/transcriptions",
                                files={"file": (path.name, f)},
                                data={"model": "whisper-1"},
                                timeout=300,
                            )
                        r.raise_for_status()
                        times[name].append(time.perf_counter() - started)
                ours, peer = (statistics.median(times[n]) for n in servers)
                rows.append([path.name, f"{ours * 1000:.0f} ms", f"{peer * 1000:.0f} ms", f"{ours / peer:.2f}×"])
        finally:
            for proc in procs.values():
                proc.terminate()
                proc.wait(30)
    print(f"# Peer server overhead — {now()} — {machine()} — {args.requests} requests each, in turn\n")
    print(f"start → ready: funasr-webui {ready['funasr-webui']:.1f} s, funasr-server {ready['funasr-server']:.1f} s\n")
    print(table(["audio", "funasr-webui (VAD+ASR+punc+ITN+save)", "funasr-server (ASR only)", "ours / peer"], rows))


if __name__ == "__main__":
    main()
