"""Scaling out as README's "Scaling out" recipe sets it up, every program started from the files in deploy/ (the
systemd units and the nginx block README shows), as separate processes on one real PostgreSQL:

- two `serve --queue` page/API replicas and two `worker`s; the nightly `ingest --queue` unit queues a folder of
  shared audio; the workers share it out and the page's History tab (headless Chromium) lists every file, each one
  in the history exactly once;
- nginx (Debian's, unprivileged, in a temporary folder) in front of the two replicas: a record saved through one
  replica is seen through nginx and through both; the page works through nginx (Gradio's queue and its
  server-sent events): a single file, a batch the workers transcribe, live dictation from Chromium's fake
  microphone; each replica takes the browser's address from nginx's X-Forwarded-For (FORWARDED_ALLOW_IPS) and
  from nobody else.

Only this machine's values are put into the files (tests/deploy_units.py): this checkout for /opt/funasr-webui, the
test database for the URL, free ports, 127.0.0.1 for the replicas' and nginx's listening addresses and 127.0.0.10
for the one nginx connects from (the units' 10.0.0.10); FUNASR_WEBUI_ENGINE=whisper and FUNASR_WEBUI_THREADS=1 in
the environment pick the embedded engine (no Paraformer weights here).
"""

from __future__ import annotations

import http.client
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
import pytest
import requests
import soundfile as sf

from tests.deploy_units import CALLS_DIR, DEPLOY, load_unit
from tests.helpers import free_port, require
from tests.test_browser import RECOGNITION_TIMEOUT_MS, Session, browser, expect  # noqa: F401  (browser: a fixture)
from tests.test_live_ui import EXPECTED, SENTENCE_TIMEOUT_S, finished_part, open_live, says, shot, wait_for
from tests.test_live_ui import LAUNCH_ARGS as FAKE_MIC_ARGS

HERE = {"FUNASR_WEBUI_ENGINE": "whisper", "FUNASR_WEBUI_THREADS": "1"}  # this machine: the embedded engine
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NGINX_ADDRESS = "127.0.0.10"  # nginx's own address towards the replicas (10.0.0.10 in the units): the one they trust


def rows(url: str, sql: str, *params) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen
    log: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> int:
        """systemctl stop: SIGTERM, then wait (SIGKILL after 30 s, as systemd's TimeoutStopSec would)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


def start_unit(name: str, url: str, logs: Path, tag: str, env: dict[str, str] | None = None, **kw) -> Proc:
    unit = load_unit(name, url, **kw)
    log = logs / f"{tag}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(unit.exec_start, cwd=unit.working_directory, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **unit.environment, **HERE, **(env or {})})  # fmt: skip
    return Proc(tag, proc, log)


def wait_until(what: str, ready, procs: list[Proc], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        for p in procs:
            assert p.proc.poll() is None, f"{p.name} stopped:\n{p.tail()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def answers(url: str) -> bool:
    try:
        return requests.get(url + "/health", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


@dataclass
class Site:
    url: str  # the database
    replicas: list[str]  # the page/API replicas' base URLs
    ports: list[int]
    workers: list[Proc]
    logs: Path


@pytest.fixture(scope="module")
def site(postgres_server, tmp_path_factory) -> Iterator[Site]:
    """Two page/API replicas (funasr-web.service) and two workers (funasr-worker.service) on one database."""
    url = postgres_server.new_database()
    logs = tmp_path_factory.mktemp("site-logs")
    ports = [free_port(), free_port()]
    web = [
        start_unit(
            "funasr-web.service",
            url,
            logs,
            f"web{n}",
            {"FUNASR_WEBUI_PORT": str(port), "GRADIO_TEMP_DIR": str(tmp_path_factory.mktemp(f"gradio{n}"))},
            replace={"FORWARDED_ALLOW_IPS=10.0.0.10": f"FORWARDED_ALLOW_IPS={NGINX_ADDRESS}"},
        )  # fmt: skip
        for n, port in enumerate(ports)
    ]
    workers = [start_unit("funasr-worker.service", url, logs, f"worker{n}") for n in range(2)]
    replicas = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        wait_until("the replicas", lambda: all(answers(r) for r in replicas), web + workers)
        wait_until("the workers", lambda: len(rows(url, "SELECT 1 FROM queue_workers")) == 2, workers)
        yield Site(url, replicas, ports, workers, logs)
    finally:
        codes = {p.name: p.stop() for p in web + workers}
        postgres_server.drop_database(url)
    # systemctl stop: workers exit 0; uvicorn shuts down gracefully, then ends by the SIGTERM it caught (which
    # systemd counts as a clean stop)
    assert codes == {**{p.name: -signal.SIGTERM for p in web}, **{p.name: 0 for p in workers}}, codes
    assert all("Finished server process" in p.tail() for p in web)


@pytest.fixture(scope="module")
def night(shared_audio: Path, tmp_path_factory) -> tuple[Path, list[str]]:
    """Yesterday's folder of calls, as the nightly unit finds it: six short recordings, two in a subfolder."""
    root = tmp_path_factory.mktemp("calls")
    yesterday = subprocess.run(["date", "-d", "yesterday", "+%F"], capture_output=True, text=True).stdout.strip()
    day = root / yesterday
    names = []
    for n, clip in enumerate(sorted((shared_audio / "tts").glob("d0*.wav"))[:6]):
        name = f"{'team-b/' if n >= 4 else ''}call-{n + 1}.wav"
        (day / name).parent.mkdir(parents=True, exist_ok=True)
        samples, rate = sf.read(clip, dtype="float32")
        sf.write(day / name, np.concatenate([np.zeros(int(0.1 * n * rate), dtype="float32"), samples]), rate)
        old = time.time() - 3600  # recorded during the day: settled long ago
        os.utime(day / name, (old, old))
        names.append(name)
    return root, names


