"""OpenAI `stream=true`: how soon the first words come, against the same file answered whole.

    python bench/bench_openai_stream.py [--file tts/dev_long.wav] [--repeat 3]

The real app (embedded engine) on 127.0.0.1; the official openai client uploads the file: once with
`stream=True` (time to the first `transcript.text.delta` and to `transcript.text.done`, counted from the start of
the request) and once plain (`json`, time to the answer). Streamed, the embedded engine decodes its windows one
at a time in time order; plain, in batches.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import SHARED, machine, now, table  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--file", default="tts/dev_long.wav")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()

    import openai
    import soundfile as sf

    from funasr_webui.history import HistoryStore
    from funasr_webui.pipeline import Pipeline
    from funasr_webui.server import create_app
    from funasr_webui.service import TranscriptionService
    from funasr_webui.settings import Settings
    from tests.helpers import LiveServer

    path = SHARED / args.file
    duration = sf.info(path).duration
    db = Path(tempfile.mkdtemp()) / "history.db"
    settings = Settings(engine="whisper", offline=True, device="cpu", db=db)
    service = TranscriptionService(settings, Pipeline.load(settings), HistoryStore(db))
    first, done, whole, deltas = [], [], [], []
    with LiveServer(create_app(service)) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="sk", timeout=600)
        for _ in range(args.repeat):
            with path.open("rb") as f:
                started, n, first_at = time.perf_counter(), 0, None
                for event in client.audio.transcriptions.create(model="whisper-1", file=f, stream=True):
                    if event.type == "transcript.text.delta":
                        n += 1
                        first_at = first_at or time.perf_counter() - started
                done.append(time.perf_counter() - started)
                first.append(first_at or done[-1])
                deltas.append(n)
            with path.open("rb") as f:
                started = time.perf_counter()
                client.audio.transcriptions.create(model="whisper-1", file=f)
                whole.append(time.perf_counter() - started)
    print(f"# OpenAI stream=true, {args.file} ({duration:.1f} s), {now()}, {machine()}\n")
    med = statistics.median
    rows = [
        ["stream=true", f"{med(first):.2f}", f"{med(done):.2f}", f"{med(deltas):.0f}"],
        ["plain json", "—", f"{med(whole):.2f}", "—"],
    ]
    print(table(["request", "first delta (s)", "done / answer (s)", "deltas"], rows))
    print(f"\nmedians of {args.repeat}; every run: first {first}, done {done}, plain {whole}")


if __name__ == "__main__":
    main()
