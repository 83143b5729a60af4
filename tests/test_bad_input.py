"""The bad-input matrix through each way in (CLI, page, API): empty, 1 ms, truncated, random bytes, text, damaged
headers, odd rates and channel counts, 4 hours of silence, an oversized file, a silent video, odd file names and
10,000 hotwords. Each must give a clear error or a correct result, leave the server healthy, and leave no partial
record: a success is one "done" record, a file the service refused is at most one "failed" record with its error.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from gradio_client import Client

from funasr_webui.cli import printable
from funasr_webui.history import HistoryStore, Record
from funasr_webui.service import TranscriptionService
from funasr_webui.settings import PROJECT_ROOT, Settings
from tests import media_samples as ms
from tests.helpers import LiveServer, assert_healthy, fast_shutdown

HTTP_TIMEOUT_S = 120
CLI_TIMEOUT_S = 480
STATUS, TEXT = 0, 1  # output positions of the page's single-file callback
# Refused before the service sees the file, so nothing is saved; every other refusal saves one failed record.
REFUSED_UP_FRONT = {
    "api": {"too_big", "too_many_hotwords"},
    "page": {"too_big", "too_many_hotwords"},
    "cli": {"too_many_hotwords"},
}


# What a user must read for each refused case, written out here (never built by the code under test): the English
# and Chinese messages after the file name ("name: " / "name："), limits included.
MESSAGES = {
    "empty": ("the file is empty (no audio data)", "文件为空（没有音频数据）"),
    "truncated_wav": (
        "the file is incomplete (cut off before its end); please upload the whole file",
        "文件不完整（在结尾之前被截断），请重新上传完整文件",
    ),
    "random_bytes_mp3": ("not an audio or video file we can read", "无法识别的音频或视频文件"),
    "text_file": ("not an audio or video file we can read", "无法识别的音频或视频文件"),
    "zero_channels": (
        "the audio could not be decoded (damaged file or unsupported format)",
        "音频无法解码（文件已损坏或格式不受支持）",
    ),
    "zero_rate": (
        "the audio could not be decoded (damaged file or unsupported format)",
        "音频无法解码（文件已损坏或格式不受支持）",
    ),
    "four_hours_silence": (
        "the audio is too long (4:00:00; the limit is 3:00:00)",
        "音频时长超出限制（4:00:00，上限 3:00:00）",
    ),
    "over_size_limit": ("the file is too big (20.0 MB; the limit is 16.0 MB)", "文件过大（20.0 MB，上限 16.0 MB）"),
    "video_no_audio": ("the file has no audio track", "文件中没有音轨"),
}
# Messages that name no file.
HOTWORDS_MESSAGE = ("too many hotwords: 10000 given, at most 100 allowed", "热词过多：共 10000 个，最多允许 100 个")
API_TOO_BIG = ("the upload is too big (20.0 MB; the limit is 16.0 MB)", "上传文件过大（20.0 MB，上限 16.0 MB）")


def expected_message(case: ms.Case, name: str, lang: str = "en") -> str:
    """The whole message a user must read for ``case`` when the file is shown as ``name``."""
    zh = lang == "zh"
    if case.error == "too_many_hotwords":
        return HOTWORDS_MESSAGE[zh]
    return f"{name}：{MESSAGES[case.id][1]}" if zh else f"{name}: {MESSAGES[case.id][0]}"


def assert_transcript(case: ms.Case, text: str) -> None:
    """A case that must transcribe: its speech is heard, or, with no speech in the file, the transcript is empty."""
    assert case.error is None
    if case.mark:
        assert case.mark in text, text
    else:  # 1 ms of sound, or a silent clip: a correct transcript says nothing
        assert text == "", text


def stored_name(name: str) -> str:
    """A file name as History stores it: undecodable bytes become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def multipart(field: str, filename: bytes, content: bytes, fields: dict[str, str]) -> tuple[bytes, str]:
    """A multipart/form-data body built by hand, so a file name can be any bytes (as some clients send them)."""
    boundary = uuid.uuid4().hex.encode()
    parts = [
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + k.encode() + b'"\r\n\r\n' + v.encode()
        for k, v in fields.items()
    ]
    parts.append(
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + field.encode() + b'"; filename="'
        + filename + b'"\r\nContent-Type: application/octet-stream\r\n\r\n' + content
    )  # fmt: skip
    body = b"\r\n".join(parts) + b"\r\n--" + boundary + b"--\r\n"
    return body, "multipart/form-data; boundary=" + boundary.decode()


