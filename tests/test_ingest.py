"""`ingest DIR`: a folder of real shared audio with broken files, a run killed mid-way and restarted, a second run
that transcribes nothing, and `--watch` taking a slowly copied file only once it is complete."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from funasr_webui.ingest import Ingest, SettledFiles, scan
from funasr_webui.settings import PROJECT_ROOT

BROKEN = ("10-broken.wav", "15-truncated.mp3")


def ingest_cmd(folder: Path, db: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "funasr_webui", "ingest", str(folder), "--db", str(db), "--offline",
            "--engine", "whisper", "--threads", "2", "--settle", "0", *extra]  # fmt: skip


def records(db: Path) -> list[tuple[str, str, str]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT source, status, audio_hash FROM records ORDER BY id").fetchall()


def saved(db: Path) -> int:
    """Records done so far by a run that may still be creating the file and its tables."""
    try:
        return sum(s == "done" for _, s, _ in records(db)) if db.exists() else 0
    except sqlite3.OperationalError:  # "no such table" / "database is locked" while the run sets the file up
        return 0


@pytest.fixture(scope="module")
def folder(shared_audio: Path, tmp_path_factory) -> Path:
    """20 files in two folders: 18 distinct real recordings (the shared clips, and copies with a little silence in
    front, so each has its own content) and 2 broken ones."""
    out = tmp_path_factory.mktemp("calls")
    (out / "day2").mkdir()
    clips = sorted((shared_audio / "tts").glob("d0*.wav")) + [shared_audio / "zh" / "asr_example.wav"]
    n = 0
    for pad in (0.0, 0.3):
        for clip in clips:
            n += 1
            audio, rate = sf.read(clip, dtype="float32")
            audio = np.concatenate([np.zeros(int(pad * rate), dtype=np.float32), audio])
            where = out if n % 2 else out / "day2"
            sf.write(where / f"{n + (n >= 10) + (n >= 14):02d}-{clip.stem}.wav", audio, rate)
    (out / BROKEN[0]).write_text("not a recording")
    (out / "day2" / BROKEN[1]).write_bytes((shared_audio / "en" / "hotwords.mp3").read_bytes()[:3000])
    (out / "notes.txt").write_text("not media: ignored")
    assert len(scan(out, recursive=True)) == 20
    return out


@pytest.fixture(scope="module")
def killed_and_restarted(folder: Path, tmp_path_factory) -> dict:
    """A run killed (SIGKILL) while it transcribes, then a second run over the same folder."""
    db = tmp_path_factory.mktemp("ingest") / "history.db"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    first = subprocess.Popen(ingest_cmd(folder, db, "--recursive"), cwd=PROJECT_ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:  # kill it once 3 files are saved and the 4th is under way
            if saved(db) >= 3:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the first run saved nothing in time")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
        first.stdout.close()
    after_kill = records(db)
    cmd = ingest_cmd(folder, db, "--recursive", "--out", str(db.parent / "out"), "--format", "json")
    second = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    return {"db": db, "after_kill": after_kill, "second": second}


def test_restart_finishes_the_rest_without_duplicates(killed_and_restarted: dict) -> None:
    second, db = killed_and_restarted["second"], killed_and_restarted["db"]
    done_before = sum(s == "done" for _, s, _ in killed_and_restarted["after_kill"])
    assert second.returncode == 1, second.stderr  # 2 files failed
    summary = second.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"ingest: {18 - done_before} done, {done_before} skipped, 2 failed,"), summary
    assert " h of audio" in summary
    rows = records(db)
    done = [(src, h) for src, status, h in rows if status == "done"]
    assert len(done) == 18 and len({h for _, h in done}) == 18 and len({s for s, _ in done}) == 18  # no duplicates
    assert sorted(src for src, status, _ in rows if status == "failed") == ["10-broken.wav", "day2/15-truncated.mp3"]
    assert all(status in ("done", "failed", "interrupted") for _, status, _ in rows)
    assert "failed: 10-broken.wav: not an audio or video file" in second.stderr
    assert "Traceback" not in second.stderr
    outputs = sorted(p.relative_to(db.parent / "out").as_posix() for p in (db.parent / "out").rglob("*.json"))
    assert len(outputs) == 18 and "day2/02-d02.json" in outputs  # earlier runs' results written too


def test_a_second_run_transcribes_nothing(killed_and_restarted: dict, folder: Path, service) -> None:
    """In this process, over the same history (the models are loaded already): every file is skipped."""
    from funasr_webui.history import HistoryStore
    from funasr_webui.service import TranscriptionService

    history = HistoryStore(killed_and_restarted["db"])
    try:
        again = TranscriptionService(service.settings, service.pipeline, history)
        run = Ingest(again, folder, again.options(), recursive=True, report=lambda line: None)
        todo = list(run.pending(scan(folder, recursive=True)))
        assert todo == [] and (run.result.skipped, run.result.done, run.result.failed) == (20, 0, 0)
        assert len(records(killed_and_restarted["db"])) == len(history.search(limit=100).records)
    finally:
        history.close()


def test_settled_files_wait_for_a_copy_to_finish(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(b"x" * 10)
    c = scan(tmp_path, recursive=False)[0]
    settled = SettledFiles(settle=1.0)
    assert not settled.ready(c, now=100.0)  # just written
    assert not settled.ready(c, now=100.5)
    with path.open("ab") as f:
        f.write(b"y")
    assert not settled.ready(c, now=101.2)  # it grew: the clock starts again
    assert settled.ready(c, now=102.3)


def test_watch_takes_a_slowly_copied_file_once_complete(shared_audio: Path, tmp_path: Path) -> None:
    inbox, db = tmp_path / "inbox", tmp_path / "history.db"
    inbox.mkdir()
    cmd = ingest_cmd(inbox, db, "--watch", "--interval", "0.3")
    cmd[cmd.index("--settle") + 1] = "2"
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not db.exists() and time.monotonic() < deadline:  # the models are loaded and it polls
            time.sleep(0.2)
        data = (shared_audio / "zh" / "asr_example.wav").read_bytes()
        with (inbox / "call.wav").open("wb") as f:  # a slow copy: a chunk every 0.4 s, over ~4 s
            for i in range(0, len(data), len(data) // 10 + 1):
                f.write(data[i : i + len(data) // 10 + 1])
                f.flush()
                time.sleep(0.4)
        copied = time.monotonic()
        while time.monotonic() < deadline and not records(db):
            time.sleep(0.2)
        assert time.monotonic() - copied < 60, "the finished file was not taken"
        time.sleep(1.0)  # a few more polls: it is not taken again
        rows = records(db)
        assert [(src, status) for src, status, _ in rows] == [("call.wav", "done")]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.strip().splitlines()[-1].startswith("ingest: 1 done, 0 skipped, 0 failed")