def test_two_workers_share_the_nightly_ingest_and_the_page_shows_every_result(
    site: Site,
    night: tuple[Path, list[str]],
    browser,  # noqa: F811
) -> None:
    root, names = night
    ingest = load_unit("funasr-ingest-queue.service", site.url, replace={CALLS_DIR + "/": f"{root}/"})
    queued = subprocess.run(ingest.exec_start, cwd=ingest.working_directory, capture_output=True, text=True,
                            env={**os.environ, **ingest.environment, **HERE}, timeout=120)  # fmt: skip
    assert queued.returncode == 0, queued.stderr
    assert f"ingest --queue: {len(names)} queued" in queued.stdout, queued.stdout

    def drained() -> bool:
        return rows(site.url, "SELECT count(*) FROM queue_jobs WHERE state IN ('queued', 'running')") == [(0,)]

    wait_until("the workers to drain the queue", drained, site.workers, timeout=240)
    records = rows(site.url, "SELECT name, status FROM records WHERE source <> 'api' ORDER BY name")
    assert records == [(n, "done") for n in sorted(names)]  # every file, once each
    done_by = rows(site.url, "SELECT w.pid, count(*) FROM queue_jobs j JOIN queue_workers w ON w.id = j.worker_id"
                             " GROUP BY w.pid")  # fmt: skip
    assert len(done_by) == 2, done_by  # both workers took a share

    s = Session(browser, site.replicas[0] + "/", "en-US")
    try:
        s.open()
        s.tab(3)  # History
        table = s.page.locator("#history-table")
        for name in names:
            expect(table).to_contain_text(name)
        s.shot("scale-out-history")
    finally:
        s.close()


# --------------------------------------------------------------------------- nginx in front of the replicas


