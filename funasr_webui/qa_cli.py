"""`qa` command: quality rules and their report, over the history database (no models are loaded).

python -m funasr_webui qa [--db FILE|URL] import RULES.json [--replace]
python -m funasr_webui qa export [--out FILE] | list | hotwords on|off
python -m funasr_webui qa apply [--from DATE] [--to DATE]
python -m funasr_webui qa report [--from DATE] [--to DATE] [--rule NAME] [--format csv|json|xlsx] [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

from .errors import UserError
from .history_cli import db_option, open_args_store
from .qa.report import REPORT_FORMATS
from .qa.service import QaService


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    db_opt = db_option()
    dates = argparse.ArgumentParser(add_help=False)
    dates.add_argument("--from", dest="date_from", metavar="DATE", help="records created on or after (YYYY-MM-DD)")
    dates.add_argument("--to", dest="date_to", metavar="DATE", help="records created on or before (YYYY-MM-DD)")

    qa = subparsers.add_parser("qa", parents=[db_opt], help="quality rules: import, list, apply, report")
    verbs = qa.add_subparsers(dest="qa_verb", required=True, metavar="VERB")
    p = verbs.add_parser("import", parents=[db_opt], help="add or update rules from a JSON list ('-' = stdin)")
    p.add_argument("file", help="rules file: [{name, kind, phrases, within_s?, speaker?, enabled?}, ...]")
    p.add_argument("--replace", action="store_true", help="delete the rules the file does not name")
    p = verbs.add_parser("export", parents=[db_opt], help="the rules as a JSON list (what import reads)")
    p.add_argument("--out", type=Path, help="output file (default: stdout)")
    verbs.add_parser("list", parents=[db_opt], help="the rules, one per line")
    p = verbs.add_parser("apply", parents=[db_opt, dates], help="check stored records again with today's rules")
    p = verbs.add_parser("report", parents=[db_opt, dates], help="every hit: file, time, rule, phrase, sentence")
    p.add_argument("--rule", help="only this rule's hits")
    p.add_argument("--format", choices=REPORT_FORMATS, default="csv")
    p.add_argument("--out", type=Path, help="output file (default: stdout; needed for xlsx)")
    p = verbs.add_parser("hotwords", parents=[db_opt], help="pass the active rules' phrases to the engine or not")
    p.add_argument("state", choices=["on", "off", "show"])
    return qa


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    store = open_args_store(args, create=args.qa_verb == "import")
    if store is None:
        return 1
    try:
        itn = None
        if args.qa_verb == "apply":
            from .itn import InverseNormalizer

            itn = InverseNormalizer()  # phrases are also matched in their written form, as on a fresh check
        return _VERBS[args.qa_verb](QaService(store, itn), args, out)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # bad dates
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        store.close()


def _import(qa: QaService, args: argparse.Namespace, out: TextIO) -> int:
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    except OSError as e:
        print(f"error: cannot read {args.file}: {e.strerror or e}", file=sys.stderr)
        return 1
    added, updated, deleted = qa.import_rules(text, replace=args.replace)
    print(f"rules: {added} added, {updated} updated, {deleted} deleted", file=out)
    return 0


def _export(qa: QaService, args: argparse.Namespace, out: TextIO) -> int:
    text = qa.export_rules()
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"exported {len(qa.rules())} rules to {args.out}", file=sys.stderr)
    else:
        out.write(text)
    return 0


def _list(qa: QaService, args: argparse.Namespace, out: TextIO) -> int:
    rules = qa.rules()
    if not rules:
        print("no rules", file=out)
    for r in rules:
        window = f" within {list(r.within_s)} s" if r.within_s else ""
        speaker = f" speaker {r.speaker}" if r.speaker else ""
        state = "" if r.enabled else " (disabled)"
        print(f"{r.id:>4}  {r.name}  {r.kind}{window}{speaker}: {' / '.join(r.phrases)}{state}", file=out)
    print(f"hotwords from rules: {'on' if qa.hotwords_on() else 'off'}", file=out)
    return 0


def _apply(qa: QaService, args: argparse.Namespace, out: TextIO) -> int:
    started = time.perf_counter()
    n, hits = qa.apply(args.date_from, args.date_to)
    elapsed = time.perf_counter() - started
    print(f"checked {n} records with {len(qa.active_rules())} rules: {hits} hits ({elapsed:.1f} s)", file=out)
    return 0


def _report(qa: QaService, args: argparse.Namespace, out: TextIO) -> int:
    if args.format == "xlsx" and args.out is None:
        print("xlsx reports need --out FILE", file=sys.stderr)
        return 2
    data = qa.report_file(args.format, args.date_from, args.date_to, args.rule)
    if args.out is None:
        out.write(data.decode("utf-8-sig"))
        if args.format == "json":
            out.write("\n")
    else:
        args.out.write_bytes(data)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _hotwords(qa: QaService, args: argparse.Namespace, out: TextIO) -> int:
    if args.state != "show":
        qa.set_hotwords(args.state == "on")
    print(f"hotwords from rules: {'on' if qa.hotwords_on() else 'off'}", file=out)
    return 0


_VERBS = {
    "import": _import,
    "export": _export,
    "list": _list,
    "apply": _apply,
    "report": _report,
    "hotwords": _hotwords,
}
