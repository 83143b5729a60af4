"""`history` command: list, search, show, export, purge, stats, delete, vacuum.

python -m funasr_webui history [--db FILE|URL] list [--limit N] [filters]
python -m funasr_webui history search QUERY [filters]
python -m funasr_webui history show ID [--format txt|srt|vtt|json|md|docx] [--out FILE]
python -m funasr_webui history speakers ID [S1=张经理 S2=李工 ...]
python -m funasr_webui history export [--format json|csv|zip-srt|zip-txt|...] [--out FILE] [QUERY] [filters]
python -m funasr_webui history purge --older-than-days N
python -m funasr_webui history stats | delete ID... | vacuum
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from pathlib import Path
from typing import TextIO

from .history import DEFAULT_DB, EXPORT_FORMATS, STATUSES, HistoryStore, Page, Record, db_target, open_store
from .speakers import checked_names, speaker_list
from .writers import BINARY_FORMATS, FORMATS, DocumentInfo, render, render_bytes


def db_option() -> argparse.ArgumentParser:
    """A parent parser with ``--db`` for a command and each of its verbs (``history``, ``qa``)."""
    # --db may come before or after the verb; SUPPRESS keeps a later default from hiding an earlier value.
    db_opt = argparse.ArgumentParser(add_help=False)
    db_opt.add_argument(
        "--db",
        type=db_target,
        default=argparse.SUPPRESS,
        metavar="FILE|URL",
        help="history database, a file or a postgresql:// URL (default: the server's)",
    )
    return db_opt


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``history`` command and its verbs to a subparsers object."""
    db_opt = db_option()

    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("--from", dest="date_from", metavar="DATE", help="created on or after (YYYY-MM-DD, local)")
    filters.add_argument("--to", dest="date_to", metavar="DATE", help="created on or before (YYYY-MM-DD, local)")
    filters.add_argument("--engine", help="only this engine")
    filters.add_argument("--source", help="only this source (file name, microphone, api)")
    filters.add_argument(
        "--status", choices=STATUSES, help="only done, failed, or interrupted records (cut short by a server stop)"
    )
    filters.add_argument("--speaker", metavar="NAME", help="only records with a speaker of this given name")

    paging = argparse.ArgumentParser(add_help=False)
    paging.add_argument("--limit", type=int, default=20, help="records per page (default 20)")
    paging.add_argument("--offset", type=int, default=0, help="records to skip")
    paging.add_argument(
        "--format", choices=["table", "json"], default="table", help="json: records with their QA flags"
    )
    paging.add_argument("--flagged", action="store_true", help="only records a quality rule found something on")
    paging.add_argument("--rule", help="only records with a hit of this quality rule")

    hist = subparsers.add_parser("history", parents=[db_opt], help="browse, search and export saved transcripts")
    verbs = hist.add_subparsers(dest="history_verb", required=True, metavar="VERB")

    verbs.add_parser("list", parents=[db_opt, filters, paging], help="newest records first")
    p = verbs.add_parser("search", parents=[db_opt, filters, paging], help="full-text search (Chinese works)")
    p.add_argument("query", help="words to find; 3+ characters match anywhere, 1-2 characters too")
    p = verbs.add_parser("show", parents=[db_opt], help="one record in full")
    p.add_argument("id", type=int)
    p.add_argument("--format", choices=FORMATS, help="print only the transcript in this format")
    p.add_argument("--out", type=Path, help="write it to this file instead (needed for docx)")
    p = verbs.add_parser("speakers", parents=[db_opt], help="list a record's speakers, or rename them")
    p.add_argument("id", type=int)
    p.add_argument("names", nargs="*", metavar="LABEL=NAME", help="e.g. S1=张经理 (S1= gives the default name back)")
    p = verbs.add_parser("export", parents=[db_opt, filters], help="export matching records (default: all)")
    p.add_argument("query", nargs="?", default="", help="only records matching this search")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="json")
    p.add_argument("--out", type=Path, help="output file (default: stdout, not for zip)")
    p = verbs.add_parser("purge", parents=[db_opt], help="delete records older than N days")
    p.add_argument("--older-than-days", type=float, required=True, metavar="N")
    verbs.add_parser("stats", parents=[db_opt], help="record count, audio hours, database size")
    p = verbs.add_parser("delete", parents=[db_opt], help="delete records by id")
    p.add_argument("ids", type=int, nargs="+", metavar="ID")
    verbs.add_parser("vacuum", parents=[db_opt], help="compact the database file")
    p = verbs.add_parser("backup", parents=[db_opt], help="copy the database safely, even while the server runs")
    p.add_argument("target", type=Path, help="file to write the copy to")
    return hist


