"""Decode whatever a user uploads into 16 kHz mono float32 samples.

Two decoders feed one streaming pipeline (downmix by averaging -> soxr resampling -> one growing buffer):

* WAV and FLAC go through soundfile (libsndfile) when it can read them: much faster than FFmpeg.
* Everything else (mp3, m4a/aac, ogg/opus, webm, the audio track of mp4/mov/mkv video...) and any WAV/FLAC that
  libsndfile refuses goes through PyAV (FFmpeg), restricted to a whitelist of audio/video demuxers so that an
  upload can never make FFmpeg open playlists, other files or devices.

Every failure becomes an ``AudioError`` with a ``code``; its message, in English and Chinese, comes from the
error catalogue (messages.py).

Policies:

* ``too_big``: the byte size is checked before anything is read.
* ``too_long``: the duration in the header is checked before decoding (formats whose header duration is exact
  are refused once it passes the limit by 0.5 s; mp3/ADTS and other bitrate-estimated durations only once they
  pass it by 10% + 1 s). Decoding then stops as soon as the output passes the limit, whatever the header said.
* ``truncated``: a WAV whose data chunk (or any chunk before it) claims more bytes than the file holds; an
  mp4/mov/m4a whose top-level boxes run past the end of the file or that has no ``moov`` box; a file whose
  header is cut (FFmpeg hits the end while reading it); and any file with an exact header duration (WAV, FLAC,
  mp4/mov, mkv/webm, ogg, mp3 with a Xing/Info/VBRI frame count) that decodes to less than its header says by
  more than max(1 s, 5%). Partial audio is never returned for those: the user should upload the whole file.
  Streaming placeholders in WAV data sizes (0 and 0xFFFFFFFF) are accepted and decoded to the end. Files
  without such a header (mp3 without a Xing header, ADTS, live WebM from a browser) cannot be told apart from a
  shorter recording and decode to what is there.
* ``empty``: a 0-byte file, or a valid file with no audio samples. Even 1 ms of audio is returned as is.
* ``not_media``: neither decoder recognises the bytes (text, random data, a picture...).
* ``no_audio``: a media file without an audio track (a silent video).
* ``unreadable``: recognised as media but cannot be decoded: a damaged header (0 channels, 0 Hz), an absurd
  sample rate or channel count, an unsupported codec, or a file that cannot be opened at all.

Without ``max_duration`` nothing bounds the output size: a small crafted file (e.g. FLAC of silence) can expand
to hours of audio, so callers handling uploads should always pass one.
"""

from __future__ import annotations

import io
import logging
import math
import os
import stat
import struct
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
import soundfile as sf
import soxr

from .errors import UserError
from .helpers import base_name

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000

# Sanity bounds on what a header may claim; outside them it is damage or an attack (a 1 Hz WAV is a memory bomb).
MIN_INPUT_RATE = 1000
MAX_INPUT_RATE = 768000
MAX_CHANNELS = 256

# FFmpeg demuxers we accept: audio and video containers only; no playlists (hls, concat), images or devices.
_DEMUXERS = (
    "wav,w64,mp3,flac,ogg,matroska,webm,mov,aac,amr,amrnb,amrwb,asf,avi,mpegts,mpeg,flv,aiff,caf,ac3,eac3,dts,"
    "au,ape,wv,tta,mpc,mpc8,tak,voc,xwma,rm,loas,dsf,shn,gsm,mlp,truehd"
)
# Demuxers whose header duration comes from sample counts or an index, not from a bitrate estimate.
_EXACT_DURATION_FORMATS = {"wav", "w64", "flac", "mov", "matroska", "ogg", "aiff", "caf"}

# libsndfile reports a stream whose header leaves the length open (a FLAC written while streaming) as 2**63-1
# frames; any count this large is "unknown", decoded until the duration limit rather than refused.
_UNKNOWN_FRAMES = 1 << 40
_READ_FRAMES = 1 << 16  # soundfile block size (frames); divided by the channel count to bound memory
_BATCH_SAMPLES = 1 << 16  # decoded samples gathered before numpy/soxr work, to keep per-call overhead low

# The codes of AudioError; their words and HTTP status are in the catalogue (messages.py).
CODES = ("empty", "not_media", "truncated", "no_audio", "too_long", "too_big", "unreadable")


