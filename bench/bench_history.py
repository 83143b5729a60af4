"""Benchmark the transcription history store (not a test; prints a markdown table).

Fills one database under --dir with synthetic transcripts (mixed Chinese/English, 100-2000
characters, timestamps spread over three years), growing it through each size in --sizes, and at
each size prints the bulk insert rate, a single add() latency, the database size, and p50/p95 latency
of HistoryStore.search() (a full page: ids, capped count, 20 records) for queries drawn from the
stored texts plus some absent strings:

    python bench/bench_history.py --sizes 10000,100000,1000000
    python bench/bench_history.py --db postgresql://postgres@127.0.0.1/bench --sizes 10000,100000

With --db a PostgreSQL URL the same records go into that database (which should be empty; it grows through the
sizes in place) and the same searches are timed there; it is VACUUM ANALYZEd before each measurement, as
autovacuum would have done by then. Use --reuse to benchmark the searches of an existing database again without
rebuilding it.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import shutil
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from funasr_webui.history import HistoryStore, is_postgres_url, open_store  # noqa: E402
from funasr_webui.history.schema_pg import TEXT_INDEXES as INDEXES  # noqa: E402
from funasr_webui.transcript import Segment, Transcript  # noqa: E402

# Roughly the most frequent Chinese characters, most frequent first (Zipf weights follow the order).
HANZI = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么"
    "心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将"
    "外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走"
    "电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑"
    "性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至"
    "清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫"
    "连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程"
    "告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首"
    "单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坐集编宝谈府拉黑且随格尽讲布杀微怕母调局根曾"
    "准团段终乐切级克精哪官示冷域型模效据练训推理显卡算法语音识别转写热词标点实验测试部署服务接口延迟速度准确率"
)
ENGLISH = (
    "OpenAI GPU CUDA API Python model paraformer SenseVoice Whisper FunASR token batch latency server demo GitHub "
    "Docker Linux Windows benchmark dataset checkpoint inference training OK AI ASR VAD PyTorch ONNX iPhone Excel "
    "PPT email meeting project deadline feedback review KPI OKR team manager product design online offline "
    "the of and to in is it you that for on with as at this from or by but what we can all when up your how"
).split()
FUNCTION_WORDS = "的了是我不在有这个们他你就也和都说要会到那对上一很啊吧呢吗么"
RARE = "龘靐齉齾爩鱻麤龗灪籱虋鬰鸙"  # characters that never occur in the generated texts
ENGINES = ("paraformer", "sensevoice", "whisper")


class Corpus:
    """Synthetic speech transcripts with a Zipf word distribution like real Chinese: single-character
    function words on top, then 40k words of 1-4 characters over ~3500 characters, English mixed in."""

    def __init__(self, seed: int, stream: int = 0):
        rng = random.Random(seed)  # the vocabulary depends on the seed only, so every process shares it
        chars = list(dict.fromkeys(HANZI))  # most frequent first
        known = set(chars) | set(RARE)
        extra = [chr(c) for c in range(0x4E00, 0x9FA6) if chr(c) not in known]
        rng.shuffle(extra)
        chars += extra[: 3500 - len(chars)]
        char_cum = list(_cumulate([1 / (i + 2) for i in range(len(chars))]))
        words = list(dict.fromkeys(FUNCTION_WORDS))
        seen = set(words)
        while len(words) < 40000:
            n = rng.choices((1, 2, 3, 4), weights=(5, 65, 20, 10))[0]
            w = "".join(rng.choices(chars, cum_weights=char_cum, k=n))
            if w not in seen:
                seen.add(w)
                words.append(w)
        self.words = words
        self.cum = list(_cumulate([1 / (i + 3) for i in range(len(words))]))
        self.eng_cum = list(_cumulate([1 / (i + 1) for i in range(len(ENGLISH))]))
        self.rng = random.Random(seed * 1_000_003 + stream)  # same vocabulary, a different stream of texts

    def text(self) -> str:
        rng = self.rng
        target = rng.randint(100, 2000)
        out: list[str] = []
        size = 0
        while size < target:
            words = rng.choices(self.words, cum_weights=self.cum, k=rng.randint(4, 14))
            if rng.random() < 0.06:  # an English phrase in some sentences
                eng = " ".join(rng.choices(ENGLISH, cum_weights=self.eng_cum, k=rng.randint(1, 3)))
                words.insert(rng.randrange(len(words) + 1), f" {eng} ")
            clause = "".join(words).strip()
            clause += rng.choice("，，，，。。。？！")
            out.append(clause)
            size += len(clause)
        return "".join(out)[:target]

    def transcript(self, engine: str) -> Transcript:
        text = self.text()
        segs = []
        pos, t = 0, 0.0
        while pos < len(text):
            n = self.rng.randint(15, 40)
            piece = text[pos : pos + n]
            dur = len(piece) / 4.5
            segs.append(Segment(round(t, 3), round(t + dur, 3), piece))
            pos, t = pos + n, t + dur
        raw = "".join(c for c in text if c not in "，。？！")
        return Transcript(
            text=text, raw_text=raw, segments=segs, language="zh", duration=round(t, 2), engine=engine,
            model=f"{engine}-large", device="cuda:0", elapsed=round(t * 0.05, 3), hotwords=[], itn=True,
        )  # fmt: skip


def _cumulate(weights: list[float]):
    acc = 0.0
    for w in weights:
        acc += w
        yield acc


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def make_queries(rng: random.Random, sample: list[str], kind: str, n: int) -> list[tuple[str, bool]]:
    """(query, expected to match): random substrings of stored texts (90%) and absent strings (10%)."""
    out: list[tuple[str, bool]] = []
    while len(out) < n:
        k = {"long": rng.randint(3, 8), "two": 2, "one": 1}[kind]
        if rng.random() < 0.1:
            out.append(("".join(rng.choices(RARE, k=min(k, 6))), False))
            continue
        text = rng.choice(sample)
        i = rng.randrange(max(1, len(text) - k))
        q = text[i : i + k]
        if len(q) == k and all(c.isalnum() for c in q):  # one term, no punctuation or spaces
            out.append((q, True))
    return out


def time_searches(store: HistoryStore, queries: list[tuple[str, bool, dict]]) -> tuple[float, float, int]:
    """p50 and p95 in ms, and how many queries expected to match found nothing (must be 0 unfiltered)."""
    times, missed = [], 0
    for q, present, filters in queries:
        t0 = time.perf_counter()
        page = store.search(q, limit=20, **filters)
        times.append((time.perf_counter() - t0) * 1000)
        missed += present and not filters and not page.records
    return statistics.median(times), _pct(times, 95), missed


def produce(seed: int, start_count: int, end_count: int, batch: int, start: datetime, step: timedelta, queue) -> None:
    """Generator process: synthetic batches for records start_count+1 .. end_count (the second core)."""
    corpus = Corpus(seed, start_count)
    count = start_count
    while count < end_count:
        n = min(batch, end_count - count)
        items = []
        for j in range(count, count + n):
            t = corpus.transcript(ENGINES[j % len(ENGINES)])
            items.append((t, f"meeting_{j:07d}.wav", f"{j:064x}", start + step * j))
        queue.put(items)
        count += n


def build(
    store: HistoryStore,
    count: int,
    size: int,
    args,
    start: datetime,
    step: timedelta,
    sample: list[str],
    rng: random.Random,
) -> tuple[int, float, int]:
    """Grow the database to ``size`` records; returns (count, seconds inside add_many, records added)."""
    queue: mp.Queue = mp.Queue(maxsize=4)
    proc = mp.Process(target=produce, args=(args.seed, count, size, args.batch, start, step, queue), daemon=True)
    proc.start()
    insert_s, inserted, t_stage = 0.0, 0, time.perf_counter()
    while count < size:
        items = queue.get()
        t0 = time.perf_counter()
        store.add_many(items)
        insert_s += time.perf_counter() - t0
        for t, *_ in items:  # reservoir sampling: a uniform sample of stored texts for the queries
            count += 1
            if len(sample) < 2000:
                sample.append(t.text)
            elif rng.random() < 2000 / count:
                sample[rng.randrange(2000)] = t.text
        inserted += len(items)
        if count % 20000 < args.batch or count == size:
            print(f"  {count:>9,} records  {inserted / max(insert_s, 1e-9):6.0f} rec/s in add_many  "
                  f"{time.perf_counter() - t_stage:6.0f} s elapsed", flush=True)  # fmt: skip
    proc.join()
    return count, insert_s, inserted


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated record counts")
    ap.add_argument("--dir", default="/tmp/history-bench", help="where the databases are built")
    ap.add_argument("--queries", type=int, default=200, help="queries per kind")
    ap.add_argument("--batch", type=int, default=2000, help="records per insert transaction")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reuse", action="store_true", help="measure existing bench-<size>.db files again")
    ap.add_argument("--db", help="a postgresql:// URL of an empty database to build and measure instead of files")
    ap.add_argument("--defer-indexes", action="store_true",
                    help="PostgreSQL: drop the two GIN text indexes while records go in, build them once after (a bulk "
                    "import; row-by-row GIN upkeep runs at ~50 records/s on 2 cores)")  # fmt: skip
    args = ap.parse_args()

    sizes = sorted(int(s) for s in args.sizes.split(","))
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed + 1)
    span = timedelta(days=3 * 365)
    start = datetime(2023, 1, 1, tzinfo=timezone.utc)  # fixed, so --reuse sees the same timeline
    step = span / 1_000_000  # about 900 transcriptions a day, whatever the sizes
    sample: list[str] = []
    rows = []
    prev: Path | None = None
    postgres = is_postgres_url(args.db)
    for size in sizes:
        db = work / f"bench-{size}.db"
        if postgres:
            pass  # one database, grown through the sizes
        elif not (args.reuse and db.exists()):
            for p in work.glob(f"bench-{size}.db*"):
                p.unlink()
            if prev is not None:  # grow a copy of the previous size, keeping that one as it is
                shutil.copyfile(prev, db)
        prev = db
        store = open_store(args.db if postgres else db)
        count = store.stats()["count"]
        insert_s, inserted = 0.0, 0
        if count < size:
            deferred = postgres and args.defer_indexes
            if deferred:
                drop_text_indexes(args.db)
            count, insert_s, inserted = build(store, count, size, args, start, step, sample, rng)
            if deferred:
                build_text_indexes(args.db)
        if len(sample) < 2000:  # reused database: draw the query texts from it
            for rid in rng.sample(range(1, count + 1), min(2000, count)):
                rec = store.get(rid)
                if rec is not None and rec.text:
                    sample.append(rec.text)
        settle(store)  # benchmark only: fold the WAL into the file before measuring its size

        # Single add() calls, each its own transaction as in the web app; removed again afterwards.
        corpus = Corpus(args.seed, -1)
        add_ms, extra = [], []
        for _ in range(30):
            t = corpus.transcript("paraformer")
            t0 = time.perf_counter()
            extra.append(store.add(t, source="single.wav", audio_hash="0" * 64))
            add_ms.append((time.perf_counter() - t0) * 1000)
        store.delete(extra)
        settle(store)

        st = store.stats()
        n = args.queries
        long_q = [(q, p, {}) for q, p in make_queries(rng, sample, "long", n)]
        two_q = [(q, p, {}) for q, p in make_queries(rng, sample, "two", n)]
        one_q = [(q, p, {}) for q, p in make_queries(rng, sample, "one", n)]
        filt_q = []
        for q, p in make_queries(rng, sample, "long", n // 2) + make_queries(rng, sample, "two", n - n // 2):
            lo = start + step * rng.randrange(count)
            filt_q.append((q, p, {"engine": rng.choice(ENGINES), "date_from": lo, "date_to": lo + timedelta(days=30)}))
        time_searches(store, long_q[:20] + two_q[:20] + one_q[:20])  # warm up
        res = {}
        for kind, qs in (("long", long_q), ("two", two_q), ("one", one_q), ("filt", filt_q)):
            res[kind] = time_searches(store, qs)
        rate = inserted / insert_s if insert_s else float("nan")
        rows.append((count, rate, statistics.median(add_ms), st["db_bytes"] / 2**20, res))
        missed = sum(res[k][2] for k in res)
        print(f"size {count:,}: {4 * n} queries, {missed} present strings not found (must be 0)", flush=True)
        print_table(rows)
        store.close()
    return 0


def drop_text_indexes(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for name in INDEXES:
            conn.execute(f"DROP INDEX IF EXISTS {name}")


def build_text_indexes(url: str) -> None:
    """The GIN indexes the schema makes (schema_pg.TEXT_INDEXES), built once over every row."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '4GB'")
        for name, sql in INDEXES.items():
            t0 = time.perf_counter()
            conn.execute(sql)
            print(f"  {name} built in {time.perf_counter() - t0:.0f} s", flush=True)


def settle(store: HistoryStore) -> None:
    """Before measuring: SQLite folds its WAL into the file; PostgreSQL gets its statistics (VACUUM ANALYZE)."""
    if store.postgres:
        store.vacuum()
    else:
        store._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")


def print_table(rows: list) -> None:
    print()
    print("| records | bulk insert (rec/s) | add() p50 (ms) | DB size (MB) | 3+ chars p50 / p95 (ms) "
          "| 2 chars p50 / p95 (ms) | 1 char p50 / p95 (ms) | filtered p50 / p95 (ms) |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for count, rate, add_ms, mb, res in rows:
        cells = " | ".join(f"{res[k][0]:.1f} / {res[k][1]:.1f}" for k in ("long", "two", "one", "filt"))
        print(f"| {count:,} | {rate:,.0f} | {add_ms:.1f} | {mb:,.0f} | {cells} |")
    print(flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
