"""The API's transcription queue: a bounded number of requests in flight, a share per client, own threads."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
from starlette.requests import Request

from ..engine import TranscribeOptions
from ..errors import UserError

log = logging.getLogger(__name__)

RETRY_AFTER_S = 10  # what a 503 asks the client to wait; one short file takes a few seconds
DISCONNECT_POLL_S = 0.5  # how often a running transcription looks whether its client is still there

T = TypeVar("T")


class TranscriptionQueue:
    """Counts transcription requests in flight and runs them on a small thread pool of their own.

    The pipeline runs one job at a time anyway; two threads let the next file decode while one is recognized,
    and waiting requests wait on the event loop instead of filling the thread pool the page and history share.
    A slot is taken only once the upload is complete (a slow upload holds nobody's place), and one client may
    hold at most `per_client` of them, so a single caller cannot fill the queue.
    """

    def __init__(self, max_waiting: int, per_client: int, workers: int = 2) -> None:
        self.max_waiting = max_waiting
        self.per_client = per_client
        self.in_flight = 0
        self.by_client: dict[str, int] = {}
        self.limiter = anyio.CapacityLimiter(workers)

    @asynccontextmanager
    async def slot(self, client: str) -> AsyncIterator[None]:
        busy = {"Retry-After": str(RETRY_AFTER_S)}
        if self.in_flight > self.max_waiting:  # one runs, the others wait: refuse past max_queue waiting
            raise UserError("queue_full", in_flight=self.in_flight, retry=RETRY_AFTER_S, headers=busy)
        mine = self.by_client.get(client, 0)
        if mine >= self.per_client:
            raise UserError("too_many_requests", mine=mine, limit=self.per_client, retry=RETRY_AFTER_S, headers=busy)
        self.in_flight += 1
        self.by_client[client] = mine + 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self.by_client[client] -= 1
            if not self.by_client[client]:
                del self.by_client[client]

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self.limiter)

    async def run_while_connected(
        self, request: Request, options: TranscribeOptions, fn: Callable[..., T], client: str = "?"
    ) -> T:
        """Run `fn` (which transcribes with `options`) in the pool; if the client hangs up meanwhile, the job is
        told to stop at its next piece (options.cancel), so nobody's abandoned file keeps the recognizer.
        `client` names the caller in the log (dependencies.client_id)."""
        cancel = options.cancel = threading.Event()

        async def watch() -> None:
            while not await request.is_disconnected():
                await anyio.sleep(DISCONNECT_POLL_S)
            cancel.set()
            log.info("client %s went away: its transcription stops at the next piece", client)

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            try:
                outcome = await self.run(fn)
            except Exception as e:  # raised outside the group, so the API's handlers see it (not an ExceptionGroup)
                failure = e
            else:
                failure = None
            tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
        return outcome
