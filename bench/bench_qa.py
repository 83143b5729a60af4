"""Quality checks (issue 12): rules checked per second over a 100,000-record history, the hotword switch's effect on
shared audio (does it make the engine "hear" rule phrases nobody said?), and ingest's throughput against the
batch tab's on the same files.

    .venv/bin/python -m bench.bench_qa [--records 100000] [--skip-audio]

Prints markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.common import SHARED, machine, now, table
from funasr_webui.history import HistoryStore
from funasr_webui.qa import Checker, normalize, parse_rules
from funasr_webui.transcript import Segment, Transcript

# A call centre's rule set: what the issue names, and what such teams check.
RULES = [
    {"name": "greeting", "kind": "required", "phrases": ["您好", "你好", "欢迎致电"], "within_s": [0, 15]},
    {"name": "closing", "kind": "required", "phrases": ["再见", "感谢您的来电", "祝您生活愉快"], "within_s": [-30, 0]},
    {"name": "banned", "kind": "forbidden", "phrases": ["我不知道", "你自己查", "不归我管", "没办法"]},
    {"name": "rude", "kind": "forbidden", "phrases": ["你听不懂吗", "烦不烦", "随便你"]},
    {"name": "promise", "kind": "forbidden", "phrases": ["保证退款", "百分之百", "一定赔偿"]},
]
FILLER = list("我们这边帮您查询一下订单的物流信息请您稍等系统显示已经发货预计明天送达还有什么可以帮您的吗好的没有问题")


def sentence(rng: random.Random) -> str:
    text = "".join(rng.choice(FILLER) for _ in range(rng.randint(12, 30)))
    if rng.random() < 0.05:
        pos = rng.randint(0, len(text))
        text = text[:pos] + rng.choice(RULES[2]["phrases"]) + text[pos:]
    return text + "。"


def fake_call(rng: random.Random) -> Transcript:
    segs, t = [], 0.0
    if rng.random() < 0.9:
        segs.append(Segment(0.5, 3.0, "您好，欢迎致电客服中心。", speaker="S1"))
        t = 3.0
    for i in range(rng.randint(8, 16)):
        d = rng.uniform(2, 7)
        segs.append(Segment(round(t, 2), round(t + d, 2), sentence(rng), speaker=f"S{i % 2 + 1}"))
        t += d + 0.4
    if rng.random() < 0.8:
        segs.append(Segment(round(t, 2), round(t + 2, 2), "感谢您的来电，再见。", speaker="S1"))
        t += 2
    text = "".join(s.text for s in segs)
    return Transcript(text=text, raw_text=text.replace("。", "").replace("，", ""), segments=segs, duration=t,
                      engine="paraformer", model="bench")  # fmt: skip


def bench_apply(n: int) -> list[list]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-qa-"))
    try:
        store = HistoryStore(tmp / "history.db")
        rng = random.Random(12)
        start = datetime(2024, 1, 1, tzinfo=UTC)
        t0 = time.perf_counter()
        for lo in range(0, n, 5000):
            batch = [(fake_call(rng), f"call-{i}.wav", f"h{i}", start + timedelta(minutes=i)) for i in
                     range(lo, min(n, lo + 5000))]  # fmt: skip
            store.add_many(batch)
        built = time.perf_counter() - t0
        rules = parse_rules(json.dumps(RULES, ensure_ascii=False))
        store.import_rules(rules)
        checker = Checker(store.rules())
        rows = []
        for label, kwargs in (
            ("all records", {}),
            ("one day (1,440)", {"date_from": "2024-01-02", "date_to": "2024-01-02"}),
        ):
            t0 = time.perf_counter()
            checked, hits = store.apply_rules(checker, **kwargs)
            s = time.perf_counter() - t0
            rows.append([f"apply, {label}", f"{checked:,}", f"{hits:,}", f"{s:.1f} s", f"{checked / s:,.0f}"])
        t0 = time.perf_counter()
        items = store.qa_report()
        s = time.perf_counter() - t0
        rows.append(["report, all hits (JSON rows)", f"{n:,}", f"{len(items):,}", f"{s:.1f} s", "—"])
        t0 = time.perf_counter()
        summary = store.qa_summary()
        rows.append(["summary (checked, flagged, per rule)", f"{summary['checked']:,}", "—",
                     f"{time.perf_counter() - t0:.2f} s", "—"])  # fmt: skip
        t0 = time.perf_counter()
        page = store.search(rule="banned", limit=20)
        rows.append(["History filter by rule, first page", f"{page.total:,}+", "—",
                     f"{(time.perf_counter() - t0) * 1000:.0f} ms", "—"])  # fmt: skip
        one = fake_call(random.Random(5))
        from funasr_webui.qa.matcher import CallText

        t0 = time.perf_counter()
        for _ in range(1000):
            checker.check(CallText(one.segments, one.raw_text, one.duration))
        rows.append(["check one new call (at save)", "1", "—", f"{(time.perf_counter() - t0):.2f} ms", "—"])
        store.close()
        print(f"(history of {n:,} records built in {built:.0f} s)")
        return rows
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def audio_files() -> list[Path]:
    return sorted((SHARED / "zh").glob("*.wav")) + sorted((SHARED / "tts").glob("d0*.wav"))


def hotword_clips() -> list[tuple[str, Path]]:
    """The shared Mandarin recordings, English speech, and two clips with no speech (where a prompt-fed decoder is
    most tempted to write its prompt): room noise and near silence."""
    out = [(f"{p.parent.name}/{p.name}", p) for p in audio_files()]
    out += [("en/jfk.flac", SHARED / "en" / "jfk.flac"), ("en/hotwords.mp3", SHARED / "en" / "hotwords.mp3")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-qa-noise-"))
    rng = np.random.default_rng(3)
    sf.write(tmp / "noise.wav", (0.02 * rng.standard_normal(16000 * 8)).astype(np.float32), 16000)
    sf.write(tmp / "silence.wav", (0.0005 * rng.standard_normal(16000 * 8)).astype(np.float32), 16000)
    return out + [("noise 8 s (synthetic)", tmp / "noise.wav"), ("near silence 8 s", tmp / "silence.wav")]


def bench_hotwords(service) -> tuple[list[list], int, int]:
    """Each clip transcribed with the rules' phrases as hotwords and without: a phrase in the text that its
    reference does not hold is invented. CER against the reference where there is one, and the time taken."""
    from funasr_webui.metrics import cer

    refs = {k: v.get("text", "") for k, v in json.loads((SHARED / "refs.json").read_text(encoding="utf-8")).items()}
    refs |= {f"tts/{d['file']}": d["text"] for d in
             json.loads((SHARED / "tts" / "refs.json").read_text(encoding="utf-8"))}  # fmt: skip
    phrases = [p for r in RULES for p in r["phrases"]]
    rows, invented = [], {False: 0, True: 0}
    for label, path in hotword_clips():
        ref = refs.get(label, "")
        cells = [label]
        for on in (False, True):
            options = service.options(phrases if on else None)
            t0 = time.perf_counter()
            text = service.pipeline.transcribe_file(path, options).text
            took = time.perf_counter() - t0
            made_up = [p for p in phrases if normalize(p) in normalize(text) and normalize(p) not in normalize(ref)]
            invented[on] += len(made_up)
            score = f"{cer(ref, text):.3f}" if ref else "—"
            cells.append(f"{' '.join(made_up) or 'none'} / {score} / {took:.1f}")
        rows.append(cells)
    return rows, invented[False], invented[True]


def bench_ingest_vs_batch(service_factory, files: list[Path], rounds: int) -> list[list]:
    """The same files through the batch tab's function and through ingest, each on a fresh history, alternating
    (ABAB) so that load from other jobs on the machine hits both alike."""
    from funasr_webui.ingest import Ingest, scan
    from funasr_webui.ui.tabs.batch import BatchCallbacks

    folder = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    for i, f in enumerate(files):
        shutil.copyfile(f, folder / f"{i:02d}-{f.name}")
    audio_s = sum(sf.info(f).duration for f in files)
    times: dict[str, list[float]] = {"batch": [], "ingest": []}
    cpu: dict[str, list[float]] = {"batch": [], "ingest": []}
    try:
        for _ in range(rounds):
            for kind in ("batch", "ingest"):
                service = service_factory()
                t0, c0 = time.perf_counter(), time.process_time()
                if kind == "batch":
                    paths = [str(p) for p in sorted(folder.iterdir())]
                    for _ in BatchCallbacks(service).batch_run(paths, "", True, "", "txt", "en"):
                        pass
                else:
                    run = Ingest(service, folder, service.options(), report=lambda line: None)
                    for c, digest in list(run.pending(scan(folder, False))):
                        run.transcribe(c, digest)
                    assert run.result.done == len(files)
                times[kind].append(time.perf_counter() - t0)
                cpu[kind].append(time.process_time() - c0)
                service.history.close()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    # what ingest does beyond the batch tab (list the folder, hash each file, look it up), timed on its own
    service = service_factory()
    book = []
    for _ in range(20):
        t0 = time.perf_counter()
        run = Ingest(service, folder, service.options(), report=lambda line: None)
        assert len(list(run.pending(scan(folder, False)))) == len(files)
        book.append(time.perf_counter() - t0)
    service.history.close()
    shutil.rmtree(folder, ignore_errors=True)
    med = statistics.median
    b, g = med(times["batch"]), med(times["ingest"])
    bc, gc = med(cpu["batch"]), med(cpu["ingest"])
    return [
        ["batch tab (BatchCallbacks.batch_run)", len(files), f"{audio_s:.0f} s", f"{b:.1f} s", f"{bc:.1f} s",
         f"{audio_s / b:.1f}×"],
        ["ingest (scan, hash, skip check, transcribe)", len(files), f"{audio_s:.0f} s", f"{g:.1f} s", f"{gc:.1f} s",
         f"{audio_s / g:.1f}×"],
        ["ingest overhead", "", "", f"{100 * (g - b) / b:+.1f}%", f"{100 * (gc - bc) / bc:+.1f}%", ""],
        ["ingest's own work (scan, hash, look-up), median of 20", len(files), "", f"{med(book) * 1000:.1f} ms",
         f"{100 * med(book) / b:.2f}% of batch", ""],
    ]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--parts", default="apply,hotwords,ingest", help="comma-separated: apply, hotwords, ingest")
    ap.add_argument("--rounds", type=int, default=3, help="ingest/batch rounds")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    print(f"## Quality checks (issue 12) — {now()}, {machine()}\n")
    if "apply" in parts:
        rows = bench_apply(args.records)
        print(table(["what", "records", "hits", "time", "records/s"], rows) + "\n")
    if not parts & {"hotwords", "ingest"}:
        return
    from funasr_webui.pipeline import Pipeline
    from funasr_webui.service import TranscriptionService
    from funasr_webui.settings import Settings

    settings = Settings(engine="whisper", offline=True, device="cpu", threads=2)
    pipeline = Pipeline.load(settings)
    tmp = Path(tempfile.mkdtemp(prefix="bench-qa-audio-"))
    counter = iter(range(1000))

    def service_factory() -> TranscriptionService:
        return TranscriptionService(settings, pipeline, HistoryStore(tmp / f"h{next(counter)}.db"))

    if "hotwords" in parts:
        hot_rows, off, on = bench_hotwords(service_factory())
        print(f"Rule phrases ({sum(len(r['phrases']) for r in RULES)}) as hotwords, embedded engine (Whisper base):\n")
        print(table(["file", "hotwords off: invented / CER / s", "hotwords on: invented / CER / s"], hot_rows))
        print(f"\ninvented phrases: {off} without hotwords, {on} with\n")
    files = [f for f in audio_files() if sf.info(f).duration < 20]
    if "ingest" in parts:
        print(f"Ingest against the batch tab, median of {args.rounds} rounds (ABAB):\n")
        print(table(["path", "files", "audio", "wall time", "CPU time", "× real time"],
                    bench_ingest_vs_batch(service_factory, files, args.rounds)))  # fmt: skip
    shutil.rmtree(tmp, ignore_errors=True)
    _ = np


if __name__ == "__main__":
    main()
