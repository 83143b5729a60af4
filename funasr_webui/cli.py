"""Command line: `python -m funasr_webui {serve,transcribe,ingest,worker,download,history,qa} ...`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import history_cli, models, qa_cli
from .engine import ENGINE_NAMES
from .helpers import printable
from .history import db_target
from .qa.report import json_with_flags
from .settings import Settings
from .writers import BINARY_FORMATS, FORMATS, DocumentInfo, render, render_bytes


def settings_from_args(args: argparse.Namespace | None = None, **extra) -> Settings:
    """The one way every command gets its Settings: FUNASR_WEBUI_* variables, then the options given on the
    command line (`args`), then `extra`. Without `args`: the defaults the options show."""
    given = vars(args) if args is not None else {}
    fields = {k: v for k, v in given.items() if k in Settings.model_fields and v is not None}
    return Settings(**{**fields, **extra})


def engine_list(text: str) -> str:
    """--engines: checked here, so a typo fails before any model loads."""
    from .engines import parse_engine_list

    try:
        return ",".join(parse_engine_list(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def add_settings_args(p: argparse.ArgumentParser, d: Settings) -> None:
    """Options shared by every command that loads models; defaults `d` from Settings (and FUNASR_WEBUI_* vars)."""
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default=d.device, help="auto = CUDA when available")
    p.add_argument(
        "--engine",
        choices=["auto", *ENGINE_NAMES],
        default=d.engine,
        help="the default engine; auto = the most accurate one in --models-dir for the device (GPU: Fun-ASR-Nano, "
        "Paraformer, SenseVoice; CPU: Paraformer, SenseVoice), else Paraformer downloaded, else Whisper",
    )
    p.add_argument(
        "--engines",
        type=engine_list,
        default=d.engines,
        metavar="A,B,...",
        help="engines to load at start (each once), chosen per request; the first is the default unless --engine",
    )
    p.add_argument("--models-dir", type=Path, default=d.models_dir, help="where model folders live")
    p.add_argument(
        "--db",
        type=db_target,
        default=d.db,
        metavar="FILE|URL",
        help="history database: a SQLite file, or postgresql://user@host[:port]/db shared by several servers",
    )
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="speech segments decoded together")
    p.add_argument("--beam-size", type=int, default=d.beam_size, help="Whisper beams (1 = greedy, faster)")
    p.add_argument("--threads", type=int, default=d.threads, help="CPU threads for inference")
    p.add_argument("--offline", action="store_true", default=d.offline, help="never try to download models")
    p.add_argument("--fp16", action="store_true", default=d.fp16, help="half precision on CUDA")
    p.add_argument("--max-duration", type=float, default=d.max_duration, help="longest audio accepted, seconds")
    p.add_argument("--keep-days", type=float, default=d.keep_days, help="purge history older than N days at start")
    p.add_argument(
        "--keep-audio",
        action="store_true",
        default=d.keep_audio,
        help="keep a copy of each recording beside the database for playback (off: privacy)",
    )


def add_server_args(p: argparse.ArgumentParser, d: Settings) -> None:
    p.add_argument("--host", default=d.host, help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=d.port)
    p.add_argument("--auth", default=d.auth, help="user:password protecting the web page, or a file of such lines")
    p.add_argument("--api-key", default=d.api_key, help="Bearer key protecting the API, or a file of keys")
    p.add_argument(
        "--allowed-host",
        dest="allowed_hosts",
        action="append",
        metavar="NAME",
        help="a host name the server may be reached by, besides localhost and --host (repeatable; * = any)",
    )
    p.add_argument("--max-live-sessions", type=int, default=d.max_live_sessions, help="live dictations at once (page)")
    p.add_argument(
        "--funasr-ws-port",
        type=int,
        default=d.funasr_ws_port,
        metavar="PORT",
        help="also speak FunASR's runtime WebSocket protocol on this port (FunASR's clients use 10095); off by default",
    )
    p.add_argument(
        "--funasr-ws-max-connections",
        type=int,
        default=d.funasr_ws_max_connections,
        help="FunASR WebSocket connections at once",
    )
    p.add_argument(
        "--queue",
        action="store_true",
        default=d.queue,
        help="with --db postgresql://…: the Batch tab and POST /api/v1/jobs put files on the work queue for "
        "`worker` processes instead of transcribing here",
    )
    p.add_argument("--ssl-certfile", type=Path, default=d.ssl_certfile, help="HTTPS certificate (PEM)")
    p.add_argument("--ssl-keyfile", type=Path, default=d.ssl_keyfile, help="the certificate's private key (PEM)")
    p.add_argument(
        "--ssl-self-signed",
        action="store_true",
        default=d.ssl_self_signed,
        help="HTTPS with a self-signed certificate for this machine's names and addresses, made once beside --db",
    )
    add_settings_args(p, d)


def add_transcribe_options(p: argparse.ArgumentParser, d: Settings) -> None:
    """How to transcribe: the options `transcribe` and `ingest` share (one definition, so both always have the same
    ones), then the settings of the models. Read back with ``transcribe_options``."""
    p.add_argument("--format", choices=FORMATS, default="txt")
    p.add_argument("--out", type=Path, help="write FILE.<format> into this folder instead of printing")
    p.add_argument("--hotwords", help="space-separated words, or a file with one per line")
    p.add_argument("--no-itn", action="store_true", help="keep numbers as words (no inverse text normalization)")
    p.add_argument("--language", help="language code for engines that detect it (default: auto)")
    p.add_argument(
        "--speakers",
        type=speakers_arg,
        metavar="auto|N",
        help="label who spoke: auto = find how many, N = exactly N voices (1-10); default off",
    )
    add_settings_args(p, d)


def transcribe_options(service, args: argparse.Namespace):
    """The TranscribeOptions of ``add_transcribe_options``' arguments (UserError for bad ones)."""
    return service.options(
        read_hotwords(args.hotwords), itn=not args.no_itn, language=args.language, speakers=args.speakers
    )