def open_args_store(args: argparse.Namespace, create: bool = False) -> HistoryStore | None:
    """The store of ``--db`` (or the server's); None, with the reason on stderr, when it cannot be opened.
    A missing file is only created when ``create`` (reading never leaves an empty database behind)."""
    db = db_target(getattr(args, "db", None) or _default_db())
    if isinstance(db, Path) and not db.exists() and not create:
        print(f"no history database at {db}", file=sys.stderr)
        return None
    try:
        return open_store(db)
    except Exception as e:  # unreadable or newer file, unreachable server: say so, no traceback
        print(f"cannot open history database {_shown(db)}: {e}", file=sys.stderr)
        return None


def _shown(db: Path | str) -> str:
    from .history.target import without_password

    return without_password(db) if isinstance(db, str) else str(db)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run a ``history`` verb; returns the exit code."""
    out = out or sys.stdout
    store = open_args_store(args)
    if store is None:
        return 1
    try:
        return _VERBS[args.history_verb](store, args, out)
    except ValueError as e:  # bad dates and the like
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        store.close()


def _default_db() -> Path | str:
    """The server's database: Settings honours FUNASR_WEBUI_DB; DEFAULT_DB if settings cannot load."""
    try:
        from .cli import settings_from_args

        return settings_from_args().db
    except Exception:
        return DEFAULT_DB


def _filters(args: argparse.Namespace) -> dict:
    return {
        "date_from": args.date_from,
        "date_to": args.date_to,
        "engine": args.engine,
        "source": args.source,
        "status": args.status,
        "speaker": args.speaker,
    }


def _list(store: HistoryStore, args: argparse.Namespace, out: TextIO) -> int:
    page = store.search(
        getattr(args, "query", ""),
        **_filters(args),
        flagged=args.flagged,
        rule=args.rule,
        limit=args.limit,
        offset=args.offset,
    )
    if args.format == "json":
        hits = store.hits(r.id for r in page.records)
        items = []
        for rec in page.records:
            d = rec.to_dict()
            del d["segments"], d["raw_text"]  # as the API's list: `show ID --format json` has everything
            items.append({**d, "flags": [h.to_dict() for h in hits.get(rec.id, [])]})
        json.dump(items, out, ensure_ascii=False, indent=2)
        out.write("\n")
        return 0
    _print_page(page, out)
    return 0


def _show(store: HistoryStore, args: argparse.Namespace, out: TextIO) -> int:
    rec = store.get(args.id)
    if rec is None:
        print(f"no record {args.id}", file=sys.stderr)
        return 1
    if args.format:
        info = DocumentInfo(title=rec.title, created=rec.created_at.astimezone())
        if args.out is not None:
            args.out.write_bytes(render_bytes(rec.transcript(), args.format, info))
            print(f"wrote record {rec.id} to {args.out}", file=sys.stderr)
        elif args.format in BINARY_FORMATS:
            print(f"{args.format} is a binary format: add --out FILE", file=sys.stderr)
            return 2
        else:
            out.write(render(rec.transcript(), args.format, info))
        return 0
    created = rec.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    fields = [
        ("id", rec.id),
        ("created", created),
        ("status", rec.status + (f": {_problem(rec)}" if rec.error else "")),
        ("name", rec.title),
        ("source", rec.source),
        ("engine", f"{rec.engine} {rec.model} on {rec.device or '?'}"),
        ("language", rec.language or "-"),
        ("hotwords", " ".join(rec.hotwords) or "-"),
        ("itn", "on" if rec.itn else "off"),
        ("audio", f"{rec.duration:.1f} s, processed in {rec.elapsed:.1f} s (RTF {rec.rtf:.3f})"),
        ("audio hash", rec.audio_hash),
    ]
    if rec.audio_file:
        fields.append(("audio copy", rec.audio_file))
    for name, value in fields:
        print(f"{name:>10}: {value}", file=out)
    if rec.text:
        print(file=out)
        print(rec.text, file=out)
    return 0


def _speakers(store: HistoryStore, args: argparse.Namespace, out: TextIO) -> int:
    from .errors import UserError

    rec = store.get(args.id)
    if rec is None:
        print(f"no record {args.id}", file=sys.stderr)
        return 1
    if args.names:
        pairs = [n.partition("=") for n in args.names]
        if any(not sep for _, sep, _ in pairs):
            print("give each name as LABEL=NAME, e.g. S1=张经理", file=sys.stderr)
            return 2
        try:
            names = checked_names(rec.id, rec.segments, {label.strip(): name for label, _, name in pairs})
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        rec = store.set_speaker_names(rec.id, names) or rec
    speakers = speaker_list(rec.transcript())
    if not speakers:
        print(f"record {rec.id} has no speakers (transcribe with --speakers auto)", file=out)
    for s in speakers:
        print(f"{s['label']:>4}  {s['name']}", file=out)
    return 0