class AudioError(UserError):
    """A file we will not transcribe, with a machine-readable ``code`` and a bilingual message."""

    def __init__(
        self,
        code: str,
        filename: str,
        *,
        duration: float | None = None,
        max_duration: float | None = None,
        size: int | None = None,
        max_bytes: int | None = None,
        detail: str = "",
    ) -> None:
        if code not in CODES:
            raise ValueError(f"unknown AudioError code {code!r}")
        self.filename = _display_name(filename)
        self.duration = duration  # seconds, when known (too_long)
        self.max_duration = max_duration
        self.size = size  # bytes (too_big)
        self.max_bytes = max_bytes
        self.detail = detail  # technical detail for logs; not shown to users
        # a duration or size is stated only beside its limit (the catalogue picks the text that fits)
        super().__init__(
            code, filename=self.filename, duration=duration, max_duration=max_duration, size=size, max_bytes=max_bytes
        )

    def __str__(self) -> str:
        return self.message("en")


def decode_audio(
    source: str | Path | bytes | BinaryIO,
    *,
    name: str | None = None,
    max_duration: float | None = None,
    max_bytes: int | None = None,
) -> np.ndarray:
    """Decode ``source`` (a path, the file's bytes, or a binary file object) to 16 kHz mono float32 in [-1, 1].

    ``name`` is the display name used in error messages (default: the file's basename). File objects are read
    from their beginning. Raises ``AudioError`` for anything that is not decodable audio within the limits.
    """
    filename = _display_name(name if name is not None else _default_name(source))
    try:
        return _decode(source, filename, max_duration, max_bytes)
    except AudioError:
        raise
    except Exception as exc:  # a decoder bug or an I/O failure: still one clear error, never a crash
        raise AudioError("unreadable", filename, detail=f"{type(exc).__name__}: {exc}") from exc


# --- decoding ----------------------------------------------------------------------------------------------------


def _decode(
    source: str | Path | bytes | BinaryIO, filename: str, max_duration: float | None, max_bytes: int | None
) -> np.ndarray:
    src = _Source.open(source, filename, max_bytes)
    try:
        if src.size == 0:
            raise AudioError("empty", filename)
        if max_bytes is not None and src.size > max_bytes:
            raise AudioError("too_big", filename, size=src.size, max_bytes=max_bytes)
        kind = src.sniff()
        if kind == "wav":
            _check_wav_header(src, filename)  # truncated / damaged headers get their own codes before decoding
        if kind in ("wav", "flac"):
            audio = _decode_soundfile(src, filename, max_duration)
            if audio is not None:
                return audio
        return _decode_av(src, filename, max_duration, kind)
    finally:
        src.close()


def _decode_soundfile(src: _Source, filename: str, max_duration: float | None) -> np.ndarray | None:
    """The fast path for WAV/FLAC. None when libsndfile cannot read the file (FFmpeg gets a try then)."""
    try:
        with sf.SoundFile(src.path if src.path is not None else src.reader()) as f:
            rate, channels, frames = f.samplerate, f.channels, f.frames
            _check_format(filename, rate, channels)
            declared = frames / rate if 0 < frames < _UNKNOWN_FRAMES else None
            _check_header_duration(filename, declared, max_duration, exact=True)
            sink = _Sink(filename, max_duration, declared)
            block = max(1024, _READ_FRAMES // channels)
            while True:
                data = f.read(block, dtype="float32", always_2d=True)
                if len(data) == 0:
                    break
                mono = data @ np.full(channels, 1.0 / channels, dtype=np.float32) if channels > 1 else data[:, 0]
                sink.add(mono, rate)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OverflowError) as exc:
        log.debug("soundfile could not decode %s (%s); trying FFmpeg", filename, exc)
        return None
    if sink.samples_in == 0:
        return None  # e.g. a streamed WAV with a 0 data size: FFmpeg reads such files to the end
    audio = sink.finish()
    if declared is not None:
        _check_complete(filename, declared, len(audio) / SAMPLE_RATE)
    return audio


def _decode_av(src: _Source, filename: str, max_duration: float | None, kind: str) -> np.ndarray:
    try:
        container = _open_av(src)
    except av.error.FFmpegError as exc:
        if kind == "unknown":
            code = "not_media"
        elif isinstance(exc, av.error.EOFError) or (kind == "mp4" and _mp4_truncated(src)):
            code = "truncated"  # the header (or the mp4 index) runs past the end of the file
        else:
            code = "unreadable"
        raise AudioError(code, filename, detail=str(exc)) from exc
    with container:
        if not container.streams:
            raise AudioError("not_media", filename, detail="no streams")
        if not container.streams.audio:
            raise AudioError("no_audio", filename)
        stream = _pick_stream(container)
        declared, exact = _header_duration(container, stream)
        if container.format.name == "mp3":
            exact = _mp3_has_frame_count(src)
        _check_header_duration(filename, declared, max_duration, exact)
        sink = _Sink(filename, max_duration, declared)
        batch = _FrameBatcher(filename, sink)
        bad_packets = 0
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:  # a damaged packet: skip it, like FFmpeg's own tools do
                    bad_packets += 1
                    continue
                for frame in frames:
                    batch.add(frame)
        except av.error.FFmpegError as exc:  # the container breaks off: keep what decoded, judge it below
            log.debug("reading %s stopped early: %s", filename, exc)
            bad_packets += 1
        batch.drain()
        if sink.samples_in == 0:
            if bad_packets:
                raise AudioError("unreadable", filename, detail=f"{bad_packets} undecodable packets")
            raise AudioError("empty", filename, detail="no audio samples")
        audio = sink.finish()
        if declared is not None and exact:
            _check_complete(filename, declared, len(audio) / SAMPLE_RATE)
        return audio


