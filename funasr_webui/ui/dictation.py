"""Live dictation's sessions, for the Microphone tab: one per browser session, fed by a worker thread of its own,
saved once when it ends (Stop, a closed tab, or Gradio dropping the session).

The page only queues the microphone's chunks here (``Dictation.enqueue``) and reads ``LiveSession.view`` to show
where the dictation is; the recognizer work happens on the session's worker thread. The engine side (VAD, partials,
sentences) is funasr_webui/live.py's LiveTranscriber.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from ..audio import SAMPLE_RATE
from ..engine import TranscribeOptions
from ..errors import UserError
from ..live import LiveState
from ..service import TranscriptionService
from ..transcript import Segment, Transcript

log = logging.getLogger(__name__)

LIVE_JUST_OPENED_S = 2.0  # an open dictation with no more audio than this belongs to the recording now starting
LIVE_FEED_MAX_S = 4.0  # a backlog goes into the recognizer in pieces this long (see Dictation.feed)
LIVE_MAX_AHEAD_S = 30.0  # audio may arrive this far ahead of the clock (bursts after a stall) before it is dropped
LIVE_MAX_BACKLOG_S = 120.0  # audio waiting for a busy recognizer past this is dropped: memory stays bounded
PARTIAL_MARK = "▌"  # starts the line of the sentence still being spoken (it may change)


@dataclass(eq=False)
class LiveSession:
    """One browser session's dictation, kept in its gr.State: the LiveState (VAD cache, audio, sentences) and what
    the page needs around it.

    The stream callback only drops each chunk into ``inbox`` and returns at once: Gradio keeps only the newest
    chunk that arrives while the callback is still running, so a callback that waited for the recognizer would
    lose the audio spoken meanwhile. A worker thread feeds the inbox to the LiveState; ``lock`` keeps it, Stop and
    a closed tab from working on the LiveState at the same time."""

    state: LiveState
    name: str  # file name of the downloads
    session_hash: str | None = None  # the browser session, to find it again when the tab goes away
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # guards state
    inbox: list[np.ndarray] = field(default_factory=list, repr=False)  # 16 kHz chunks not fed yet
    inbox_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # guards inbox, feeding
    feeding: bool = False  # a worker thread is emptying the inbox
    heard: float = 0.0  # seconds of audio received from the browser
    dropped: float = 0.0  # seconds refused: faster than real time, or past the backlog bound
    opened: float = field(default_factory=time.monotonic)
    # What the page shows, written by whoever holds the lock (one assignment, so always whole): text, sentences
    view: tuple[str, tuple[Segment, ...]] = ("", ())
    shown_sentences: int = 0  # sentences in the page's table (sent again only when one is added)
    failure: BaseException | None = None  # the last chunk's model error, shown once
    # The dictation's job in History, opened at its first finished sentence (once: None if History is read-only)
    job: int | None = None
    job_opened: bool = False

    def refresh(self) -> None:
        """Called with the lock held, after the state changed."""
        self.view = (live_display(self.state), tuple(self.state.sentences))

    def take_failure(self) -> BaseException | None:
        """The model error since the last call, if any (each is shown once)."""
        failure, self.failure = self.failure, None
        return failure


def live_display(state: LiveState) -> str:
    """Finished sentences, then the sentence still being spoken on its own line after the mark."""
    final = state.joiner.join(s.text for s in state.sentences)
    if not state.partial:
        return final
    return (final + "\n" if final else "") + f"{PARTIAL_MARK} {state.partial}"


class Dictation:
    """The dictations under way, by browser session (so that a tab closed mid-dictation can be found and saved),
    at most ``settings.max_live_sessions`` at once."""

    def __init__(self, service: TranscriptionService) -> None:
        self.service = service
        self.live = service.live  # one LiveTranscriber for all dictations; each has its own LiveState
        self.sessions: dict[str, LiveSession] = {}
        self.lock = threading.Lock()  # guards sessions

    def open(self, options: TranscribeOptions, session_hash: str | None) -> LiveSession:
        """A new dictation for this browser session; raises UserError when too many are running.

        The start event and the first chunk can reach the server in either order: whichever comes second gets
        the dictation the first one opened (one LiveState per recording, however they race)."""
        limit = self.service.settings.max_live_sessions
        with self.lock:
            current = self.sessions.get(session_hash or "")
            if current is not None and self.just_opened(current):
                return current
            running = len(self.sessions) - (current is not None)
            if running >= limit:
                raise UserError("live_busy", count=running, limit=limit)
            session = LiveSession(self.live.start(options), f"dictation-{datetime.now():%Y%m%d-%H%M%S}", session_hash)
            if session_hash:
                self.sessions[session_hash] = session
        return session

    @staticmethod
    def just_opened(session: LiveSession) -> bool:
        """Opened by this recording's first chunk moments ago (not one left over from an earlier recording)."""
        return not session.state.finished and not session.view[1] and session.heard <= LIVE_JUST_OPENED_S

    def enqueue(self, session: LiveSession, audio: np.ndarray) -> None:
        """Queue 16 kHz audio for the session's worker, starting one if none is running."""
        seconds = audio.size / SAMPLE_RATE
        with session.inbox_lock:
            ahead = session.heard + seconds - (time.monotonic() - session.opened)
            if ahead > LIVE_MAX_AHEAD_S or session.heard - session.state.received > LIVE_MAX_BACKLOG_S:
                session.dropped += seconds  # a client pushing audio faster than anyone speaks, or a stalled worker
                return
            session.inbox.append(audio)
            session.heard += seconds
            if session.feeding:
                return
            session.feeding = True
        threading.Thread(target=self.work, args=(session,), name="live-feed", daemon=True).start()

    def work(self, session: LiveSession) -> None:
        """The worker: feed the inbox to the LiveState until it is empty. What piled up while the recognizer was
        busy goes in together (see feed): a few VAD passes and partials for all of it, so a slow computer catches
        up."""
        while True:
            with session.lock:  # taken before the inbox, so Stop never overtakes chunks already taken out of it
                with session.inbox_lock:
                    if not session.inbox:
                        session.feeding = False
                        return
                    chunks, session.inbox = session.inbox, []
                if session.state.finished:
                    continue  # a chunk that came in while Stop was finishing: the dictation is closed
                try:
                    self.feed(session.state, chunks)
                except Exception as e:  # a model error: what was finished stays; the next chunk goes on
                    log.exception("live dictation chunk failed")
                    session.failure = e
                session.refresh()
                if not session.job_opened and session.state.sentences:  # something said: a crash now is reported
                    session.job_opened = True
                    session.job = self.service.start_job("microphone", "", session.state.options, name=session.name)

    def feed(self, state: LiveState, chunks: list[np.ndarray]) -> None:
        """Queued chunks into the LiveState, in pieces of at most LIVE_FEED_MAX_S: few calls when catching up, yet
        a monologue is still cut near the maximum utterance length (checked once per call)."""
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        step = int(LIVE_FEED_MAX_S * SAMPLE_RATE)
        for i in range(0, audio.size, step):
            self.live.feed(state, audio[i : i + step], SAMPLE_RATE)

    def close(self, session: LiveSession) -> int | None:
        """Feed what is still queued, finish, save once (however often this is called): the record id, or None
        when nothing was said (or saving failed)."""
        with session.lock:
            with session.inbox_lock:
                chunks, session.inbox = session.inbox, []
            state = session.state
            if not state.finished:
                try:
                    self.feed(state, chunks)
                    self.live.finish(state)
                except Exception:  # the last sentence is lost; the finished ones are still saved
                    log.exception("finishing a live dictation failed; saving the finished sentences")
                    state.partial, state.finished = "", True
                session.refresh()
            record_id = self.service.save_live(state, session.job, name=session.name)
        with self.lock:
            if session.session_hash and self.sessions.get(session.session_hash) is session:
                del self.sessions[session.session_hash]
        return record_id

    def transcript(self, session: LiveSession) -> Transcript | None:
        """What the dictation said, once closed; None when nothing was."""
        return self.live.transcript(session.state)

    def unload(self, session_hash: str | None) -> None:
        """The browser session went away: close (and save) the dictation it left running, if any."""
        with self.lock:
            session = self.sessions.pop(session_hash or "", None)
        if session is not None:
            self.close(session)

    def expire(self, value: object) -> threading.Thread | None:
        """A dropped session's State: a dictation still open is closed in a thread (returned, for tests), since
        finishing runs the recognizer and the caller may be an event loop."""
        if not isinstance(value, LiveSession) or value.state.finished:
            return None
        thread = threading.Thread(target=self.close, args=(value,), name="live-expired", daemon=True)
        thread.start()
        return thread
