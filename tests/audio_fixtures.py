"""Builders for test media: every odd format a user may upload, made from the shared speech files with PyAV.

Nothing here uses funasr_webui.audio, so the files are an independent reference for it.
"""

from __future__ import annotations

import io
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf

from tests.helpers import SHARED_AUDIO, require_shared_audio

SPEECH_WAV = SHARED_AUDIO / "zh" / "asr_example.wav"  # 16 kHz mono real speech, ~5.5 s


def load_speech() -> np.ndarray:
    """The reference speech: float32 mono at 16 kHz. Without the shared audio the calling test skips (fails under
    CI), saying why."""
    __tracebackhide__ = True  # a skip is reported at the test that needed the speech
    require_shared_audio()
    data, rate = sf.read(SPEECH_WAV, dtype="float32")
    assert rate == 16000 and data.ndim == 1
    return data


def resample_with_av(mono16k: np.ndarray, rate: int) -> np.ndarray:
    """Resample with FFmpeg's swresample (not the code under test) to make other-rate sources."""
    if rate == 16000:
        return mono16k.copy()
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    frame = av.AudioFrame.from_ndarray(mono16k[None, :], format="flt", layout="mono")
    frame.sample_rate = 16000
    frame.pts = None
    out = [f.to_ndarray()[0] for f in resampler.resample(frame)]
    out += [f.to_ndarray()[0] for f in resampler.resample(None)]
    return np.concatenate(out).astype(np.float32)


def multichannel(mono: np.ndarray, channels: int) -> np.ndarray:
    """(samples, channels): the speech at a different gain on each channel, so a channel mix-up shows."""
    gains = np.linspace(0.9, 0.3, channels, dtype=np.float32)
    return (mono[:, None] * gains[None, :]).astype(np.float32)


def write_pcm(path: Path, samples: np.ndarray, rate: int, subtype: str) -> Path:
    """WAV or FLAC (from the suffix) with libsndfile; subtype e.g. PCM_U8, PCM_16, PCM_24, FLOAT."""
    sf.write(path, samples, rate, subtype=subtype)
    return path


def encode(
    path: Path,
    samples: np.ndarray,
    rate: int,
    codec: str,
    *,
    fmt: str | None = None,
    video: str | None = None,
    bit_rate: int | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode (samples, channels) float32 audio with PyAV; optionally add a few black video frames."""
    if samples.ndim == 1:
        samples = samples[:, None]
    channels = samples.shape[1]
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[channels]
    with av.open(str(path), "w", format=fmt, options=options or {}) as out:
        if video:
            vstream = out.add_stream(video, rate=10)
            vstream.width = vstream.height = 64
            vstream.pix_fmt = "yuv420p"
        astream = out.add_stream(codec, rate=rate, layout=layout)
        if bit_rate:
            astream.bit_rate = bit_rate
        planar = np.ascontiguousarray(samples.T)
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
        frame.sample_rate = rate
        frame.pts = 0
        frame.time_base = Fraction(1, rate)
        for packet in astream.encode(frame):
            out.mux(packet)
        for packet in astream.encode(None):
            out.mux(packet)
        if video:
            n_frames = max(1, int(len(samples) / rate * 10))
            black = np.zeros((64, 64, 3), dtype=np.uint8)
            for i in range(n_frames):
                vframe = av.VideoFrame.from_ndarray(black, format="rgb24")
                vframe.pts = i
                for packet in vstream.encode(vframe):
                    out.mux(packet)
            for packet in vstream.encode(None):
                out.mux(packet)
    return path


def video_only(path: Path, seconds: float = 1.0) -> Path:
    """An mp4 with a video track and no audio track."""
    with av.open(str(path), "w") as out:
        vstream = out.add_stream("libx264", rate=10)
        vstream.width = vstream.height = 64
        vstream.pix_fmt = "yuv420p"
        black = np.zeros((64, 64, 3), dtype=np.uint8)
        for i in range(int(seconds * 10)):
            vframe = av.VideoFrame.from_ndarray(black, format="rgb24")
            vframe.pts = i
            for packet in vstream.encode(vframe):
                out.mux(packet)
        for packet in vstream.encode(None):
            out.mux(packet)
    return path


def wav_header(channels: int, rate: int, bits: int, data_bytes: int, fmt_tag: int = 1) -> bytes:
    """A canonical 44-byte PCM WAV header; the numbers may be anything, even nonsense."""
    block_align = (channels * bits // 8) & 0xFFFF
    byte_rate = (rate * block_align) & 0xFFFFFFFF
    fmt_chunk = struct.pack("<HHIIHH", fmt_tag, channels, rate, byte_rate, block_align, bits)
    riff_size = (4 + 8 + len(fmt_chunk) + 8 + data_bytes) & 0xFFFFFFFF
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt_chunk))
        + fmt_chunk
        + b"data"
        + struct.pack("<I", data_bytes & 0xFFFFFFFF)
    )


def sparse_silent_wav(path: Path, seconds: float, rate: int = 16000) -> Path:
    """A long 16-bit mono WAV of silence made instantly: the data is a hole in a sparse file."""
    data_bytes = int(seconds * rate) * 2
    with open(path, "wb") as f:
        f.write(wav_header(1, rate, 16, data_bytes))
        f.truncate(44 + data_bytes)
    return path


def headerless_webm(path: Path, seconds: float) -> Path:
    """A live-style WebM/Opus file (like a browser MediaRecorder's): no duration in its header.

    Made cheaply by muxing one encoded 20 ms Opus packet of silence over and over.
    """
    with av.open(str(path), "w", format="webm", options={"live": "1"}) as out:
        stream = out.add_stream("libopus", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 48000), dtype=np.float32), format="fltp", layout="mono")
        frame.sample_rate = 48000
        frame.pts = 0
        frame.time_base = Fraction(1, 48000)
        packets = list(stream.encode(frame)) + list(stream.encode(None))
        payload = bytes(packets[len(packets) // 2])  # a packet from the middle: plain silence
        step = 960  # 20 ms at 48 kHz, in the stream's 1/48000 time base
        for i in range(int(seconds * 50)):
            packet = av.Packet(payload)
            packet.stream = stream
            packet.time_base = Fraction(1, 48000)
            packet.pts = packet.dts = i * step
            packet.duration = step
            out.mux(packet)
    return path


def silent_mp3_frame() -> bytes:
    """One 72-byte MPEG-2.5 layer III frame of silence (8 kHz, 8 kbit/s, 72 ms): repeat it for a long CBR mp3."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=8000, layout="mono")
        stream.bit_rate = 8000
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), dtype=np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        frame.pts = 0
        frame.time_base = Fraction(1, 8000)
        packets = list(stream.encode(frame)) + list(stream.encode(None))
        return bytes(packets[len(packets) // 2])


def header_duration(source: Path | str | bytes) -> float | None:
    """Duration in seconds as the file's header states it, nothing decoded: libsndfile's frame count where it reads
    the file, else PyAV's duration of the audio stream (or of a container holding nothing else); None when the
    header does not say (a live recording) or the file is not media."""
    try:
        with sf.SoundFile(io.BytesIO(source) if isinstance(source, bytes) else source) as f:
            if f.frames > 0 and f.samplerate > 0:
                return f.frames / f.samplerate
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError):
        pass  # libsndfile cannot read it: ask FFmpeg
    try:
        with av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source)) as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
            if container.duration and len(container.streams) == 1:
                return container.duration / av.time_base
            return None
    except (av.error.FFmpegError, OSError):
        return None