def _export(store: HistoryStore, args: argparse.Namespace, out: TextIO) -> int:
    zipped = args.format.startswith("zip-")
    if zipped and args.out is None:
        print("zip exports need --out FILE", file=sys.stderr)
        return 2
    ids = store.search_ids(args.query, **_filters(args))
    data = store.export(args.format, ids)
    if args.out is None:
        out.write(data.decode("utf-8-sig"))
    else:
        args.out.write_bytes(data)
        print(f"exported {len(ids)} records to {args.out}", file=sys.stderr)
    return 0


def _purge(store: HistoryStore, args: argparse.Namespace, out: TextIO) -> int:
    n = store.purge(args.older_than_days)
    print(f"purged {n} records older than {args.older_than_days:g} days", file=out)
    return 0


def _stats(store: HistoryStore, args: argparse.Namespace, out: TextIO) -> int:
    st = store.stats()
    print(f"database:    {store.db_path}", file=out)
    interrupted = f", {st['interrupted']} interrupted" if st["interrupted"] else ""
    print(f"records:     {st['count']} ({st['done']} done, {st['failed']} failed{interrupted})", file=out)
    print(f"audio:       {st['audio_hours']:.2f} hours", file=out)
    print(f"size:        {st['db_bytes'] / 2**20:.1f} MiB", file=out)
    if st["audio_bytes"]:
        print(f"audio kept:  {st['audio_bytes'] / 2**20:.1f} MiB in {store.audio_dir}", file=out)
    return 0


def _delete(store: HistoryStore, args: argparse.Namespace, out: TextIO) -> int:
    n = store.delete(args.ids)
    print(f"deleted {n} of {len(set(args.ids))} records", file=out)
    return 0 if n == len(set(args.ids)) else 1


def _backup(store: HistoryStore, args: argparse.Namespace, out: TextIO) -> int:
    target = store.backup(args.target)
    print(f"backed up {store.stats()['count']} records to {target}", file=out)
    return 0


def _vacuum(store: HistoryStore, args: argparse.Namespace, out: TextIO) -> int:
    before = store.stats()["db_bytes"]
    store.vacuum()
    after = store.stats()["db_bytes"]
    print(f"database compacted: {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB", file=out)
    return 0


_VERBS = {
    "list": _list,
    "search": _list,
    "show": _show,
    "speakers": _speakers,
    "export": _export,
    "purge": _purge,
    "stats": _stats,
    "delete": _delete,
    "vacuum": _vacuum,
    "backup": _backup,
}


# --------------------------------------------------------------------------- terminal table


def _width(s: str) -> int:
    """Terminal columns: CJK and other wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def _fit(s: str, cols: int) -> str:
    """``s`` cut (with an ellipsis) or padded to exactly ``cols`` terminal columns."""
    s = " ".join(s.split())  # one line
    if _width(s) > cols:
        out, used = [], 0
        for c in s:
            w = _width(c)
            if used + w > cols - 1:
                break
            out.append(c)
            used += w
        s = "".join(out) + "…"
    return s + " " * (cols - _width(s))


def _problem(rec: Record) -> str:
    """Why a record has no transcript, without the status the error may start with ("interrupted: ...")."""
    return rec.error.removeprefix(rec.status + ": ")


def _row(rec: Record) -> str:
    created = rec.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
    text = rec.text if rec.status == "done" else f"[{rec.status}] {_problem(rec)}"
    return (
        f"{rec.id:>7}  {created}  {rec.duration:>7.1f}s  {_fit(rec.engine, 10)}  {_fit(rec.title, 24)}  "
        f"{_fit(text, 50).rstrip()}"
    )


def _print_page(page: Page, out: TextIO) -> None:
    if not page.records:
        print("no records", file=out)
        return
    print(f"{'id':>7}  {'created':<16}  {'audio':>8}  {'engine':<10}  {'name':<24}  text", file=out)
    for rec in page.records:
        print(_row(rec), file=out)
    shown = f"{page.offset + 1}-{page.offset + len(page.records)}"
    total = f"{page.total}" if page.total_exact else f"{page.total}+"
    print(f"({shown} of {total})", file=out)
