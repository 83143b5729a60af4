"""A real PostgreSQL server for the tests: Debian's PostgreSQL binaries, an ordinary cluster in a temporary folder,
listening on 127.0.0.1 on a free port with trust authentication, stopped and removed at the end of the run.

initdb refuses to run as root, so as root the cluster belongs to the ``postgres`` user (which Debian's
``postgresql`` package creates) and its commands run through ``runuser``. Each test gets a database of its own
(``CREATE DATABASE`` from a template that already has pg_trgm), dropped after it.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN_DIRS = [Path(f"/usr/lib/postgresql/{v}/bin") for v in (17, 16, 15, 14, 13)]
PG_USER = "postgres"  # the cluster's superuser, and the OS user that runs it when the tests run as root


def pg_bin() -> Path | None:
    """The folder of initdb/pg_ctl, newest PostgreSQL first; None where PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    return next((d for d in PG_BIN_DIRS if (d / "initdb").is_file()), None)


def why_not_available() -> str | None:
    """Why a test server cannot be started here (None: it can)."""
    if pg_bin() is None:
        return "PostgreSQL is not installed (apt-get install postgresql; ./run.sh test installs it as root)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            return f"running as root and there is no {PG_USER!r} user to run PostgreSQL as (apt-get install postgresql)"
    return None


class PostgresServer:
    def __init__(self, durable: bool = False) -> None:
        """``durable``: fsync and full-page writes on, as a real server runs (benchmarks); off for tests."""
        from tests.helpers import free_port

        self.bin = pg_bin()
        assert self.bin is not None
        self.root = Path(tempfile.mkdtemp(prefix="funasr-webui-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_root = os.geteuid() == 0
        self._names = itertools.count(1)
        self.durable = durable
        if self._as_root:  # initdb refuses root: the folder and the cluster belong to the postgres user
            user = pwd.getpwnam(PG_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self.root.chmod(0o755)

    def _run(self, *argv: str) -> None:
        cmd = [str(self.bin / argv[0]), *argv[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", PG_USER, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> PostgresServer:
        # C.UTF-8: pg_trgm then takes CJK characters as word characters (the C locale would drop them).
        self._run("initdb", "-D", str(self.data), "-U", PG_USER, "--auth=trust", "--encoding=UTF8",
                  "--locale=C.UTF-8", "--no-sync")  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root}"
            " -c max_connections=200"
        )
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w", "start")
        self._admin("CREATE DATABASE funasr_template")
        self._admin("CREATE EXTENSION pg_trgm", db="funasr_template")
        return self

    def url(self, db: str, user: str = PG_USER) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{db}"

    def _admin(self, sql: str, db: str = "postgres") -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.url(db), autocommit=True) as conn:
                    conn.execute(sql)
                return
            except psycopg.OperationalError:  # the template is busy for a moment (a copy being made)
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def new_database(self, empty: bool = False) -> str:
        """A fresh database's URL: with pg_trgm already there, or ``empty`` (the app must create it itself)."""
        name = f"t_{next(self._names)}"
        template = "template0" if empty else "funasr_template"
        self._admin(f"CREATE DATABASE {name} TEMPLATE {template}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
