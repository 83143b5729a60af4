"""Running FunASR's own WebSocket client (tests/funasr_client, unmodified) and a bare WebSocket client the way
FunASR's browser page talks, against this server's --funasr-ws-port listener."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CLIENT = Path(__file__).parent / "funasr_client" / "funasr_wss_client.py"


@dataclass
class ClientRun:
    output: str  # what the client printed (its exit status is 0 whatever happened: only its output tells)
    events: list[dict]  # every message it received, as it logs them (events.jsonl)
    lines: list[str]  # its --output_dir text lines: wav_name <TAB> text [<TAB> timestamp]


def run_funasr_client(port: int, audio: Path, mode: str, work: Path, *args: str, timeout: float = 120) -> ClientRun:
    """FunASR's funasr_wss_client.py, as its README runs it, in its own folder (it writes ./asr_logs)."""
    work.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(CLIENT), "--host", "127.0.0.1", "--port", str(port), "--mode", mode,
           "--audio_in", str(audio), "--output_dir", str(work / "out"), "--result_timeout", "60", *args]  # fmt: skip
    done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=timeout)
    output = done.stdout + done.stderr
    events_file = next((work / "asr_logs").glob("meeting_*/events.jsonl"), None)
    events = [json.loads(line) for line in events_file.read_text().splitlines()] if events_file else []
    texts = sorted((work / "out").glob("text.*"))
    lines = [line for f in texts for line in f.read_text(encoding="utf-8").splitlines()]
    return ClientRun(output, events, lines)


def client_failed(run: ClientRun) -> str | None:
    """What FunASR's client reports when something broke (it never exits non-zero)."""
    for marker in ("Traceback", "Exception", "server failed", "TimeoutError", "did not acknowledge"):
        if marker in run.output:
            return run.output[-3000:]
    return None


def ws_exchange(url: str, config: dict, audio: bytes, end: dict, *, frame: int = 1920, **connect) -> list[dict]:
    """Send `config`, `audio` in frames of `frame` bytes (no pacing), `end`; collect every message until the
    acknowledgement (end has is_end) or the first is_final (the browser's file mode closes there)."""
    from websockets.asyncio.client import connect as ws_connect

    async def talk() -> list[dict]:
        received: list[dict] = []
        async with ws_connect(url, ping_interval=None, **connect) as ws:
            await ws.send(json.dumps(config, ensure_ascii=False))
            for i in range(0, len(audio), frame):
                await ws.send(audio[i : i + frame])
            await ws.send(json.dumps(end))
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=120))
                received.append(msg)
                if msg.get("is_end") or (not end.get("is_end") and msg.get("is_final")):
                    return received

    return asyncio.run(talk())