@pytest.fixture(scope="module")
def nginx(site: Site) -> Iterator[str]:
    """deploy/nginx-funasr.conf in front of the two replicas, run by an unprivileged nginx in a temp folder."""
    require(Path(NGINX).is_file(), "nginx is not installed (apt-get install nginx; ./run.sh test installs it as root)")
    prefix = Path(tempfile.mkdtemp(prefix="funasr-webui-nginx-"))  # not under pytest's root-only folder
    port = free_port()
    block = (DEPLOY / "nginx-funasr.conf").read_text(encoding="utf-8")
    for old, new in [("10.0.0.11:7860", f"127.0.0.1:{site.ports[0]}"), ("10.0.0.12:7860", f"127.0.0.1:{site.ports[1]}"),
                     ("listen 80;", f"listen 127.0.0.1:{port};")]:  # fmt: skip
        assert old in block
        block = block.replace(old, new)
    (prefix / "funasr.conf").write_text(block, encoding="utf-8")
    # what Debian's /etc/nginx/nginx.conf around conf.d/ amounts to, with every path in the temp folder
    temp = " ".join(f"{k}_temp_path {prefix}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (prefix / "nginx.conf").write_text(
        f"worker_processes 1; pid {prefix}/nginx.pid; error_log {prefix}/error.log;\n"
        f"events {{}}\nhttp {{ access_log {prefix}/access.log; {temp} proxy_bind {NGINX_ADDRESS};"
        f" include {prefix}/funasr.conf; }}\n"
    )
    argv = [NGINX, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(prefix / "nginx.conf"),
            "-g", "daemon off;"]  # fmt: skip
    as_user = {}
    if os.geteuid() == 0:  # as root: run it as nobody, as an ordinary user would (high port, own folder)
        nobody = pwd.getpwnam("nobody")
        for path in [prefix, *prefix.iterdir()]:
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        as_user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    checked = subprocess.run([*argv[:-2], "-t"], capture_output=True, text=True, timeout=30, **as_user)
    assert checked.returncode == 0, checked.stderr
    log = prefix / "nginx.out"
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **as_user)
    front = f"http://127.0.0.1:{port}"
    try:
        wait_until("nginx", lambda: answers(front), [Proc("nginx", proc, log)], timeout=30)
        yield front
    finally:
        proc.terminate()  # nginx's fast stop (a graceful one waits for the page's open streams)
        proc.wait(timeout=30)
        shutil.rmtree(prefix, ignore_errors=True)


@pytest.fixture(scope="module")
def uploaded(site: Site, shared_audio: Path) -> int:
    """A recording transcribed and saved through the second replica's API: its record's id."""
    clip = (shared_audio / "zh" / "asr_example.wav").read_bytes()
    r = requests.post(site.replicas[1] + "/api/v1/transcriptions", files={"file": ("通过副本二.wav", clip)},
                      timeout=180)  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()["id"]


def test_nginx_in_front_of_two_replicas_shows_every_replicas_records(site: Site, nginx: str, uploaded: int) -> None:
    for base in [nginx, *site.replicas]:
        got = requests.get(f"{base}/api/v1/history/{uploaded}", timeout=10)
        assert got.status_code == 200 and got.json()["name"] == "通过副本二.wav", (base, got.text)
    health = requests.get(nginx + "/health", timeout=10).json()
    assert len(health["work_queue"]["workers"]) == 2  # the replica behind nginx sees both workers
    # an upload bigger than nginx's default 1 MB limit goes through: the app judges it, not nginx
    r = requests.post(nginx + "/api/v1/transcriptions", files={"file": ("big.wav", b"\0" * (3 * 1024 * 1024))},
                      timeout=60)  # fmt: skip
    assert r.status_code != 413 and "message_zh" in r.json()["error"], r.text


@pytest.mark.browser
def test_the_page_works_through_nginx(site: Site, nginx: str, uploaded: int, browser) -> None:  # noqa: F811
    s = Session(browser, nginx + "/", "zh-CN")
    try:
        s.open()  # the page, its assets and the header the server writes (a Gradio event: queue + SSE)
        s.tab(3)
        page = s.page
        expect(page.locator("#history-table")).to_contain_text("通过副本二.wav")
        page.locator("#history-query textarea").fill("不存在的内容")
        page.locator("#history-search").click()  # another event through nginx
        expect(page.locator("#history-page")).to_contain_text("没有符合条件的记录")
        s.tab(5)
        page.locator("#system-refresh").click()
        expect(page.locator("#system-table")).to_contain_text("在线工作进程 2 个")
        s.shot("scale-out-nginx")
        s.assert_only_local_requests()
    finally:
        s.close()


