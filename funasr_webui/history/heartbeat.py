"""The lease on this process's jobs in a shared PostgreSQL history: renewed every HEARTBEAT_S while the process runs.

On one machine a job's owner is found gone by its pid (ownership.py); another machine cannot see that pid, so a
job there counts as interrupted once its lease (``jobs.heartbeat_at``, the server's clock) is LEASE_S old. The same
thread turns other machines' expired jobs into 'interrupted' records, so they show while every store stays open.
A forked child has no threads but its parent's store: the thread is started again in it (``os.register_at_fork``),
so the jobs the child starts keep their lease too.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref

from .connection import DB_ERRORS, Connections, write
from .jobs import LEASE_S, any_orphaned, reap
from .ownership import owner

log = logging.getLogger(__name__)

HEARTBEAT_S = 10.0


_BEATING: weakref.WeakSet[Heartbeat] = weakref.WeakSet()  # every running heartbeat of this process


class Heartbeat:
    def __init__(self, conns: Connections, every: float | None = None) -> None:
        """``every``: seconds between beats (HEARTBEAT_S)."""
        self._conns = conns
        self._every = HEARTBEAT_S if every is None else every
        self._start()
        _BEATING.add(self)

    def _start(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="history-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        beats = 0
        while not self._stop.wait(self._every):
            beats += 1
            try:
                self.beat(reap_too=beats * self._every >= LEASE_S / 2)
                if beats * self._every >= LEASE_S / 2:
                    beats = 0
            except DB_ERRORS as e:  # the server away for a moment: the next beat tries again
                log.warning("could not renew the history job lease: %s", " ".join(str(e).split()))
            except RuntimeError:  # the store was closed meanwhile
                return

    def beat(self, reap_too: bool = False) -> None:
        conn = self._conns.get()
        pid, token = owner()
        # One autocommit statement on this process's own rows: it need not wait for the write lock.
        conn.execute("UPDATE jobs SET heartbeat_at = now() WHERE owner_pid = ? AND owner_token = ?", (pid, token))
        if reap_too and any_orphaned(conn):
            with write(conn):
                for job in reap(conn):
                    log.warning("the transcription of %r lost its owner (its lease ran out): now interrupted"
                                " record #%d", job.name, job.record_id)  # fmt: skip

    def stop(self) -> None:
        self._stop.set()
        _BEATING.discard(self)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


def _restart_in_child() -> None:
    """After fork, in the child: the parent's heartbeat threads did not come along; start this process's own (its
    store opens fresh connections by itself, see Connections.get)."""
    for heartbeat in list(_BEATING):
        heartbeat._start()


os.register_at_fork(after_in_child=_restart_in_child)
