"""Microphone: record then recognize (the browser's recording goes in like an upload), or live dictation (the
microphone streams in chunks, text follows as it is spoken; the sessions are ui/dictation.py's)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import gradio as gr
import numpy as np

from ...helpers import format_duration
from ...i18n import lang_of, t, ui
from ...live import to_mono_16k
from ...service import TranscriptionService
from ...transcript import Transcript
from ..components import (
    PROGRESS,
    Downloads,
    OptionWidgets,
    ResultView,
    done_status,
    empty_result,
    failure,
    inference,
    option_widgets,
    report_progress,
    result_values,
    result_view,
    warn,
)
from ..context import PageContext
from ..dictation import Dictation, LiveSession
from ..format import failure_text, relabel, segment_headers, segments_frame, warn_status

TAB_KEY = "tab_mic"
LIVE_STREAM_EVERY_S = 0.5  # the browser sends the microphone in chunks this long (the page's shortest delay)
# How long one live stream event may run. Gradio ends the event then; a microphone still recording opens a new one
# with its next chunk and the dictation goes on in the same per-session State (about one chunk is lost at the seam).
LIVE_TIME_LIMIT_S = 3 * 3600
LIVE_BEHIND_S = 3.0  # the status says how far recognition lags behind the microphone from this many seconds


class MicCallbacks:
    """The tab's callbacks: the recording's recognition and the live dictation's start, chunks and stop."""

    def __init__(
        self, service: TranscriptionService, downloads: Downloads | None = None, dictation: Dictation | None = None
    ) -> None:
        self.service = service
        self.downloads = downloads or Downloads()
        self.dictation = dictation or Dictation(service)

    # ------------------------------------------------------------------ record, then recognize

    def mic_recognize(
        self,
        recording: str | None,
        hotwords: str,
        itn: bool,
        language: str,
        lang: str,
        engine: str = "",
        progress: gr.Progress = PROGRESS,
    ) -> list[Any]:
        lang = lang_of(lang)
        if not recording:
            warn(t("msg_no_recording", lang), lang)
            return empty_result(lang, warn_status(t("msg_no_recording", lang)))
        # The browser's recording arrives as a file; decoding it like an upload resamples it to 16 kHz and
        # lets History keep a copy for playback (keep_audio). The source stays "microphone".
        name = f"recording-{datetime.now():%Y%m%d-%H%M%S}.wav"
        try:
            options = self.service.options(hotwords, itn, language, engine=engine or None)
            report_progress(options, progress, t("msg_working", lang))
            outcome = self.service.transcribe_file(recording, name=name, source="microphone", options=options)
        except Exception as e:
            return failure(e, lang)
        return result_values(self.downloads, outcome.transcript, name, lang, done_status(outcome, lang))

    @staticmethod
    def mic_mode(mode: str) -> list[Any]:
        """Shows the controls and results of the chosen way: [record controls, Recognize again, record results,
        live controls, live results]."""
        live = mode == "live"
        return [gr.update(visible=not live)] * 3 + [gr.update(visible=live)] * 2

    # ------------------------------------------------------------------ live dictation

    def live_start(
        self,
        session: LiveSession | None,
        hotwords: str,
        itn: bool,
        language: str,
        lang: str,
        request: gr.Request | None = None,
        engine: str = "",  # the model selector; after the request, which Gradio fills in its place
    ) -> list[Any]:
        """Record pressed in live mode: a fresh LiveState for this browser session, options checked once, here.

        Returns [session, live result view..., mode switch] (the switch is locked while dictating)."""
        lang = lang_of(lang)
        if isinstance(session, LiveSession) and not self.dictation.just_opened(session):
            self.dictation.close(session)  # one never stopped (its stop event was lost): saved, not dropped
        try:
            session = self._open(hotwords, itn, language, engine, request)
        except Exception as e:
            return [None, *failure(e, lang), gr.update(interactive=True)]
        return [session, *empty_result(lang, self.live_status(session, lang)), gr.update(interactive=False)]

    def _open(self, hotwords: str, itn: bool, language: str, engine: str, request: gr.Request | None) -> LiveSession:
        """Raises UserError for options the user must change, or when too many dictations are running."""
        options = self.service.options(hotwords, itn, language, engine=engine or None)
        return self.dictation.open(options, getattr(request, "session_hash", None))

    def live_stream(
        self,
        chunk: tuple[int, np.ndarray] | None,
        session: LiveSession | None,
        hotwords: str,
        itn: bool,
        language: str,
        lang: str,
        request: gr.Request | None = None,
        engine: str = "",  # the model selector; after the request, which Gradio fills in its place
    ) -> list[Any]:
        """One chunk of the microphone (every LIVE_STREAM_EVERY_S): queue it for the worker, show where it is.

        Returns [text, status, sentences table, session]; gr.skip() leaves that part of the page as it is."""
        lang = lang_of(lang)
        keep = [gr.skip(), gr.skip(), gr.skip(), session]
        if session is None:  # the first chunk overtook the start event: open here, the start event keeps it
            try:
                session = self._open(hotwords, itn, language, engine, request)
            except Exception as e:  # the start event has said why already, as a toast
                return [gr.skip(), warn_status(failure_text(e, lang)), gr.skip(), None]
        if not isinstance(session, LiveSession) or chunk is None or session.state.finished:
            return keep  # finished: a chunk that was on its way when Stop was pressed
        rate, samples = chunk
        self.dictation.enqueue(session, to_mono_16k(samples, rate))
        text, sentences = session.view
        table: Any = gr.skip()
        if len(sentences) != session.shown_sentences:
            session.shown_sentences = len(sentences)
            table = segments_frame(Transcript(text="", raw_text="", segments=list(sentences)), lang)
        failed = session.take_failure()
        status = warn_status(failure_text(failed, lang)) if failed else self.live_status(session, lang)
        return [text, status, table, session]

    def live_status(self, session: LiveSession, lang: str) -> str:
        status = t(
            "status_live_listening", lang, duration=format_duration(session.heard, lang), count=len(session.view[1])
        )
        behind = session.heard - session.state.received
        if behind >= LIVE_BEHIND_S:  # a slow computer (or a long file job holding the recognizer) falls behind
            status += " · " + t("status_live_behind", lang, behind=format_duration(behind, lang))
        if session.dropped:
            status += " · " + t("status_live_dropped", lang, dropped=format_duration(session.dropped, lang))
        return status

    def live_stop(self, session: LiveSession | None, lang: str) -> list[Any]:
        """Stop pressed: finish the last sentence, save the dictation once, offer its downloads.

        Returns [live result view..., session, mode switch]."""
        lang = lang_of(lang)
        unlock = gr.update(interactive=True)
        if not isinstance(session, LiveSession):
            return [*empty_result(lang, t("status_live_idle", lang)), session, unlock]
        try:
            record_id = self.dictation.close(session)
            transcript = self.dictation.transcript(session)
        except Exception as e:
            return [*failure(e, lang), session, unlock]
        if transcript is None:
            return [*empty_result(lang, "ℹ " + t("msg_live_nothing", lang)), session, unlock]
        if record_id is None:
            status = warn_status(t("msg_live_unsaved", lang))
        else:
            status = "✔ " + t("msg_live_saved", lang, id=record_id)
        return [*result_values(self.downloads, transcript, session.name, lang, status), session, unlock]

    def live_stopping(self, session: LiveSession | None, lang: str) -> Iterator[list[Any]]:
        """live_stop for the page: says at once that it is finishing (the last sentence takes the recognizer a
        moment), then shows the result."""
        if isinstance(session, LiveSession) and not session.state.finished:
            status = "⏳ " + t("status_live_finishing", lang_of(lang))
            rest = len(empty_result("en", ""))  # the view but its status, and the session: left as they are
            yield [status, *[gr.skip()] * rest, gr.update(interactive=False)]  # the mode switch stays locked
        yield self.live_stop(session, lang)

    def live_unload(self, request: gr.Request) -> None:
        """The browser went away (tab closed or reloaded, connection lost): save a dictation it left running.
        Gradio calls this as soon as the page's heartbeat connection drops."""
        self.dictation.unload(getattr(request, "session_hash", None))

    def live_expired(self, value: Any) -> threading.Thread | None:
        """gr.State's delete_callback, when Gradio drops a closed session's State (an hour after the tab went
        away): a dictation still open then, one live_unload did not see, is saved. Gradio calls this on its event
        loop and finishing runs the recognizer, so it runs in a thread (returned, for tests)."""
        return self.dictation.expire(value)

    def relabel_segments(self, lang: str, frame: Any) -> Any:
        """The live sentences table with headers in the page's language."""
        return relabel(frame, segment_headers(lang_of(lang)))


