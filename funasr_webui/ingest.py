"""Folder ingestion: transcribe every audio or video file of a folder that the history does not hold yet.

Made to run from cron over a day's recordings: a file already in the history with the same settings (by content
hash) is skipped, done or failed alike, so a call is never transcribed twice and a broken file is not retried
every night (``retry_failed`` retries them). Each file is saved as soon as it is done, so a run stopped by Ctrl-C,
a kill or a reboot leaves only finished records (the file it was on becomes 'interrupted') and the next run does
what is left. ``watch`` keeps polling and takes a file once its size and time have stopped changing.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .engine import TranscribeOptions
from .errors import UserError
from .helpers import printable
from .history import HistoryError, audio_hash
from .qa.report import json_with_flags
from .service import TranscriptionService
from .transcript import Transcript
from .writers import DocumentInfo, render, render_bytes

log = logging.getLogger(__name__)

# What the decoder reads (audio.py decodes with PyAV): the usual recorder, phone-system and video extensions.
MEDIA_SUFFIXES = frozenset(
    ".wav .mp3 .m4a .aac .flac .ogg .oga .opus .wma .amr .webm .mp4 .m4v .mov .mkv .avi .3gp .spx".split()
)


@dataclass
class IngestResult:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    audio_s: float = 0.0
    flagged: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)

    def summary(self, elapsed: float) -> str:
        return (
            f"ingest: {self.done} done, {self.skipped} skipped, {self.failed} failed, "
            f"{self.audio_s / 3600:.2f} h of audio, {self.flagged} flagged, {elapsed:.1f} s"
        )


@dataclass
class Candidate:
    path: Path
    name: str  # relative to the folder, with '/' (the record's source)
    size: int


def scan(folder: Path, recursive: bool) -> list[Candidate]:
    """The media files of ``folder`` (and its subfolders when ``recursive``), sorted by name; hidden files and
    partial downloads (names starting with '.') are left out."""
    pattern = folder.rglob("*") if recursive else folder.glob("*")
    found = []
    for path in pattern:
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or path.suffix.lower() not in MEDIA_SUFFIXES:
            continue
        try:
            if path.is_file():
                found.append(Candidate(path, rel.as_posix(), path.stat().st_size))
        except OSError:  # vanished between listing and stat
            continue
    return sorted(found, key=lambda c: c.name)


class SettledFiles:
    """Which files have stopped changing: a file is ready once its size and modification time have been the same
    for ``settle`` seconds (a file still being copied in keeps changing)."""

    def __init__(self, settle: float) -> None:
        self.settle = settle
        self._seen: dict[Path, tuple[int, int, float]] = {}  # size, mtime_ns, since when unchanged

    def ready(self, c: Candidate, now: float) -> bool:
        try:
            st = c.path.stat()
        except OSError:
            return False
        sig = (st.st_size, st.st_mtime_ns)
        old = self._seen.get(c.path)
        if old is None or old[:2] != sig:
            self._seen[c.path] = (*sig, now)
            # a file untouched for longer than `settle` (there before we looked) is ready at once
            return time.time() - st.st_mtime >= self.settle
        return now - old[2] >= self.settle


class Ingest:
    def __init__(
        self,
        service: TranscriptionService,
        folder: Path,
        options: TranscribeOptions,
        *,
        recursive: bool = False,
        out: Path | None = None,
        fmt: str = "txt",
        retry_failed: bool = False,
        report: Callable[[str], None] = print,
    ) -> None:
        self.service = service
        self.folder = folder
        self.options = options
        self.recursive = recursive
        self.out = out
        self.fmt = fmt
        self.retry_failed = retry_failed
        self.report = report  # one line per file (the CLI sends them to stderr, above the progress bar)
        self.key = service.key(options)
        self.result = IngestResult()

    def pending(self, candidates: list[Candidate]) -> Iterator[tuple[Candidate, str]]:
        """The candidates not yet in the history with these settings, with their content hash."""
        for c in candidates:
            try:
                digest = audio_hash(c.path)
            except OSError as e:
                self._fail(c, f"cannot read the file ({e.strerror or e})")
                continue
            status = self.service.history.status_of(digest, self.key)
            if status == "done" or (status == "failed" and not self.retry_failed):
                self.result.skipped += 1
                self._write_missing_output(c, digest)
                continue
            yield c, digest

    def transcribe(self, c: Candidate, digest: str | None = None) -> None:
        try:
            outcome = self.service.transcribe_file(
                c.path, name=c.name, source=c.name, options=self.options, digest=digest
            )
        except UserError as e:
            self._fail(c, e.message("en").removeprefix(f"{c.name}: "))
            return
        except OSError as e:  # the file went away or became unreadable after it was listed
            self._fail(c, f"cannot read the file ({e.strerror or e})")
            return
        t = outcome.transcript
        self.result.done += 1
        self.result.audio_s += t.duration
        self.result.flagged += bool(outcome.flags)
        flags = f", {len(outcome.flags)} QA hit(s)" if outcome.flags else ""
        warn = f" (warning: {outcome.save_error})" if outcome.save_error else ""
        self.report(f"done: {printable(c.name)} ({t.duration:.1f} s audio, RTF {t.rtf:.3f}{flags}){warn}")
        if self.out is not None:
            self._write(c, self._render(c, t, outcome.flags))

    def _fail(self, c: Candidate, reason: str) -> None:
        self.result.failed += 1
        self.result.failures.append((c.name, reason))
        self.report(f"failed: {printable(c.name)}: {reason}")

    def _target(self, c: Candidate) -> Path:
        assert self.out is not None
        return self.out / Path(c.name).with_suffix(f".{self.fmt}")

    def _render(self, c: Candidate, t: Transcript, flags: list) -> bytes:
        info = DocumentInfo(title=Path(c.name).name)
        if self.fmt == "json":
            return json_with_flags(render(t, "json", info), flags).encode("utf-8")
        return render_bytes(t, self.fmt, info)

    def _write(self, c: Candidate, data: bytes) -> None:
        target = self._target(c)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")  # a kill mid-write never leaves half a file
        tmp.write_bytes(data)
        tmp.replace(target)

    def _write_missing_output(self, c: Candidate, digest: str) -> None:
        """A file done by an earlier run whose output is missing (killed between saving and writing): write it
        from the history, without transcribing again."""
        if self.out is None or self._target(c).exists():
            return
        try:
            rec = self.service.history.find_previous(digest, self.key)
        except HistoryError:
            return
        if rec is not None:
            self._write(c, self._render(c, rec.transcript(), self.service.qa.hits([rec.id]).get(rec.id, [])))


# --------------------------------------------------------------------------- the command


def run_ingest(args) -> int:
    """`python -m funasr_webui ingest DIR ...`: exit 0 when every file was done or skipped, 1 when any failed,
    2 for bad options, 130 when a one-shot run is stopped by Ctrl-C / SIGTERM (what was finished stays saved;
    --watch stopped that way exits 0, or 1 if a file failed)."""
    import sys

    from tqdm import tqdm

    from .cli import load_for_transcribing

    folder: Path = args.folder
    if not folder.is_dir():
        print(f"error: {folder} is not a folder", file=sys.stderr)
        return 2
    started = time.perf_counter()
    service, options = load_for_transcribing(args)
    if options is None:
        return 2
    show = sys.stderr.isatty()

    def say(line: str) -> None:
        if show:
            tqdm.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    ingest = Ingest(
        service,
        folder,
        options,
        recursive=args.recursive,
        out=args.out,
        fmt=args.format,
        retry_failed=args.retry_failed,
        report=say,
    )

    def run_batch(ready: list[Candidate]) -> None:
        todo = list(ingest.pending(ready))
        if todo:
            _run_batch(ingest, todo, show)

    code = 0
    try:
        watch_folder(folder, args, run_batch, say)
    except KeyboardInterrupt:  # --watch ends this way as a matter of course; a one-shot run was cut short
        say("stopped: finished files are saved; run again to do the rest")
        code = 0 if args.watch else 130
    print(ingest.result.summary(time.perf_counter() - started))
    if code == 0 and ingest.result.failed:
        code = 1
    service.history.close()
    return code


def watch_folder(folder: Path, args, handle: Callable[[list[Candidate]], None], say: Callable[[str], None]) -> None:
    """Give ``handle`` each file of ``folder`` once it has settled (``--settle``): one pass, or with ``--watch`` a
    pass every ``--interval`` seconds until SIGTERM or Ctrl-C, both raised as KeyboardInterrupt (systemd stops a
    service with SIGTERM: the run ends like Ctrl-C, with its summary). Shared by ingest and ingest --queue."""

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    settled = SettledFiles(args.settle)
    handled: set[tuple[Path, int, int]] = set()  # files looked at by this run (path, size, mtime)
    while True:
        now = time.monotonic()
        fresh = [c for c in scan(folder, args.recursive) if signature(c) not in handled]
        ready = [c for c in fresh if settled.ready(c, now)]
        handle(ready)
        handled.update(signature(c) for c in ready)
        waiting = len(fresh) - len(ready)
        if not args.watch:
            if waiting:
                say(f"left for the next run: {waiting} file(s) still being written")
            return
        time.sleep(max(0.1, args.interval))


def signature(c: Candidate) -> tuple[Path, int, int]:
    """What a run has looked at: the file's path, size and modification time (ingest --queue shares it)."""
    try:
        st = c.path.stat()
        return (c.path, st.st_size, st.st_mtime_ns)
    except OSError:
        return (c.path, -1, -1)


def _run_batch(ingest: Ingest, todo: list[tuple[Candidate, str]], show: bool) -> None:
    """Transcribe ``todo`` under one progress bar sized in bytes (a fair stand-in for audio length), so its ETA
    holds for a folder of short and long calls alike."""
    import sys

    from tqdm import tqdm

    total = sum(c.size for c, _ in todo)
    with tqdm(total=total, unit="B", unit_scale=True, disable=not show, file=sys.stderr, desc="ingest") as bar:
        for c, digest in todo:
            base = bar.n
            bar.set_postfix_str(printable(c.name)[-40:])
            ingest.options.progress = lambda done, b=bar, s=base, size=c.size: b.update(s + int(done * size) - b.n)
            ingest.transcribe(c, digest)  # hashed once, by pending()
            bar.update(base + c.size - bar.n)