def upload_name(case: ms.Case) -> bytes:
    return os.fsencode(case.upload_name or case.file_name)  # the raw bytes for the non-UTF-8 name


def new_records(history: HistoryStore, before: set[int]) -> list[Record]:
    return [rec for i in sorted(set(history.search_ids()) - before) if (rec := history.get(i)) is not None]


def assert_no_partial_record(case: ms.Case, path: str, records: list[Record], message: str) -> None:
    assert all(r.status == "failed" and r.text == "" for r in records), [(r.status, r.text) for r in records]
    if case.error in REFUSED_UP_FRONT[path]:
        assert records == []
    else:
        assert len(records) == 1 and records[0].error == message, [r.error for r in records]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad_input")
    return {case.id: ms.build_case(case, folder) for case in ms.CASES}


def content_of(media: dict[str, Path], case: ms.Case) -> bytes:
    with open(os.fsencode(media[case.id]), "rb") as f:
        return f.read()


# --------------------------------------------------------------------------- CLI (started first: models load meanwhile)


@dataclass
class CliRun:
    proc: subprocess.Popen
    db: Path
    out: Path
    err: Path

    def wait(self) -> CliRun:
        self.proc.wait(timeout=CLI_TIMEOUT_S)
        return self

    @property
    def stdout(self) -> str:
        return self.out.read_bytes().decode("utf-8", "surrogateescape")

    @property
    def stderr(self) -> str:
        return self.err.read_bytes().decode("utf-8", "backslashreplace")

    def records(self) -> list[Record]:
        with HistoryStore(self.db) as history:
            return history.search(limit=100).records


def start_cli(folder: Path, name: str, files: list[Path], *extra: str, io_encoding: str) -> CliRun:
    run = CliRun(None, folder / f"{name}.db", folder / f"{name}.out", folder / f"{name}.err")  # type: ignore[arg-type]
    env = {**os.environ, "FUNASR_WEBUI_MAX_UPLOAD_MB": str(ms.MAX_UPLOAD_MB), "PYTHONIOENCODING": io_encoding}
    with open(run.out, "wb") as out, open(run.err, "wb") as err:
        run.proc = subprocess.Popen(
            [sys.executable, "-m", "funasr_webui", "transcribe", *map(str, files), *extra]
            + ["--offline", "--engine", "whisper", "--db", str(run.db)],
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=err,
            env=env,
        )
    return run


@dataclass
class CliRuns:
    matrix: CliRun  # every case but the hotwords in one run, as a user would transcribe a folder
    hotwords: CliRun
    strict_stdout: CliRun  # a non-UTF-8 name printed to a strict UTF-8 stdout (a usual desktop locale)


@pytest.fixture(scope="module", autouse=True)
def cli_runs(media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliRuns]:
    """Autouse, so the three CLI processes start before this module's first test and load their models while the
    page and API tests run; the CLI tests at the end wait for them."""
    folder = tmp_path_factory.mktemp("cli")
    words = folder / "hotwords.txt"
    words.write_text(ms.TEN_THOUSAND_HOTWORDS, encoding="utf-8")
    files = [media[c.id] for c in ms.CASES if c.hotwords is None]
    runs = CliRuns(
        matrix=start_cli(folder, "matrix", files, io_encoding="utf-8:surrogateescape"),
        hotwords=start_cli(folder, "hotwords", [media["10000_hotwords"]], "--hotwords", str(words), io_encoding=""),
        strict_stdout=start_cli(folder, "strict", [media["non_utf8_name"], media["one_ms"]], io_encoding="utf-8"),
    )
    yield runs
    for run in (runs.matrix, runs.hotwords, runs.strict_stdout):
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait(timeout=30)