@dataclass
class MicTab:
    tab: gr.Tab
    mode: gr.Radio
    recording: gr.Audio
    live_audio: gr.Audio
    options: OptionWidgets
    start: gr.Button
    view: ResultView  # record, then recognize
    live_view: ResultView  # live dictation
    session: gr.State
    callbacks: MicCallbacks = field(repr=False)


def create_microphone(ctx: PageContext) -> MicTab:
    callbacks = MicCallbacks(ctx.service, ctx.downloads)
    with gr.Tab(ui(TAB_KEY), id="microphone") as tab:
        mode = gr.Radio(
            [(ui("mic_mode_record"), "record"), (ui("mic_mode_live"), "live")],
            value="record",
            label=ui("mic_mode"),
            elem_id="mic-mode",
        )
        gr.Markdown(ui("mic_mode_hint"), elem_classes="hint")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                # ---- Record, then recognize: the browser records, the file is recognized like an upload
                with gr.Column(elem_id="mic-record") as record_box:
                    recording = gr.Audio(
                        sources=["microphone"],
                        type="filepath",
                        format="wav",
                        label=ui("mic"),
                        buttons=["download"],
                        elem_id="mic-audio",
                    )
                    gr.Markdown(ui("mic_hint"), elem_classes="hint")
                # ---- Live dictation: the microphone streams in chunks, text follows as it is spoken
                with gr.Column(visible=False, elem_id="mic-live") as live_box:
                    live_audio = gr.Audio(
                        sources=["microphone"],
                        streaming=True,
                        type="numpy",
                        label=ui("live_mic"),
                        elem_id="mic-live-audio",
                    )
                    gr.Markdown(ui("live_hint"), elem_classes="hint")
                options = option_widgets(ctx.service, "mic")  # the same options for both ways
                start = gr.Button(ui("mic_start"), elem_id="mic-start")
            with gr.Column(scale=3):
                with gr.Column(elem_id="mic-record-result") as record_result:
                    view = result_view("mic", "status_mic_idle")
                with gr.Column(visible=False, elem_id="mic-live-result") as live_result:
                    live_view = result_view("mic-live", "status_live_idle")
        inputs = [recording, *options.inputs(), ctx.lang, options.engine]
        # Stop starts recognition by itself: the event fires once the recording has reached the server
        inference(recording.stop_recording, callbacks.mic_recognize, inputs, view.outputs())
        inference(start.click, callbacks.mic_recognize, inputs, view.outputs())
        shown = [record_box, start, record_result, live_box, live_result]
        mode.change(callbacks.mic_mode, mode, shown, queue=False, show_progress="hidden")
        session = _live_events(callbacks, live_audio, mode, options, live_view, ctx.lang)
    return MicTab(tab, mode, recording, live_audio, options, start, view, live_view, session, callbacks)


