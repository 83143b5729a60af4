"""HTTPS: the self-signed certificate made once beside the database, a bad certificate refused at start-up, and
the page, the API, FunASR's client (wss, its default) and live dictation in Chromium, all over https on loopback."""

from __future__ import annotations

import ipaddress
import ssl
import stat
from pathlib import Path

import httpx
import openai
import pytest
import requests
from cryptography import x509
from websockets.sync.client import connect

from funasr_webui import tls
from funasr_webui.metrics import cer
from funasr_webui.server import create_app, serve
from funasr_webui.settings import Settings
from funasr_webui.ui.tabs.system import SystemCallbacks
from tests.funasr_ws_helpers import client_failed, run_funasr_client
from tests.helpers import LiveServer, free_port
from tests.test_live_ui import EXPECTED, LAUNCH_ARGS, finished_part, open_live, says, shot, wait_for


@pytest.fixture
def https_service(service, tmp_path: Path):
    """The service with a self-signed certificate of its own (made as --ssl-self-signed makes it)."""
    service.settings.ssl_self_signed = True
    resolved = tls.resolve(service.settings)
    service.settings.ssl_certfile, service.settings.ssl_keyfile = resolved.ssl_certfile, resolved.ssl_keyfile
    return service


def https_server(service) -> LiveServer:
    s = service.settings
    return LiveServer(create_app(service), ssl_certfile=str(s.ssl_certfile), ssl_keyfile=str(s.ssl_keyfile))


def test_self_signed_certificate_is_made_once_beside_the_database(tmp_path: Path) -> None:
    settings = Settings(db=tmp_path / "data" / "history.db", ssl_self_signed=True, allowed_hosts=["asr.office.lan"])
    resolved = tls.resolve(settings)
    assert resolved.ssl_certfile == tmp_path / "data" / "history-https.crt"
    assert resolved.ssl_keyfile == tmp_path / "data" / "history-https.key"
    assert stat.S_IMODE(resolved.ssl_keyfile.stat().st_mode) == 0o600  # the private key: this user only
    cert = x509.load_pem_x509_certificate(resolved.ssl_certfile.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "asr.office.lan"} <= set(san.get_values_for_type(x509.DNSName))
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    first = resolved.ssl_certfile.read_bytes()
    assert tls.resolve(settings).ssl_certfile.read_bytes() == first  # kept: the browser's exception stays valid
    # a name the certificate does not cover yet: a new one that covers it
    renewed = tls.resolve(settings.model_copy(update={"allowed_hosts": ["asr.office.lan", "asr2.office.lan"]}))
    assert renewed.ssl_certfile.read_bytes() != first
    assert "asr2.office.lan" in tls.certificate_names(renewed.ssl_certfile)


def test_a_bad_certificate_stops_the_start_with_one_line(tmp_path: Path, capsys) -> None:
    missing = Settings(db=tmp_path / "h.db", ssl_certfile=tmp_path / "nope.crt", ssl_keyfile=tmp_path / "nope.key")
    assert serve(missing) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot use the certificate") and "nope.crt" in err and "\n" not in err
    assert serve(Settings(db=tmp_path / "h.db", ssl_keyfile=tmp_path / "k.pem")) == 2
    assert "--ssl-keyfile needs --ssl-certfile" in capsys.readouterr().err


def test_page_api_and_funasr_client_over_https(https_service, shared_audio: Path, tmp_path: Path) -> None:
    cert = str(https_service.settings.ssl_certfile)
    https_service.settings.funasr_ws_port = port = free_port()
    with https_server(https_service) as server:
        assert server.url.startswith("https://")
        page = requests.get(server.url + "/", verify=cert, timeout=30)  # the certificate is valid for 127.0.0.1
        assert page.status_code == 200 and "<html" in page.text.lower()
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="sk", http_client=httpx.Client(verify=cert))
        with (shared_audio / "zh" / "asr_example.wav").open("rb") as f:
            assert cer(EXPECTED, client.audio.transcriptions.create(model="whisper-1", file=f).text) <= 0.2
        # FunASR's client connects with wss:// by default (--ssl 1): it works without any option
        run = run_funasr_client(port, shared_audio / "zh" / "asr_example.wav", "offline", tmp_path)
        assert client_failed(run) is None and "connect to wss://" in run.output, run.output
        assert cer(EXPECTED, next(e["text"] for e in run.events if e["text"])) <= 0.2
        # /health and the System tab say both are on, and how many FunASR clients are connected now
        context = ssl.create_default_context(cafile=cert)
        with connect(f"wss://127.0.0.1:{port}/", ssl=context):
            health = requests.get(server.url + "/health", verify=cert, timeout=30).json()
            rows = dict(SystemCallbacks(https_service).system_rows("en"))
        assert health["https"]["enabled"] is True and health["https"]["self_signed"] is True
        assert health["https"]["valid_until"] > "2027"  # 825 days
        assert health["funasr_ws"] == {"port": port, "secure": True, "connections": 1, "max_connections": 4}
        assert rows["sys_funasr_ws"].endswith(f":{port}: 1 of at most 4 connections now")
        assert rows["sys_funasr_ws"].startswith("wss://")
        assert rows["sys_https"].startswith("on, self-signed certificate for ") and "127.0.0.1" in rows["sys_https"]


@pytest.mark.browser
def test_live_dictation_over_https_in_chromium(chromium: Path, https_service, shared_audio: Path, tmp_path: Path):
    """The microphone needs a secure page: over https (the test certificate's warning clicked away, as a user
    does once) the page is one, and live dictation works with Chromium's fake microphone."""
    import numpy as np
    import soundfile as sf

    from tests.browser_setup import playwright_sync_api

    sync_api = playwright_sync_api()
    speech, rate = sf.read(shared_audio / "zh" / "asr_example.wav", dtype="int16")
    fake = tmp_path / "dictation.wav"
    quiet = np.zeros(rate, np.int16)
    sf.write(fake, np.concatenate([quiet, speech[int(0.85 * rate) :], quiet, quiet, quiet]), rate)
    args = [*LAUNCH_ARGS, f"--use-file-for-fake-audio-capture={fake}", "--ignore-certificate-errors"]
    with https_server(https_service) as server, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=args)
        page = None
        try:
            context, page = open_live(browser, server.url + "/", "en-US")
            assert page.evaluate("window.isSecureContext && location.protocol") == "https:"
            page.locator("#mic-live-audio").get_by_role("button", name="Record").click()
            wait_for(page, lambda text: says(finished_part(text), EXPECTED), 60, "no finished sentence over https")
            page.locator("#mic-live-audio").get_by_role("button", name="Stop").click()
            sync_api.expect(page.locator("#mic-live-status")).to_contain_text("saved in History (#", timeout=30_000)
            context.close()
        except BaseException:
            if page is not None and not page.is_closed():
                shot(page, "last-test_live_dictation_over_https_in_chromium")
            raise
        finally:
            browser.close()
    assert https_service.history.search("", source="microphone").total == 1
