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
"""

from __future__ import annotations

import argparse
import sys
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
    args = ap.parse_args()
    with psycopg.connect(args.db, autocommit=True) as conn:
        n, first, last = conn.execute(
            "SELECT count(*), min(created_at)::timestamptz, max(created_at)::timestamptz FROM records"
        ).fetchone()
        top = conn.execute("SELECT max(id) FROM records").fetchone()[0]
        span = last - first
        print(f"{n:,} records (ids up to {top:,}) over {span}; copying them {args.times - 1} more times", flush=True)
        for name in INDEXES:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        t0 = time.perf_counter()
        for k in range(1, args.times):
            with conn.transaction():
                conn.execute(
                    f"INSERT INTO records (id, created_at, {COLUMNS}) SELECT id + %s,"
                    " to_char((created_at::timestamptz + %s) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
                    f" {COLUMNS} FROM records WHERE id <= %s",
                    (k * top, k * span + (span / max(n, 1)), top),
                )
                conn.execute(
                    "INSERT INTO bodies (id, text, raw_text, segments, grams)"
                    " SELECT id + %s, text, raw_text, segments, grams FROM bodies WHERE id <= %s",
                    (k * top, top),
                )
            print(f"  copy {k}: {time.perf_counter() - t0:.0f} s", flush=True)
        conn.execute("SELECT setval(pg_get_serial_sequence('records', 'id'), (SELECT max(id) FROM records))")
        conn.execute("SET maintenance_work_mem = '512MB'")
        for name, sql in INDEXES.items():
            t1 = time.perf_counter()
            conn.execute(sql)
            print(f"  {name} built in {time.perf_counter() - t1:.0f} s", flush=True)
        conn.execute("VACUUM (ANALYZE)")
        count = conn.execute("SELECT count(*) FROM records").fetchone()[0]
        print(f"{count:,} records, {time.perf_counter() - t0:.0f} s in all", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
