"""The security probe's expensive requests against the real server (`python app.py --offline` on a free port):

    python bench/bench_security.py [--trickle 65] [--silence-min 179]

1. a file input handed /dev/zero through the page's API: how fast it is refused, and /health afterwards;
2. ``--trickle`` connections from another address (127.0.0.2) trickling a byte every 3 s into uploads: how many
   are let in, when they are cut off, and whether a user's transcription meanwhile succeeds (and how long it takes);
3. a FLAC of ``--silence-min`` minutes of silence (a few hundred KB) whose client hangs up after 2 s: how soon the
   recognizer is free again (the next 4 s file's latency), the server's RSS, and whether a record was left.
"""

from __future__ import annotations

import argparse
import io
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_load import Server  # noqa: E402
from bench.common import SHARED, machine, now, table  # noqa: E402

PART = b'--bnd\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n\r\n'


def head(port: int, name: str, file_bytes: int) -> bytes:
    length = len(PART % name.encode()) + file_bytes + len(b"\r\n--bnd--\r\n")
    return (
        f"POST /api/v1/transcriptions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary=bnd\r\nContent-Length: {length}\r\n\r\n"
    ).encode() + PART % name.encode()


def status_of(sock: socket.socket) -> int:
    try:
        data = sock.recv(64)
    except OSError:
        return 0
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0


def server_path(server: Server) -> list:
    started = time.perf_counter()
    data = [{"path": "/dev/zero", "meta": {"_type": "gradio.FileData"}}, "", True, "auto", "en"]
    r = requests.post(server.url + "/gradio_api/call/single_start", json={"data": data}, timeout=30)
    events = requests.get(f"{server.url}/gradio_api/call/single_start/{r.json()['event_id']}", timeout=30).text
    refused = time.perf_counter() - started
    started = time.perf_counter()
    health = requests.get(server.url + "/health", timeout=10).status_code
    return [
        "/dev/zero into single_start",
        "refused" if "not uploaded by a user" in events else "NOT refused",
        f"{refused * 1000:.0f} ms",
        f"/health {health} in {(time.perf_counter() - started) * 1000:.0f} ms",
    ]


def trickle(server: Server, count: int, wav: bytes) -> list:
    socks, started = [], time.monotonic()
    for i in range(count):
        # from 127.0.0.2: another host than the user's (127.0.0.1), as an attacker on the network would be
        s = socket.create_connection(("127.0.0.1", server.port), timeout=60, source_address=("127.0.0.2", 0))
        s.sendall(head(server.port, f"t{i}.wav", 1_000_000))
        socks.append(s)
    stop = threading.Event()

    def drip() -> None:
        while not stop.wait(3.0):
            for s in socks:
                try:
                    s.sendall(b"\0")
                except OSError:
                    pass

    threading.Thread(target=drip, daemon=True).start()
    time.sleep(1.0)
    t0 = time.perf_counter()
    r = requests.post(server.url + "/api/v1/transcriptions", files={"file": ("real.wav", wav)}, timeout=300)
    real = f"{r.status_code} in {time.perf_counter() - t0:.2f} s"
    statuses: dict[int, int] = {}
    cut_at: list[float] = []
    for s in socks:
        s.settimeout(max(1.0, 120 - (time.monotonic() - started)))
        code = status_of(s)
        statuses[code] = statuses.get(code, 0) + 1
        if code == 408:
            cut_at.append(time.monotonic() - started)
        s.close()
    stop.set()
    answers = ", ".join(f"{n}× {code or 'closed'}" for code, n in sorted(statuses.items()))
    cut = f"last cut at {max(cut_at):.0f} s" if cut_at else "none cut"
    return [f"{count} trickling uploads", answers, cut, f"real transcription meanwhile: {real}"]


def abandoned(server: Server, minutes: float, wav: bytes, folder: Path) -> list:
    flac = io.BytesIO()
    sf.write(flac, np.zeros(int(minutes * 60 * 16000), dtype=np.float32), 16000, format="FLAC")
    body = flac.getvalue()
    rss_before = server.rss_mb()
    s = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    s.sendall(head(server.port, "silence.flac", len(body)) + body + b"\r\n--bnd--\r\n")
    time.sleep(2.0)
    s.close()  # the client gives up
    peak = rss_before
    t0 = time.perf_counter()
    done = threading.Event()
    result: dict[str, str] = {}

    def nxt() -> None:
        r = requests.post(server.url + "/api/v1/transcriptions", files={"file": ("next.wav", wav)}, timeout=600)
        result["next"] = f"{r.status_code} after {time.perf_counter() - t0:.1f} s"
        done.set()

    threading.Thread(target=nxt, daemon=True).start()
    while not done.wait(0.2):
        peak = max(peak, server.rss_mb())
    with sqlite3.connect(server.db) as conn:
        left = conn.execute("SELECT COUNT(*) FROM records WHERE source = 'silence.flac'").fetchone()[0]
    return [
        f"{minutes:g} min silence FLAC ({len(body) / 1024:.0f} KB), client gone after 2 s",
        f"next 4 s file: {result['next']}",
        f"RSS {rss_before:.0f} → peak {peak:.0f} MB",
        f"records left by the abandoned job: {left}",
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trickle", type=int, default=65)
    ap.add_argument("--silence-min", type=float, default=179.0)
    args = ap.parse_args()
    wav = (SHARED / "zh" / "asr_example.wav").read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        try:
            requests.post(server.url + "/api/v1/transcriptions", files={"file": ("warm.wav", wav)}, timeout=300)
            rows = [server_path(server), trickle(server, args.trickle, wav)]
            rows.append(abandoned(server, args.silence_min, wav, Path(tmp)))
        finally:
            server.stop()
    print(f"# security probe figures, {now()}, {machine()}\n")
    print(table(["request", "answer", "time", "meanwhile"], rows))


if __name__ == "__main__":
    main()
