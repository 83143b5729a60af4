"""Grow a PostgreSQL benchmark history by copying its records server-side (not a test; for bench_history.py).

Inserting synthetic transcripts through ``add_many`` runs at ~50 records/s on a shared 2-core machine (the
pg_trgm index upkeep on ~1 KB texts), far too slow to reach a million. This copies the N records that
``bench_history.py --db URL`` built, ``--times`` times in all, inside PostgreSQL: each copy gets new ids after the
last and its times shifted past the last copy's (``created_at`` keeps growing with ``id``, as the store keeps it);
the two GIN indexes are dropped first and built again at the end, then VACUUM ANALYZE. The copies repeat the texts,
so each word matches ``--times`` times as often as in N distinct texts; say so next to any figure it gives.

    python bench/bench_history.py --db URL --sizes 50000
    python bench/scale_history_pg.py --db URL --times 4
    python bench/bench_history.py --db URL --sizes 200000 --reuse

``--to N`` copies until there are N records (the last copy partial) instead of a whole multiple.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from funasr_webui.history.schema_pg import TEXT_INDEXES as INDEXES  # noqa: E402

COLUMNS = (
    "status, source, audio_hash, settings_key, duration, elapsed, rtf, engine, model, device, language, hotwords,"
    " itn, error, audio_file, error_code, name"
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True, help="postgresql:// URL of a database bench_history.py built")
    ap.add_argument("--times", type=int, default=4, help="records in all, as a multiple of those there now")
    ap.add_argument("--to", type=int, help="records in all (copies of the first ones, the last copy partial)")
    args = ap.parse_args()
    with psycopg.connect(args.db, autocommit=True) as conn:
        n, first, last = conn.execute(
            "SELECT count(*), min(created_at)::timestamptz, max(created_at)::timestamptz FROM records"
        ).fetchone()
        top = conn.execute("SELECT max(id) FROM records").fetchone()[0]
        span = last - first
        want = args.to or n * args.times
        print(f"{n:,} records (ids up to {top:,}) over {span}; copying them up to {want:,}", flush=True)
        for name in INDEXES:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        t0 = time.perf_counter()
        for k in range(1, -(-want // n)):
            part = min(top, want - k * n)  # ids are 1..top with none missing (a built bench database)
            with conn.transaction():
                conn.execute(
                    f"INSERT INTO records (id, created_at, {COLUMNS}) SELECT id + %s,"
                    " to_char((created_at::timestamptz + %s) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
                    f" {COLUMNS} FROM records WHERE id <= %s",
                    (k * top, k * span + (span / max(n, 1)), part),
                )
                conn.execute(
                    "INSERT INTO bodies (id, text, raw_text, segments, grams)"
                    " SELECT id + %s, text, raw_text, segments, grams FROM bodies WHERE id <= %s",
                    (k * top, part),
                )
            print(f"  copy {k}: {time.perf_counter() - t0:.0f} s", flush=True)
        conn.execute("SELECT setval(pg_get_serial_sequence('records', 'id'), (SELECT max(id) FROM records))")
        # PostgreSQL 15 builds a GIN index on one core: the two at once, one connection each
        builds = [threading.Thread(target=build, args=(args.db, name, sql)) for name, sql in INDEXES.items()]
        for b in builds:
            b.start()
        for b in builds:
            b.join()
        conn.execute("VACUUM (ANALYZE)")
        count = conn.execute("SELECT count(*) FROM records").fetchone()[0]
        print(f"{count:,} records, {time.perf_counter() - t0:.0f} s in all", flush=True)
    return 0


def build(url: str, name: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '2GB'")
        t0 = time.perf_counter()
        conn.execute(sql)
        print(f"  {name} built in {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
