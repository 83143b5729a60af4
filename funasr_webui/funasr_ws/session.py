"""One FunASR WebSocket connection's inputs: audio in, results out in FunASR's shapes, one history record each.

Streaming input (online / 2pass on raw PCM) goes through the live dictation machinery (`service.live`): partials
from the streaming Paraformer when it is loaded, else from re-decoding the open utterance; each utterance the VAD
closes is finalized with punctuation, ITN and hotwords. Offline input (and any whole file, wav_format mp3, ...)
goes through the file pipeline once the input ends. All methods block (models run): call them off the event loop,
one at a time per connection.
"""

from __future__ import annotations

import logging
import os
import struct
import tempfile
from os.path import commonprefix

import numpy as np

from .. import tempfiles
from ..engine import TranscribeOptions
from ..errors import UserError
from ..live import LiveState, to_mono_16k
from ..service import TranscriptionService
from ..transcript import Segment, Transcript
from .protocol import InputConfig, acknowledgement, apply_control, error_fields, result

log = logging.getLogger(__name__)

SOURCE = "websocket"  # the history's source of every record made here
ONLINE_MIN_S = 1.0  # online mode with a re-decoding engine: partials of a shorter utterance are not sent
FEED_MAX_S = 0.6  # audio per call of the live machinery when frames queued up (one streaming-Paraformer chunk)