def load_for_transcribing(args: argparse.Namespace):
    """The service (every model loaded; the speaker model only when asked for) and the options of
    ``add_transcribe_options``' arguments; (service, None) after printing why when an option is bad."""
    from .errors import UserError
    from .service import build_service

    service = build_service(settings_from_args(args), preload_speakers=args.speakers is not None)
    if service.notice:
        print(service.notice, file=sys.stderr)
    try:
        return service, transcribe_options(service, args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return service, None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m funasr_webui", description="Local speech-to-text (FunASR).")
    sub = parser.add_subparsers(dest="command", required=True)
    defaults = settings_from_args()

    serve = sub.add_parser("serve", help="start the web page and API")
    add_server_args(serve, defaults)

    tr = sub.add_parser("transcribe", help="transcribe files and print or write the results")
    tr.add_argument("files", nargs="+", type=Path)
    tr.add_argument("--no-history", action="store_true", help="do not save the results to the history")
    add_transcribe_options(tr, defaults)

    ing = sub.add_parser(
        "ingest", help="transcribe every media file of a folder not yet in the history (for cron); see README"
    )
    ing.add_argument("folder", type=Path)
    ing.add_argument("--recursive", action="store_true", help="include subfolders")
    ing.add_argument("--watch", action="store_true", help="keep polling for new files (Ctrl-C or SIGTERM stops)")
    ing.add_argument("--interval", type=float, default=10.0, help="--watch: seconds between polls (default 10)")
    ing.add_argument(
        "--settle", type=float, default=5.0, help="take a file once unchanged for this many seconds (default 5)"
    )
    ing.add_argument("--retry-failed", action="store_true", help="transcribe files that failed before again")
    ing.add_argument(
        "--queue",
        action="store_true",
        help="put the files on the work queue of --db postgresql://… for `worker` processes, instead of "
        "transcribing here (by path: every worker must see the folder at the same path; see --upload)",
    )
    ing.add_argument(
        "--upload", action="store_true", help="--queue: store the files' bytes in the queue (workers need no share)"
    )
    ing.add_argument(
        "--max-attempts", type=int, default=3, help="--queue: tries per file before it is a failed record (default 3)"
    )
    add_transcribe_options(ing, defaults)

    wk = sub.add_parser(
        "worker", help="take jobs from the work queue of --db postgresql://… until stopped (one per machine)"
    )
    wk.add_argument("--until-empty", action="store_true", help="exit once no job is queued or running (for scripts)")
    wk.add_argument(
        "--lease-seconds",
        type=float,
        default=60.0,
        help="a job whose worker is silent this long is taken over by another (default 60; heartbeat every third)",
    )
    wk.add_argument("--poll", type=float, default=2.0, help="seconds between looks at an empty queue (default 2)")
    add_settings_args(wk, defaults)

    dl = sub.add_parser("download", help="download models from ModelScope into --models-dir")
    dl.add_argument(
        "--model",
        choices=list(models.DOWNLOADS),
        default="paraformer",
        help="which models: the Paraformer set (default), Fun-ASR-Nano, its 31-language MLT version, SenseVoice-Small, "
        "the CAM++ speaker model, or all of them",
    )
    dl.add_argument("--models-dir", type=Path, default=defaults.models_dir)
    dl.add_argument("--timeout", type=float, default=3600.0)

    history_cli.register(sub)
    qa_cli.register(sub)
    return parser


def speakers_arg(value: str) -> str:
    """--speakers checked when the command line is read; the message in English and Chinese."""
    from .errors import UserError
    from .speakers import parse_speakers

    try:
        parse_speakers(value)
    except UserError as e:
        raise argparse.ArgumentTypeError(f"{e.message('en')} / {e.message('zh')}") from None
    return value


def read_hotwords(value: str | None) -> str | None:
    if value and Path(value).is_file():
        return Path(value).read_text(encoding="utf-8")
    return value


def run_transcribe(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .errors import UserError

    service, options = load_for_transcribing(args)
    if options is None:
        return 2
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    failures = 0
    show = sys.stderr.isatty()
    bar = tqdm(args.files, unit="file", disable=len(args.files) < 2 or not show, file=sys.stderr)
    for path in bar:
        name = printable(path.name)
        bar.set_postfix_str(name)
        file_bar = tqdm(total=100, unit="%", desc=name, leave=False, disable=not show, file=sys.stderr)
        options.progress = lambda done, b=file_bar: b.update(round(done * 100) - b.n)
        try:
            if not path.is_file():
                raise UserError("file_not_found", filename=printable(str(path)))
            flags = []
            if args.no_history:
                transcript = service.transcribe_unsaved(path, name=path.name, options=options)
            else:
                outcome = service.transcribe_file(path, name=path.name, source=path.name, options=options)
                transcript, flags = outcome.transcript, outcome.flags
                if outcome.save_error:
                    print(f"warning: {outcome.save_error}", file=sys.stderr)
        except UserError as e:
            failures += 1
            print(f"error: {e}", file=sys.stderr)
            continue
        finally:
            file_bar.close()
        info = DocumentInfo(title=path.name)
        with_flags = args.format == "json" and not args.no_history  # what the quality rules found, as the API
        # a binary format (docx) cannot go to the terminal: FILE.docx is written into the current folder
        folder = args.out or (Path.cwd() if args.format in BINARY_FORMATS else None)
        if folder is not None:
            target = folder / f"{path.stem}.{args.format}"
            if with_flags:
                target.write_text(json_with_flags(render(transcript, "json", info), flags), encoding="utf-8")
            else:
                target.write_bytes(render_bytes(transcript, args.format, info))
            print(
                f"{name} -> {printable(str(target))} ({transcript.duration:.1f} s audio, RTF {transcript.rtf:.3f})",
                file=sys.stderr,
            )
        else:
            text = render(transcript, args.format, info)
            if with_flags:
                text = json_with_flags(text, flags)
            if len(args.files) > 1:
                print(f"==> {name} <==")
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 1 if failures else 0


def run_ingest(args: argparse.Namespace) -> int:
    if args.queue:
        from .ingest_queue import run_enqueue

        return run_enqueue(args)
    from .ingest import run_ingest as ingest

    return ingest(args)


def run_worker(args: argparse.Namespace) -> int:
    from .worker import run_worker as work

    return work(args)


def run_download(args: argparse.Namespace) -> int:
    try:
        fetched = models.download_named(args.models_dir, args.model, timeout=args.timeout)
    except models.ModelUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for m in fetched:
        print(f"{m.alias}: {m.path(args.models_dir)}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from .server import serve

    return serve(settings_from_args(args))


def main(argv: list[str] | None = None) -> int:
    # our own progress at INFO; libraries (FunASR logs its loading chatter on the root logger) at WARNING
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("funasr_webui").setLevel(logging.INFO)
    args = build_parser().parse_args(argv)
    commands = {
        "serve": run_serve,
        "transcribe": run_transcribe,
        "ingest": run_ingest,
        "worker": run_worker,
        "download": run_download,
        "history": history_cli.run,
        "qa": qa_cli.run,
    }
    from .errors import UserError

    try:
        return commands[args.command](args)
    except UserError as e:  # what stops a command before it starts (e.g. the history database out of reach)
        print(f"error: {e.message('en')}\n错误：{e.message('zh')}", file=sys.stderr)
        return 1
