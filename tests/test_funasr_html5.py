"""FunASR's own html5 client (tests/funasr_html5/, unmodified) in headless Chromium against our FunASR listener:
served from a web server of its own as FunASR's h5Server.py serves it, with Chromium's fake microphone playing a
shared recording. 2pass and file mode over ws://, online over wss:// (the self-signed certificate)."""

from __future__ import annotations

import functools
import re
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from funasr_webui import tls
from funasr_webui.metrics import cer
from tests.browser_setup import ARTIFACTS, LAUNCH_ARGS, playwright_sync_api
from tests.helpers import LiveServer, free_port

pytestmark = pytest.mark.browser

CLIENT = Path(__file__).parent / "funasr_html5"
EXPECTED = "欢迎大家来体验达摩院推出的语音识别模型"  # zh/asr_example.wav
LEAD_S = 2.0  # quiet before the sentence in the fake microphone's recording
MIC_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
TIMED_LINE = re.compile(r"^(\d+(?:\.\d+)?):(.+)$")  # how the client shows a final with a timestamp: "2.1:欢迎…"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request lines on stderr
        pass


@contextmanager
def page_server(certfile: Path | None = None, keyfile: Path | None = None) -> Iterator[str]:
    """The client's static files from a server of its own (another port than the listener: another origin)."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), functools.partial(QuietHandler, directory=str(CLIENT)))
    if certfile is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if certfile else 'http'}://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()


def fake_microphone(shared_audio: Path, tmp_path: Path) -> Path:
    speech, rate = sf.read(shared_audio / "zh" / "asr_example.wav", dtype="int16")
    quiet = np.zeros(int(rate * LEAD_S), np.int16)
    path = tmp_path / "microphone.wav"
    sf.write(path, np.concatenate([quiet, speech, quiet, quiet]), rate)  # Chromium plays it in a loop
    return path


def result_text(page) -> str:
    return page.locator("#varArea").input_value()


def wait_until(page, condition, timeout_s: float, what: str) -> str:
    """Poll the client's result text area until condition(text)."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = result_text(page)
        if condition(text):
            return text
        assert time.monotonic() < deadline, f"{what} within {timeout_s} s; the client shows {text!r}"
        page.wait_for_timeout(250)


def saved(service, count: int) -> list:
    """The websocket records, once `count` are saved (a connection's record is written as it closes)."""
    deadline = time.monotonic() + 30
    while len(records := service.history.search("", source="websocket").records) < count:
        assert time.monotonic() < deadline, f"{len(records)} of {count} connections saved"
        time.sleep(0.2)
    return records


def timed_lines(text: str) -> list[tuple[float, str]]:
    return [(float(m[1]), m[2]) for m in map(TIMED_LINE.match, text.splitlines()) if m]


def first_sentence(lines: list[tuple[float, str]]) -> bool:
    return bool(lines) and cer(EXPECTED, "".join(t for _, t in lines)[: len(EXPECTED)]) <= 0.2


def connect(page, url: str) -> None:
    page.fill("#wssip", url)
    page.click("#btnConnect")
    page.wait_for_function("!document.getElementById('btnStart').disabled", timeout=30_000)  # "连接成功"


@contextmanager
def chromium_page(chromium: Path, extra_args: list[str], name: str):
    sync_api = playwright_sync_api()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=[*LAUNCH_ARGS, *extra_args])
        page = browser.new_context(permissions=["microphone"]).new_page()
        page.on("dialog", lambda d: d.dismiss())  # the client alert()s on a failed connection: the test then fails
        try:
            yield page
        except BaseException:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"last-{name}.png"), full_page=True)
            raise
        finally:
            browser.close()


def test_html5_client_2pass_microphone_and_file_mode(
    chromium: Path, funasr_ws, service, shared_audio: Path, tmp_path: Path
) -> None:
    _, ws_url = funasr_ws
    mic = fake_microphone(shared_audio, tmp_path)
    with page_server() as page_url, chromium_page(chromium, [*MIC_ARGS, f"--use-file-for-fake-audio-capture={mic}"],
                                                  "html5-2pass") as page:  # fmt: skip
        page.goto(page_url)
        connect(page, ws_url + "/")
        page.click("#btnStart")  # 2pass is the page's default mode; its default hotwords go along
        text = wait_until(page, lambda s: first_sentence(timed_lines(s)), 90, "no 2pass final")
        page.click("#btnStop")
        lines = timed_lines(text)
        # the final's timestamp, on the stream's clock: the sentence began after the recording's quiet lead
        assert LEAD_S - 0.8 <= lines[0][0] <= LEAD_S + 1.5, lines
        page.wait_for_function("!document.getElementById('btnConnect').disabled", timeout=30_000)  # closed

        # file mode: the whole .wav, its header and all, in 960-byte slices; the offline result closes the socket
        page.check("input[name=recoder_mode][value=file]")
        with page.expect_file_chooser() as chooser:
            page.click("#upfile")
        chooser.value.set_files(str(shared_audio / "zh" / "asr_example.wav"))
        page.wait_for_function("document.getElementById('info_div').innerText.includes('请点击连接')")
        page.click("#btnConnect")
        text = wait_until(page, lambda s: first_sentence(timed_lines(s)), 90, "no file-mode result")
        assert timed_lines(text)[0][0] < 1.0  # a file's times are the file's
        page.wait_for_function("document.getElementById('audio_record').src.startsWith('blob:')")  # it played back
    records = saved(service, 2)
    assert len(records) == 2 and {r.name for r in records} == {"h5"}  # the client's wav_name
    assert all(cer(EXPECTED, r.text[: len(EXPECTED)]) <= 0.2 for r in records), [r.text for r in records]


def test_html5_client_online_over_wss(chromium: Path, service, shared_audio: Path, tmp_path: Path) -> None:
    from funasr_webui.server import create_app

    service.settings.ssl_self_signed = True
    resolved = tls.resolve(service.settings)
    cert, key = resolved.ssl_certfile, resolved.ssl_keyfile
    service.settings.ssl_certfile, service.settings.ssl_keyfile = cert, key
    service.settings.funasr_ws_port = port = free_port()
    mic = fake_microphone(shared_audio, tmp_path)
    args = [*MIC_ARGS, f"--use-file-for-fake-audio-capture={mic}", "--ignore-certificate-errors"]
    with (
        LiveServer(create_app(service), ssl_certfile=str(cert), ssl_keyfile=str(key)),
        page_server(cert, key) as page_url,  # served over https, as h5Server.py does: the page is a secure one
        chromium_page(chromium, args, "html5-online-wss") as page,
    ):
        page.goto(page_url)
        assert page.evaluate("window.isSecureContext")
        page.check("input[name=asr_mode][value=online]")
        connect(page, f"wss://127.0.0.1:{port}/")
        page.click("#btnStart")
        # online text is appended as it comes (no final pass replaces it): the sentence grows in the text area
        wait_until(page, lambda s: cer(EXPECTED, s[: len(EXPECTED)]) <= 0.25, 90, "no online text")
        page.click("#btnStop")
        page.wait_for_function("!document.getElementById('btnConnect').disabled", timeout=30_000)
    [record] = saved(service, 1)
    assert record.name == "h5" and cer(EXPECTED, record.text[: len(EXPECTED)]) <= 0.2