# --------------------------------------------------------------------------- servers (one per way in: the page
# answers a file it already transcribed from History, which would hide the API's records of the same files)


@contextmanager
def matrix_server(folder: Path, whisper_pipeline: Any) -> Iterator[tuple[LiveServer, TranscriptionService]]:
    from funasr_webui.server import create_app

    settings = Settings(
        engine="whisper",
        offline=True,
        threads=2,
        device="cpu",
        db=folder / "history.db",
        max_upload_mb=ms.MAX_UPLOAD_MB,
    )
    history = HistoryStore(settings.db)
    service = TranscriptionService(settings, whisper_pipeline, history)
    try:
        with fast_shutdown(LiveServer(create_app(service))) as server:
            yield server, service
    finally:
        history.close()


@pytest.fixture(scope="module")
def api_server(whisper_pipeline: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    with matrix_server(tmp_path_factory.mktemp("api"), whisper_pipeline) as server:
        yield server


@pytest.fixture(scope="module")
def page_server(whisper_pipeline: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    with matrix_server(tmp_path_factory.mktemp("page"), whisper_pipeline) as server:
        yield server


@pytest.fixture
def api(api_server: tuple[LiveServer, TranscriptionService], whisper_pipeline: Any, monkeypatch) -> tuple:
    # decoding reads its limits from the pipeline's settings: this server's for this test, the pipeline's own after
    monkeypatch.setattr(whisper_pipeline, "settings", api_server[1].settings)
    return api_server


@pytest.fixture(scope="module")
def page_client(page_server: tuple[LiveServer, TranscriptionService]) -> Iterator[Client]:
    client = Client(page_server[0].url, verbose=False, download_files=False)
    yield client
    client.close()


@pytest.fixture
def page(
    page_server: tuple[LiveServer, TranscriptionService], page_client: Client, whisper_pipeline: Any, monkeypatch
) -> tuple:
    monkeypatch.setattr(whisper_pipeline, "settings", page_server[1].settings)  # as in ``api``
    return page_server[0], page_server[1], page_client


# --------------------------------------------------------------------------- API


@pytest.mark.parametrize("case", ms.CASES, ids=ms.CASE_IDS)
def test_api_bad_input(case: ms.Case, api: tuple, media: dict[str, Path]) -> None:
    server, service = api
    before = set(service.history.search_ids())
    fields = {"hotwords": case.hotwords} if case.hotwords else {}
    body, ctype = multipart("file", upload_name(case), content_of(media, case), fields)
    r = requests.post(
        server.url + "/api/v1/transcriptions", data=body, headers={"Content-Type": ctype}, timeout=HTTP_TIMEOUT_S
    )
    records = new_records(service.history, before)
    assert_healthy(server.url)
    if case.error is None:
        assert r.status_code == 200, r.text
        answer = r.json()
        assert_transcript(case, answer["text"])
        assert answer["warning"] is None
        assert answer["name"].isprintable() and answer["name"].endswith(".wav") and len(answer["name"]) <= 200
        assert [(rec.id, rec.status, rec.text) for rec in records] == [(answer["id"], "done", answer["text"])]
        return
    assert r.status_code == case.status, r.text
    err = r.json()["error"]
    assert err["code"] == case.error, err
    if case.error == "too_big":  # the API refuses an oversized upload with its own message, before decoding
        assert (err["message"], err["message_zh"]) == API_TOO_BIG, err
    else:
        assert err["message"] == expected_message(case, case.file_name), err["message"]
        assert err["message_zh"] == expected_message(case, case.file_name, "zh"), err["message_zh"]
    assert_no_partial_record(case, "api", records, err["message"])


# --------------------------------------------------------------------------- page


def page_upload(url: str, name: bytes, content: bytes) -> requests.Response:
    """What the browser does first: the file goes to Gradio's upload route; the event then names the stored file."""
    body, ctype = multipart("files", name, content, {})
    return requests.post(url + "/gradio_api/upload", data=body, headers={"Content-Type": ctype}, timeout=60)


@pytest.mark.parametrize("case", ms.CASES, ids=ms.CASE_IDS)
def test_page_bad_input(case: ms.Case, page: tuple, media: dict[str, Path]) -> None:
    server, service, client = page
    before = set(service.history.search_ids())
    uploaded = page_upload(server.url, upload_name(case), content_of(media, case))
    if case.error == "too_big":  # the page's own upload limit refuses it before any event runs
        assert uploaded.status_code == 413 and "maximum" in uploaded.text, uploaded.text
        assert new_records(service.history, before) == []
        assert_healthy(server.url)
        return
    assert uploaded.status_code == 200, uploaded.text
    stored = uploaded.json()[0]
    file = {"path": stored, "meta": {"_type": "gradio.FileData"}}
    out = client.predict(file, case.hotwords or "", True, "auto", "en", api_name="/single_start")
    records = new_records(service.history, before)
    assert_healthy(server.url)
    if case.error is None:
        if case.mark:
            assert out[STATUS].startswith("✔"), out[STATUS]
        else:
            assert out[STATUS].startswith("ℹ Done, but no speech was found in this recording."), out[STATUS]
        assert_transcript(case, out[TEXT])
        assert [(r.status, r.text, r.source) for r in records] == [("done", out[TEXT], Path(stored).name)]
        return
    shown = out[STATUS].removeprefix("⚠ ").replace("\\", "")  # the status line is Markdown-escaped
    assert out[STATUS].startswith("⚠") and shown == expected_message(case, Path(stored).name), shown
    assert out[TEXT] == ""
    assert_no_partial_record(case, "page", records, shown)


# --------------------------------------------------------------------------- CLI


def cli_sections(stdout: str) -> dict[str, str]:
    """The printed transcripts of a multi-file run: ``==> name <==`` then the text."""
    sections: dict[str, str] = {}
    name = None
    for line in stdout.splitlines():
        if line.startswith("==> ") and line.endswith(" <=="):
            name = line[4:-4]
            sections[name] = ""
        elif name is not None:
            sections[name] += line
    return sections


def test_cli_matrix_run_exits_1_without_a_traceback(cli_runs: CliRuns) -> None:
    run = cli_runs.matrix.wait()
    assert run.proc.returncode == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]


@pytest.mark.parametrize("case", [c for c in ms.CASES if c.hotwords is None], ids=lambda c: c.id)
def test_cli_bad_input(case: ms.Case, cli_runs: CliRuns) -> None:
    run = cli_runs.matrix.wait()
    sections = cli_sections(run.stdout)
    records = [r for r in run.records() if r.source == stored_name(case.file_name)]
    shown = printable(case.file_name)  # undecodable bytes of a name are printed as U+FFFD
    if case.error is None:
        assert shown in sections, (shown, list(sections))
        assert_transcript(case, sections[shown])
        assert [(r.status, r.text) for r in records] == [("done", sections[shown])]
        return
    message = expected_message(case, case.file_name)
    errors = [line.removeprefix("error: ") for line in run.stderr.splitlines() if line.startswith("error: ")]
    mine = [e for e in errors if e == message]
    assert len(mine) == 1, (message, errors)
    assert shown not in sections
    assert_no_partial_record(case, "cli", records, mine[0])


def test_cli_refuses_10000_hotwords_before_any_file(cli_runs: CliRuns) -> None:
    run = cli_runs.hotwords.wait()
    assert run.proc.returncode == 2, run.stderr[-3000:]
    assert "error: too many hotwords: 10000 given, at most 100 allowed" in run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""
    assert run.records() == []


def test_cli_prints_a_non_utf8_file_name_on_a_strict_utf8_stdout(cli_runs: CliRuns) -> None:
    run = cli_runs.strict_stdout.wait()
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    assert run.proc.returncode == 0
    sections = cli_sections(run.stdout)
    assert sections == {"rec-\ufffd\ufffd-\ufffdt\ufffd.wav": "", "one_ms.wav": ""}, sections  # no speech in either