class _FrameBatcher:
    """Gathers decoded frames in an AudioFifo so numpy work runs on ~64k samples at a time, not per 20 ms frame."""

    def __init__(self, filename: str, sink: _Sink) -> None:
        self.filename = filename
        self.sink = sink
        self.fifo: av.AudioFifo | None = None
        self.key: tuple[str, str, int] | None = None

    def add(self, frame: av.AudioFrame) -> None:
        if frame.samples == 0:
            return
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        if key != self.key:  # a fifo holds one format only; streams may change midway (concatenated mp3s)
            self.drain()
            _check_format(self.filename, frame.sample_rate, frame.layout.nb_channels)
            self.fifo, self.key = av.AudioFifo(), key
        frame.pts = None  # the fifo would otherwise insist on gapless timestamps
        self.fifo.write(frame)
        if self.fifo.samples >= _BATCH_SAMPLES:
            self.drain()

    def drain(self) -> None:
        if self.fifo is not None and self.fifo.samples > 0:
            frame = self.fifo.read()
            self.sink.add(_frame_to_mono(frame), frame.sample_rate)


def _frame_to_mono(frame: av.AudioFrame) -> np.ndarray:
    """A decoded frame as float32 mono at its own rate; channels are averaged."""
    channels = frame.layout.nb_channels
    data = frame.to_ndarray()
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T  # packed (1, n*ch) -> (ch, n)
    scale = 1.0
    if data.dtype.kind in "iu":
        scale = 1.0 / float(2 ** (8 * data.dtype.itemsize - 1))
    data = data.astype(np.float32, copy=False)
    # A matrix-vector product averages channels (and rescales integers) in one fast BLAS pass.
    mono = np.full(channels, scale / channels, dtype=np.float32) @ data
    if frame.format.name.startswith("u8"):
        mono -= 1.0  # unsigned 8-bit is centred on 128
    return mono