@pytest.mark.browser
def test_a_user_transcribes_through_nginx(
    site: Site,
    nginx: str,
    browser,  # noqa: F811
    chromium: Path,
    shared_audio: Path,
    tmp_path: Path,
) -> None:
    """Single file, a batch for the workers and live dictation, each through nginx (uploads, the queue's event
    stream, the microphone's stream); every result lands in the shared history."""
    # the dictation's microphone: a second of quiet, the sentence (without its faint lead-in, see test_live_ui)
    speech, rate = sf.read(shared_audio / "zh" / "asr_example.wav", dtype="int16")
    quiet = np.zeros(rate, np.int16)
    fake = tmp_path / "dictation.wav"
    sf.write(fake, np.concatenate([quiet, speech[int(0.85 * rate) :], quiet, quiet, quiet]), rate)
    before = {name for (name,) in rows(site.url, "SELECT name FROM records")}
    mic = [*FAKE_MIC_ARGS, f"--use-file-for-fake-audio-capture={fake}"]
    chrome = browser.browser_type.launch(executable_path=str(chromium), headless=True, args=mic)
    page = None
    try:
        context, page = open_live(chrome, nginx + "/", "en-US")  # the page opens on its Microphone tab
        page.locator("#mic-live-audio").get_by_role("button", name="Record").click()
        expect(page.locator("#mic-live-status")).to_contain_text("Listening")
        wait_for(page, lambda text: says(finished_part(text), EXPECTED), SENTENCE_TIMEOUT_S, "no sentence")
        page.locator("#mic-live-audio").get_by_role("button", name="Stop").click()
        expect(page.locator("#mic-live-status")).to_contain_text("saved in History (#", timeout=30_000)

        page.get_by_role("tab").nth(0).click()  # Single file: the upload goes through nginx to one replica
        page.locator("#single-file input[type=file]").set_input_files(str(shared_audio / "zh" / "mid.wav"))
        page.locator("#single-start").click()
        expect(page.locator("#single-status")).to_contain_text("saved in History", timeout=RECOGNITION_TIMEOUT_MS)
        expect(page.locator("#single-text textarea")).to_have_value(re.compile("肯德基"))

        page.get_by_role("tab").nth(1).click()  # Batch: queued for the workers, the table fills in as they finish
        batch = [str(shared_audio / "tts" / n) for n in ("d07.wav", "d08.wav")]  # not in the night's folder
        page.locator("#batch-files input[type=file]").set_input_files(batch)
        page.locator("#batch-start").click()
        done = "2 files on the work queue: 2 done"
        expect(page.locator("#batch-status")).to_contain_text(done, timeout=2 * RECOGNITION_TIMEOUT_MS)
        expect(page.locator("#batch-zip")).to_be_enabled()
        shot(page, "scale-out-nginx-batch")
        context.close()
    except BaseException:
        if page is not None and not page.is_closed():
            shot(page, "last-test_a_user_transcribes_through_nginx")
        raise
    finally:
        chrome.close()
    added = sorted(name for (name,) in rows(site.url, "SELECT name FROM records") if name not in before)
    assert [n for n in added if not n.startswith("dictation-")] == ["d07.wav", "d08.wav", "mid.wav"], added
    assert len([n for n in added if n.startswith("dictation-")]) == 1, added  # the dictation, once


def get_from(address: str, port: int, path: str, headers: dict[str, str] | None = None) -> int:
    """GET path from port on 127.0.0.1, the connection made from ``address`` (another loopback address: another
    machine, as far as the server can tell)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(address, 0))
    try:
        conn.request("GET", path, headers=headers or {})
        return conn.getresponse().status
    finally:
        conn.close()


def test_replicas_take_the_browsers_address_from_nginx_and_from_nobody_else(site: Site, nginx: str) -> None:
    # what the per-client limits count: the browser behind nginx (FORWARDED_ALLOW_IPS names nginx) ...
    front = int(nginx.rsplit(":", 1)[1])
    assert get_from("127.0.0.7", front, "/health?from=browser") == 200
    # ... while a client that talks to a replica directly cannot claim another address
    assert get_from("127.0.0.8", site.ports[0], "/health?from=forger", {"X-Forwarded-For": "203.0.113.9"}) == 200
    logs = "".join(p.read_text(errors="replace") for p in sorted(site.logs.glob("web*.log")))
    assert re.search(r"127\.0\.0\.7:\d+ - \"GET /health\?from=browser", logs), logs[-2000:]
    assert re.search(r"127\.0\.0\.8:\d+ - \"GET /health\?from=forger", logs), logs[-2000:]
    assert "203.0.113.9" not in logs
