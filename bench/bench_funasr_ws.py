"""FunASR WebSocket listener: how soon results come, sent as FunASR's Python client sends (60 ms PCM frames).

    python bench/bench_funasr_ws.py [--file tts/dev_long.wav] [--clients 1,2]

The real app (embedded engine) runs in this process with --funasr-ws-port; each client is a websockets
connection speaking FunASR's protocol:
- 2pass in real time: for each 2pass-offline final, its delay after the audio of its sentence's end was sent
  (sentences matched in order with the .json's), the first 2pass-online partial after speech began, and the
  acknowledgement's delay after the end message; with several clients at once, all of them are counted;
- offline, as fast as the client can send: the result's delay after the end message, and its RTF.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import SHARED, machine, now, table  # noqa: E402

FRAME_S = 0.06  # FunASR's client: 60 * chunk_size[1] / chunk_interval ms


async def stream(url: str, pcm: bytes, mode: str, real_time: bool) -> dict:
    from websockets.asyncio.client import connect

    frame = int(FRAME_S * 16000) * 2
    got: list[tuple[float, dict]] = []
    async with connect(url, subprotocols=["binary"], ping_interval=None) as ws:

        async def receive() -> None:
            async for message in ws:
                got.append((time.perf_counter(), json.loads(message)))
                if got[-1][1].get("is_end"):
                    return

        reader = asyncio.create_task(receive())
        await ws.send(json.dumps({"mode": mode, "wav_name": "bench", "audio_fs": 16000, "is_speaking": True}))
        started = time.perf_counter()
        for i in range(0, len(pcm), frame):
            await ws.send(pcm[i : i + frame])
            if real_time:  # paced by the clock, as the client's sleeps are
                await asyncio.sleep(max(0.0, started + (i + frame) / 32000 - time.perf_counter()))
        ended = time.perf_counter()
        await ws.send(json.dumps({"is_speaking": False, "is_end": True}))
        await reader
    return {"started": started, "ended": ended, "messages": got}


def run(url: str, pcm: bytes, mode: str, real_time: bool, clients: int) -> list[dict]:
    async def all_at_once() -> list[dict]:
        return await asyncio.gather(*(stream(url, pcm, mode, real_time) for _ in range(clients)))

    return asyncio.run(all_at_once())


def pct(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q):.2f}" if values else "—"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--file", default="tts/dev_long.wav")
    p.add_argument("--clients", default="1,2", help="simultaneous 2pass connections, comma-separated")
    args = p.parse_args()

    from funasr_webui.history import HistoryStore
    from funasr_webui.pipeline import Pipeline
    from funasr_webui.server import create_app
    from funasr_webui.service import TranscriptionService
    from funasr_webui.settings import Settings
    from tests.helpers import LiveServer, free_port

    path = SHARED / args.file
    audio, rate = sf.read(path, dtype="int16")
    assert rate == 16000 and audio.ndim == 1
    pcm = audio.tobytes()
    refs = json.loads(path.with_suffix(".json").read_text())["segments"] if path.with_suffix(".json").exists() else []
    db = Path(tempfile.mkdtemp()) / "history.db"
    settings = Settings(engine="whisper", offline=True, device="cpu", db=db, funasr_ws_port=free_port())
    settings.funasr_ws_max_connections = 8
    service = TranscriptionService(settings, Pipeline.load(settings), HistoryStore(db))
    url = f"ws://127.0.0.1:{settings.funasr_ws_port}"
    rows = []
    with LiveServer(create_app(service)):
        for n in [int(c) for c in args.clients.split(",")]:
            final_delays, first_partials, acks, matched = [], [], [], 0
            for r in run(url, pcm, "2pass", True, n):
                finals = [(t, m) for t, m in r["messages"] if m["mode"] == "2pass-offline" and m["text"]]
                partials = [t for t, m in r["messages"] if m["mode"] == "2pass-online"]
                if refs and len(finals) == len(refs):
                    matched += 1
                    final_delays += [t - (r["started"] + ref["end"]) for (t, _), ref in zip(finals, refs, strict=True)]
                if refs and partials:
                    first_partials.append(partials[0] - (r["started"] + refs[0]["start"]))
                acks.append(r["messages"][-1][0] - r["ended"])
            rows.append([f"2pass, {n} at once", f"{matched}/{n}", pct(final_delays, 50), pct(final_delays, 95),
                         pct(first_partials, 50), f"{statistics.median(acks):.2f}", "—"])  # fmt: skip
        [r] = run(url, pcm, "offline", False, 1)
        result_at = next(t for t, m in r["messages"] if m["mode"] == "offline")
        duration = len(audio) / 16000
        rows.append(["offline, 1", "—", "—", "—", "—", f"{result_at - r['ended']:.2f}",
                     f"{(result_at - r['ended']) / duration:.3f}"])  # fmt: skip
    print(f"# FunASR WebSocket listener, {args.file} ({len(audio) / 16000:.1f} s), {now()}, {machine()}\n")
    headers = ["mode, clients", "sentences matched", "final delay p50 (s)", "p95 (s)", "first partial (s)",
               "end → last result/ack (s)", "RTF"]  # fmt: skip
    print(table(headers, rows))


if __name__ == "__main__":
    main()