class _Sink:
    """Resamples mono chunks to 16 kHz into one growing buffer and stops as soon as the duration limit passes.

    The buffer is sized from the header's duration when there is one, else grows with ndarray.resize (realloc,
    mremap for big arrays: no copy), so peak memory stays within ~1.25x the output instead of the 2x that
    collecting chunks and concatenating them would need.
    """

    def __init__(self, filename: str, max_duration: float | None, expected_seconds: float | None) -> None:
        self.filename = filename
        self.max_duration = max_duration
        self.max_samples = math.floor(max_duration * SAMPLE_RATE) if max_duration is not None else None
        guess = expected_seconds if expected_seconds is not None else 60.0
        if max_duration is not None:
            guess = min(guess, max_duration + 1.0)
        guess = min(guess, 4 * 3600.0)  # a hostile header must not reserve gigabytes up front
        self.buffer = np.empty(int(guess * SAMPLE_RATE) + SAMPLE_RATE, dtype=np.float32)
        self.size = 0
        self.samples_in = 0
        self.rate: int | None = None
        self.resampler: soxr.ResampleStream | None = None

    def add(self, mono: np.ndarray, rate: int) -> None:
        if len(mono) == 0:
            return
        if rate != self.rate:  # a new rate midway: flush the old resampler's tail, start a new one
            self._resample(np.zeros(0, dtype=np.float32), last=True)
            self.rate = rate
            self.resampler = None if rate == SAMPLE_RATE else soxr.ResampleStream(rate, SAMPLE_RATE, 1, "float32", "HQ")
        self.samples_in += len(mono)
        with np.errstate(over="ignore", invalid="ignore"):
            finite = math.isfinite(float(mono.sum()))  # one cheap pass; huge finite values may overflow: harmless
        if not finite:  # float files may hold NaN/inf: they would poison the resampler's state
            mono = np.nan_to_num(mono, nan=0.0, posinf=1.0, neginf=-1.0)
        self._resample(mono, last=False)

    def finish(self) -> np.ndarray:
        self._resample(np.zeros(0, dtype=np.float32), last=True)
        self.buffer.resize(self.size, refcheck=False)
        return self.buffer

    def _resample(self, mono: np.ndarray, last: bool) -> None:
        if self.resampler is not None:
            mono = self.resampler.resample_chunk(mono, last=last)
        if len(mono) == 0:
            return
        end = self.size + len(mono)
        if self.max_samples is not None and end > self.max_samples:
            raise AudioError("too_long", self.filename, max_duration=self.max_duration)
        if end > len(self.buffer):
            # Grow by a quarter: resize zero-fills the new part, so the overshoot counts in peak memory.
            grown = len(self.buffer) + max(len(self.buffer) // 4, 60 * SAMPLE_RATE)
            self.buffer.resize(max(end, grown), refcheck=False)
        np.clip(mono, -1.0, 1.0, out=self.buffer[self.size : end])
        self.size = end


# --- checks ------------------------------------------------------------------------------------------------------


def _check_format(filename: str, rate: int, channels: int) -> None:
    if not MIN_INPUT_RATE <= rate <= MAX_INPUT_RATE:
        raise AudioError("unreadable", filename, detail=f"sample rate {rate} Hz")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError("unreadable", filename, detail=f"{channels} channels")


def _check_header_duration(filename: str, declared: float | None, max_duration: float | None, exact: bool) -> None:
    """Refuse before decoding when the header already says the audio is over the limit."""
    if declared is None or max_duration is None:
        return
    slack = 0.5 if exact else 1.0 + 0.1 * max_duration  # bitrate estimates (mp3, ADTS) can be off
    if declared > max_duration + slack:
        raise AudioError("too_long", filename, duration=declared, max_duration=max_duration)


def _check_complete(filename: str, declared: float, decoded: float) -> None:
    if declared - decoded > max(1.0, 0.05 * declared):
        raise AudioError("truncated", filename, detail=f"header says {declared:.2f} s, decoded {decoded:.2f} s")


def _check_wav_header(src: _Source, filename: str) -> None:
    """Walk the RIFF chunks up to ``data``: a chunk running past the end of the file means the file was cut."""
    f = src.reader()
    f.seek(12)
    pos = 12
    block_align = 1
    for _ in range(10000):  # bounded: a hostile file may hold endless tiny chunks
        header = f.read(8)
        if len(header) < 8:
            raise AudioError("truncated", filename, detail="no data chunk before the end of the file")
        chunk_id, chunk_size = header[:4], struct.unpack("<I", header[4:])[0]
        body = pos + 8
        if chunk_id == b"fmt ":
            fmt = f.read(16)
            if len(fmt) < 16:
                raise AudioError("truncated", filename, detail="fmt chunk cut")
            _tag, channels, rate, _byte_rate, block_align, _bits = struct.unpack("<HHIIHH", fmt)
            _check_format(filename, rate, channels)
            block_align = max(block_align, 1)
        elif chunk_id == b"data":
            if chunk_size in (0, 0xFFFFFFFF):  # placeholder left by streaming writers: the data runs to EOF
                return
            if body + chunk_size > src.size + block_align:
                raise AudioError(
                    "truncated", filename, detail=f"data chunk claims {chunk_size} bytes, {src.size - body} present"
                )
            return
        pos = body + chunk_size + (chunk_size & 1)  # chunks are padded to even sizes
        if pos > src.size:
            raise AudioError("truncated", filename, detail=f"{chunk_id!r} chunk runs past the end of the file")
        f.seek(pos)
    raise AudioError("unreadable", filename, detail="too many RIFF chunks")


def _mp4_truncated(src: _Source) -> bool:
    """True when the top-level boxes of an mp4/mov run past the end of the file or there is no moov box."""
    f = src.reader()
    pos, has_moov = 0, False
    for _ in range(10000):
        if pos >= src.size:
            break
        f.seek(pos)
        header = f.read(16)
        if len(header) < 8:
            return True
        box_size, box_type = struct.unpack(">I", header[:4])[0], header[4:8]
        if box_size == 1:  # 64-bit size follows
            if len(header) < 16:
                return True
            box_size = struct.unpack(">Q", header[8:16])[0]
        elif box_size == 0:  # the box runs to the end of the file
            box_size = src.size - pos
        if box_size < 8:
            return False  # garbage, not a cut: let the caller call it unreadable
        has_moov = has_moov or box_type == b"moov"
        if pos + box_size > src.size:
            return True
        pos += box_size
    return not has_moov


def _mp3_has_frame_count(src: _Source) -> bool:
    """A Xing/Info/VBRI header gives an mp3 its exact length; without one FFmpeg estimates it from the bitrate."""
    f = src.reader()
    head = f.read(10)
    offset = 0
    if head[:3] == b"ID3" and len(head) == 10:  # skip the ID3v2 tag (its size is "syncsafe": 7 bits a byte)
        offset = 10 + (head[6] & 0x7F) * 2**21 + (head[7] & 0x7F) * 2**14 + (head[8] & 0x7F) * 2**7 + (head[9] & 0x7F)
    f.seek(offset)
    first_frame = f.read(4096)  # the tag sits in the first frame, after some padding at most
    return any(tag in first_frame for tag in (b"Xing", b"Info", b"VBRI"))


# --- FFmpeg helpers ----------------------------------------------------------------------------------------------


def _open_av(src: _Source) -> av.container.InputContainer:
    options = {"format_whitelist": _DEMUXERS}
    if src.path is not None:
        # An absolute path is never parsed as a URL ("concat:...", "http:..."), and only the file protocol is allowed.
        options["protocol_whitelist"] = "file"
        return av.open(os.path.abspath(src.path), mode="r", metadata_errors="ignore", container_options=options)
    return av.open(src.reader(), mode="r", metadata_errors="ignore", container_options=options)


def _pick_stream(container: av.container.InputContainer) -> av.audio.stream.AudioStream:
    return container.streams.best("audio") or container.streams.audio[0]


def _header_duration(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream
) -> tuple[float | None, bool]:
    """(seconds the header gives for this audio stream or None, whether that number is exact rather than estimated)."""
    exact = container.format.name.split(",")[0] in _EXACT_DURATION_FORMATS
    if stream.duration is not None and stream.duration > 0 and stream.time_base:
        return float(stream.duration * stream.time_base), exact
    # The container's duration covers all streams: it only speaks for the audio when that is the only stream.
    if container.duration is not None and container.duration > 0 and len(container.streams) == 1:
        return container.duration / av.time_base, exact
    return None, exact


# --- input handling ----------------------------------------------------------------------------------------------


class _Source:
    """The upload as a seekable binary file, with its size and, when it is a file on disk, its path."""

    def __init__(self, size: int, path: str | None, fileobj: BinaryIO, owned: bool) -> None:
        self.size = size
        self.path = path
        self._file = fileobj
        self._owned = owned

    @classmethod
    def open(cls, source: str | Path | bytes | BinaryIO, filename: str, max_bytes: int | None) -> _Source:
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            return cls(len(data), None, io.BytesIO(data), owned=True)
        if isinstance(source, (str, Path)):
            path = os.fspath(source)
            try:
                info = os.stat(path)
                if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
                    raise AudioError("unreadable", filename, detail="not a regular file")
                return cls(info.st_size, path, open(path, "rb"), owned=True)
            except OSError as exc:
                raise AudioError("unreadable", filename, detail=str(exc)) from exc
        if hasattr(source, "read"):
            if _seekable(source):
                source.seek(0, io.SEEK_END)
                size = source.tell()
                source.seek(0)
                return cls(size, None, source, owned=False)
            # A pipe or socket: read it into memory, but never more than one byte past the size limit.
            limit = -1 if max_bytes is None else max_bytes + 1
            data = source.read(limit) or b""
            return cls(len(data), None, io.BytesIO(data), owned=True)
        raise TypeError(f"cannot decode a {type(source).__name__}")

    def reader(self) -> BinaryIO:
        """The file, rewound to its start."""
        self._file.seek(0)
        return self._file

    def sniff(self) -> str:
        head = self.reader().read(12)
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            return "wav"
        if head[:4] == b"fLaC":
            return "flac"
        if head[4:8] == b"ftyp":
            return "mp4"
        if head[:4] in (b"RF64", b"OggS", b"\x1a\x45\xdf\xa3") or head[:3] == b"ID3":
            return "media"  # a container we recognise, so a failure to open it is damage, not a stranger
        if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
            return "media"  # an MPEG audio (mp3) or ADTS (aac) frame header
        return "unknown"

    def close(self) -> None:
        if self._owned:
            self._file.close()


def _seekable(f: BinaryIO) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _default_name(source: object) -> str:
    if isinstance(source, (str, Path)):
        return os.fspath(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "audio"


def _display_name(name: str) -> str:
    """Basename only: a message must never reveal a server path. Handles Windows paths from browsers too."""
    return base_name(name).strip() or "audio"