class FunasrSession:
    def __init__(self, service: TranscriptionService) -> None:
        self.service = service
        self.config = InputConfig()
        self.errors: list[UserError] = []
        self._new_input()

    def _new_input(self) -> None:
        self.options: TranscribeOptions | None = None
        self.live: LiveState | None = None
        self.buffer = bytearray()  # offline PCM, or the bytes of a whole file
        self.carry = b""  # half a PCM16 sample from a frame of odd length
        self.samples = 0  # PCM samples received (at audio_fs)
        self.first_frame = True
        self.dropping = False
        self.job: int | None = None
        self.sent = ""  # online text the client holds for the open utterance
        self.last_partial = ""
        self.done = 0  # live sentences already sent

    # ------------------------------------------------------------------ what the client sends

    def control(self, msg: dict) -> list[dict]:
        """A JSON text message: configuration, and at `is_speaking: false` the end of the input."""
        c = apply_control(self.config, msg, self.service.settings.max_hotwords)
        self.errors += c.errors or []
        return self.finish(c.wants_ack) if c.end_of_input else []

    def note(self, error: UserError) -> None:
        if error.messages not in [e.messages for e in self.errors]:
            self.errors.append(error)

    def audio(self, data: bytes) -> list[dict]:
        """One or more binary frames (of any size: they are joined by the caller when they queue up)."""
        if self.options is None:
            self.options = self.service.options(self.config.hotwords, self.config.itn)
            self.options.word_timestamps = True  # offline results carry FunASR's `timestamp` where the engine can
            if self.config.streaming:
                self.live = self.service.live.start(self.options)
        if not self.config.pcm:
            return self._keep_file_bytes(data)
        if self.first_frame:
            data = self._strip_wav_header(data)
        data, self.carry = self.carry + data, b""
        if len(data) % 2:
            data, self.carry = data[:-1], data[-1:]
        if not data or self._over_limit(len(data) // 2):
            return []
        self.samples += len(data) // 2
        if self.live is None:
            self.buffer += data
            return []
        samples = np.frombuffer(bytes(data), dtype="<i2")
        step = int(FEED_MAX_S * self.config.audio_fs)
        messages = []
        for i in range(0, samples.size, step):  # catching up: still partials, and sentences cut in time
            self.service.live.feed(self.live, samples[i : i + step], self.config.audio_fs)
            self._open_job()
            messages += self._live_messages()
        return messages

    def _strip_wav_header(self, data: bytes) -> bytes:
        """FunASR's browser client sends a .wav file in file mode with its header (wav_format "PCM"): read the
        rate from it and start at the samples."""
        self.first_frame = False
        if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
            return data
        pos = 12
        while pos + 8 <= len(data):
            tag, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
            if tag == b"fmt " and pos + 16 <= len(data):
                self.config.audio_fs = struct.unpack("<I", data[pos + 12 : pos + 16])[0] or self.config.audio_fs
            if tag == b"data":
                return data[pos + 8 :]
            pos += 8 + size + (size & 1)
        return data

    def _over_limit(self, samples: int) -> bool:
        limit = self.service.settings.max_duration * self.config.audio_fs
        if self.samples + samples <= limit:
            return False
        if not self.dropping:
            self.dropping = True
            self.note(UserError("ws_too_much_audio", max_duration=self.service.settings.max_duration))
        return True

    def _keep_file_bytes(self, data: bytes) -> list[dict]:
        if len(self.buffer) + len(data) > self.service.settings.max_upload_bytes:
            if not self.dropping:
                self.dropping = True
                self.note(UserError("too_big", max_bytes=self.service.settings.max_upload_bytes))
            return []
        self.buffer += data
        return []

    # ------------------------------------------------------------------ end of input

    def finish(self, wants_ack: bool) -> list[dict]:
        """Every result still due for this input (the last one `is_final`), then, when asked for, the
        acknowledgement; the input is saved, and the connection may start another."""
        if self.live is not None:
            messages = self._finish_live()
        elif self.options is not None and (self.buffer or self.carry):
            messages = self._finish_offline()
        elif wants_ack:
            messages = []  # nothing was sent: the acknowledgement alone ends the input
        else:
            messages = [self._final(self._mode(), "")]
        if wants_ack:
            messages.append(acknowledgement(self.config.mode, self.config.wav_name, self.errors))
        elif self.errors and messages:
            messages[-1].update(error_fields(self.errors))
        self.errors = []
        self._new_input()
        return messages

    def close(self) -> None:
        """The client went away: a live input is saved with what was said (like a closed page tab); an offline
        input that never ended is incomplete and dropped."""
        if self.live is not None:
            self.service.live.finish(self.live)
            self._save_live()
        self._new_input()

    def _finish_live(self) -> list[dict]:
        self.service.live.finish(self.live)
        self._open_job()
        messages = self._live_messages()
        if messages and messages[-1]["mode"] in ("2pass-offline", "online"):
            messages[-1]["is_final"] = True
        else:
            messages.append(self._final(self._mode(), ""))
        self._save_live()
        return messages

    def _finish_offline(self) -> list[dict]:
        name = self.config.wav_name
        try:
            if self.config.pcm:
                pcm = np.frombuffer(bytes(self.buffer), dtype="<i2")
                audio = to_mono_16k(pcm, self.config.audio_fs)
                outcome = self.service.transcribe_audio(audio, source=SOURCE, options=self.options, name=name)
            else:
                outcome = self._transcribe_file(name)
        except UserError as e:
            self.note(e)
            return [self._final(self._mode(), "")]
        return self._offline_messages(outcome.transcript)

    def _transcribe_file(self, name: str):
        """A whole file (mp3, m4a, wav with header, ...) through the same decoder as uploads."""
        fd, path = tempfile.mkstemp(prefix=tempfiles.prefix("upload"))
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self.buffer)
            return self.service.transcribe_file(path, name=name, source=SOURCE, options=self.options)
        finally:
            os.unlink(path)

    def _offline_messages(self, t: Transcript) -> list[dict]:
        mode = self.config.mode
        if mode == "offline":
            return [result("offline", self.config.wav_name, t.text, True, t.segments)]
        if mode == "online":
            return [result("online", self.config.wav_name, t.text, True)]
        joiner = " " if t.text and " " in t.text.strip() and not _cjk(t.text) else ""
        messages = [
            result("2pass-offline", self.config.wav_name, (joiner if i else "") + s.text, False, [s])
            for i, s in enumerate(t.segments)
        ]
        if not messages:
            return [self._final("2pass-offline", "")]
        messages[-1]["is_final"] = True
        return messages

    def _mode(self) -> str:
        """The label of a final in the input's mode."""
        return {"offline": "offline", "online": "online"}.get(self.config.mode, "2pass-offline")

    def _final(self, mode: str, text: str) -> dict:
        return result(mode, self.config.wav_name, text, True)

    # ------------------------------------------------------------------ live results

    def _live_messages(self) -> list[dict]:
        """New finals, then what the partial of the open utterance added. Clients append `text`, so online
        messages carry only the increment, and a 2pass-offline message one sentence (they drop the online text
        they held for it)."""
        state = self.live
        online = "online" if self.config.mode == "online" else "2pass-online"
        messages = []
        for seg in state.sentences[self.done :]:
            messages.append(self._sentence(seg, first=self.done == 0 and not messages))
            self.sent = self.last_partial = ""
        self.done = len(state.sentences)
        grew = self._partial_increment(state.partial)
        if grew:
            messages.append(result(online, self.config.wav_name, grew, False))
        return messages

    def _sentence(self, seg: Segment, first: bool) -> dict:
        lead = "" if first else self.live.joiner
        if self.config.mode == "online":
            return result("online", self.config.wav_name, online_tail(self.sent, seg.text), False)
        return result("2pass-offline", self.config.wav_name, lead + seg.text, False)

    def _partial_increment(self, partial: str) -> str:
        """The part of the partial the client does not have yet. The streaming Paraformer only appends; a
        re-decoded partial may still change its last words, so only what two decodes in a row agree on is sent
        (local agreement), cut back to a word boundary."""
        if self.service.engine.streaming is not None:
            stable = partial
        elif self.config.mode == "online" and self._open_s() < ONLINE_MIN_S:
            # online text is never replaced by a final: the first second's guesses are not worth committing
            self.last_partial = partial
            return ""
        else:
            stable = commonprefix([self.last_partial, partial])
            if len(stable) < len(partial) and stable[-1:].isalnum() and partial[len(stable)].isalnum():
                stable = stable[: max(stable.rfind(" "), 0)] if not _cjk(stable[-1:]) else stable
        self.last_partial = partial
        if len(stable) <= len(self.sent) or not stable.startswith(self.sent):
            return ""
        grew, self.sent = stable[len(self.sent) :], stable
        if len(grew) == len(stable) and self.live.sentences and self.live.joiner:
            grew = self.live.joiner + grew.lstrip()
        return grew

    def _open_s(self) -> float:
        """Seconds of the open utterance heard so far."""
        state = self.live
        return 0.0 if state.utterance_start is None else state.received - state.utterance_start

    def _open_job(self) -> None:
        """Once something was said, the input is noted in the history: a server crash now leaves a record."""
        if self.job is None and self.live is not None and self.live.sentences:
            self.job = self.service.start_job(SOURCE, "", self.live.options, name=self.config.wav_name) or -1

    def _save_live(self) -> None:
        job = self.job if self.job not in (None, -1) else None
        self.service.save_live(self.live, job, source=SOURCE, name=self.config.wav_name)


def online_tail(sent: str, final: str) -> str:
    """What of `final` (punctuated, normalized) follows the online text the client already shows (`sent`): the
    end of `sent` is placed where its letters align best with a prefix of `final` (edit distance, punctuation and
    spaces skipped), so a partial word that was wrong is taken as standing for its final one, not repeated."""
    shown = [ch.lower() for ch in sent if ch.isalnum()]
    if not shown:
        return final
    ends = [i + 1 for i, ch in enumerate(final) if ch.isalnum()]  # string position after each letter of final
    letters = [final[i - 1].lower() for i in ends]
    row = list(range(len(letters) + 1))  # edit distance of shown[:i] to letters[:j], one row per i
    for a in shown:
        prev, row = row, [row[0] + 1]
        for j, b in enumerate(letters, 1):
            row.append(min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a != b)))
    best = min(row)
    j = max(k for k, d in enumerate(row) if d == best)
    return final[ends[j - 1] :] if j else final


def _cjk(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" for ch in text)
