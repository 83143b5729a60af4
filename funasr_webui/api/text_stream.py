"""OpenAI's streamed transcription (`stream=true`): server-sent `transcript.text.delta` events as the sentences are
decoded, then `transcript.text.done` with the whole text, as the openai client's `create(stream=True)` reads them.

The engine reports the text so far from its worker thread (TranscribeOptions.partial_text); `TextFeed` carries it to
the event loop, and `sse_events` sends what each report adds. Each report begins with the one before (the engines
promise it), so the deltas put together are the text; the done event always carries the final text as saved.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..errors import UserError
from ..service import Outcome
from ..transcript import Segment

log = logging.getLogger(__name__)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy buffering of the events


class TextFeed:
    """The text so far of one transcription, from the engine's thread to the response (a queue on the loop)."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.texts: asyncio.Queue[str] = asyncio.Queue()

    def report(self, text: str) -> None:  # called from the worker thread
        self.loop.call_soon_threadsafe(self.texts.put_nowait, text)

    async def next(self, job: asyncio.Future) -> str | None:
        """The next text reported, or None when the job ended first (done or failed)."""
        if not self.texts.empty():
            return self.texts.get_nowait()
        getter = asyncio.ensure_future(self.texts.get())
        try:
            await asyncio.wait({getter, job}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()
        return getter.result() if getter.done() and not getter.cancelled() else None


def text_deltas(text: str, segments: list[Segment]) -> list[str]:
    """`text` cut after each sentence, so that the deltas put together are exactly the text (for a transcript
    that is already whole: an engine that cannot report its text as it goes)."""
    deltas, pos = [], 0
    for s in segments:
        found = text.find(s.text, pos) if s.text else -1
        if found < 0:
            continue
        end = found + len(s.text)
        deltas.append(text[pos:end])
        pos = end
    if pos < len(text):
        deltas.append(text[pos:])
    return [d for d in deltas if d]


async def sse_events(
    feed: TextFeed, job: asyncio.Future, first: str | None, stop: Callable[[], None]
) -> AsyncIterator[str]:
    """The events of one transcription (`job`, resolving to its Outcome): a delta per report of more text
    (starting with `first`), then, once the job is done, what the final text adds to them, and the done event
    (with the record id). A failure after the first delta is an error event (the status line was sent already);
    the openai client raises it. `stop`: tells the transcription to stop when the client goes away mid-stream."""
    sent = ""

    def delta(text: str) -> str | None:
        nonlocal sent
        if len(text) <= len(sent) or not text.startswith(sent):
            return None
        grew, sent = text[len(sent) :], text
        return sse({"type": "transcript.text.delta", "delta": grew})

    try:
        text = first
        while text is not None:
            if event := delta(text):
                yield event
            text = await feed.next(job)
        while not feed.texts.empty():
            if event := delta(feed.texts.get_nowait()):
                yield event
        try:
            outcome: Outcome = await job
        except UserError as e:
            yield sse(e.body())
            return
        except Exception:
            log.exception("streamed transcription failed")
            yield sse(UserError("internal_error").body())
            return
        t = outcome.transcript
        if not sent:  # nothing was reported while decoding: the sentences of the finished transcript
            for d in text_deltas(t.text, t.segments):
                yield sse({"type": "transcript.text.delta", "delta": d})
        elif event := delta(t.text):
            yield event
        yield sse({"type": "transcript.text.done", "text": t.text, "id": outcome.record_id})
    finally:
        if not job.done():  # the client went away mid-stream: the transcription stops at its next piece
            stop()
            job.cancel()


def sse(event: dict[str, Any]) -> str:
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