def _live_events(
    callbacks: MicCallbacks, audio: gr.Audio, mode: gr.Radio, options: OptionWidgets, view: ResultView, lang: gr.Radio
) -> gr.State:
    """Live dictation's events, in a concurrency group of their own ("live", no limit), not the one-slot
    "inference" group of the other recognitions: a stream event holds its slot for the whole dictation, so there
    it would block every upload for as long as someone talks, and a dictation would wait behind a long file
    while Gradio's microphone drops the chunks it records (it does not buffer while its stream is queued).
    Unlimited is safe because these callbacks never run the recognizer on the request thread for long: the
    stream callback only queues the chunk (live_stream), each session's worker feeds it, and LiveTranscriber
    takes the pipeline's lock for each model call, so the recognizer still does one thing at a time (a
    sentence of one tab between two partials of another, or of a file). While a file is being recognized a
    dictation's audio waits in its inbox: late text, no lost audio."""
    # One LiveState per browser session. Closing the tab mid-dictation saves it at once (live_unload, on
    # Gradio's heartbeat, wired by the page); the delete_callback is the fallback for one that slipped past, when
    # Gradio drops the closed session's State.
    session = gr.State(None, delete_callback=callbacks.live_expired)
    # The status line says what is going on: no spinners or timers over the text (Gradio shows a stream's timer
    # on its outputs even with show_progress hidden, so progress is pointed at the microphone, which shows none)
    live: dict[str, Any] = {"concurrency_id": "live", "concurrency_limit": None}
    live.update(show_progress="hidden", show_progress_on=audio)
    inputs = [*options.inputs(), lang, options.engine]
    audio.start_recording(callbacks.live_start, [session, *inputs], [session, *view.outputs(), mode], **live)
    audio.stream(
        callbacks.live_stream,
        [audio, session, *inputs],
        [view.text, view.status, view.segments, session],
        stream_every=LIVE_STREAM_EVERY_S,
        time_limit=LIVE_TIME_LIMIT_S,
        **live,
    )
    audio.stop_recording(callbacks.live_stopping, [session, lang], [*view.outputs(), session, mode], **live)
    return session
