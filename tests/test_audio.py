"""decode_audio on real files in every format users upload, on broken and hostile files, and under a fuzzer."""

from __future__ import annotations

import faulthandler
import io
import time
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funasr_webui.audio import CODES, SAMPLE_RATE, AudioError, decode_audio
from tests import audio_fixtures as fx

# What a user reads for each error (after "name: " in English, "name：" in Chinese), written out here rather than
# taken from funasr_webui.audio, so a changed or swapped message shows up as a failure.
MESSAGES_EN = {
    "empty": "the file is empty (no audio data)",
    "not_media": "not an audio or video file we can read",
    "truncated": "the file is incomplete (cut off before its end); please upload the whole file",
    "no_audio": "the file has no audio track",
    "too_long": "the audio is too long",
    "too_big": "the file is too big",
    "unreadable": "the audio could not be decoded (damaged file or unsupported format)",
}
MESSAGES_ZH = {
    "empty": "文件为空（没有音频数据）",
    "not_media": "无法识别的音频或视频文件",
    "truncated": "文件不完整（在结尾之前被截断），请重新上传完整文件",
    "no_audio": "文件中没有音轨",
    "too_long": "音频时长超出限制",
    "too_big": "文件过大",
    "unreadable": "音频无法解码（文件已损坏或格式不受支持）",
}


# --- helpers -------------------------------------------------------------------------------------------------------


def best_correlation(a: np.ndarray, b: np.ndarray, max_lag: int = 1600) -> float:
    """Peak normalised cross-correlation within +-max_lag samples (codecs add a little delay)."""
    n = min(len(a), len(b))
    a, b = a[:n].astype(np.float64), b[:n].astype(np.float64)
    size = 1 << (2 * n - 1).bit_length()
    xc = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)
    window = np.concatenate([xc[: max_lag + 1], xc[-max_lag:]])
    return float(window.max() / (np.linalg.norm(a) * np.linalg.norm(b)))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def check_output(audio: np.ndarray) -> None:
    assert isinstance(audio, np.ndarray)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert np.all(np.isfinite(audio)) and np.abs(audio).max(initial=0.0) <= 1.0


def raises_code(code: str, source, **kwargs) -> AudioError:
    with pytest.raises(AudioError) as info:
        decode_audio(source, **kwargs)
    err = info.value
    assert err.code == code, f"expected {code}, got {err.code} ({err.detail})"
    return err


def check_messages(err: AudioError, filename: str) -> None:
    en, zh = err.message("en"), err.message("zh")
    assert err.filename == filename
    assert en.startswith(f"{filename}: {MESSAGES_EN[err.code]}")
    assert zh.startswith(f"{filename}：{MESSAGES_ZH[err.code]}")
    assert str(err) == en and en != zh
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh)  # the Chinese message is in Chinese


# --- the formats users upload --------------------------------------------------------------------------------------

SPEECH_SECONDS = 88747 / 16000  # zh/asr_example.wav


@pytest.fixture(scope="session")
def speech(shared_audio) -> np.ndarray:
    return fx.load_speech()


@pytest.fixture(scope="session")
def media(tmp_path_factory, speech) -> dict[str, Path]:
    """Every format, made once from the same speech. Lossless ones carry per-channel gains averaging 0.6."""
    d = tmp_path_factory.mktemp("media")
    x44, x48, x8, x22 = (fx.resample_with_av(speech, r) for r in (44100, 48000, 8000, 22050))
    stereo44, stereo48 = fx.multichannel(x44, 2), fx.multichannel(x48, 2)
    return {
        "u8.wav": fx.write_pcm(d / "u8.wav", speech * 0.6, 16000, "PCM_U8"),
        "s16_44k_stereo.wav": fx.write_pcm(d / "s16_44k_stereo.wav", stereo44, 44100, "PCM_16"),
        "s24_48k_stereo.wav": fx.write_pcm(d / "s24_48k_stereo.wav", stereo48, 48000, "PCM_24"),
        "f32_22k.wav": fx.write_pcm(d / "f32_22k.wav", x22 * 0.6, 22050, "FLOAT"),
        "phone_8k.wav": fx.write_pcm(d / "phone_8k.wav", x8 * 0.6, 8000, "PCM_16"),
        "s16_48k_6ch.wav": fx.write_pcm(d / "s16_48k_6ch.wav", fx.multichannel(x48, 6), 48000, "PCM_16"),
        "s24_44k_stereo.flac": fx.write_pcm(d / "s24_44k_stereo.flac", stereo44, 44100, "PCM_24"),
        "mp3_in.wav": fx.encode(d / "mp3_in.wav", x44 * 0.6, 44100, "libmp3lame", fmt="wav"),  # libsndfile refuses
        "stereo.mp3": fx.encode(d / "stereo.mp3", stereo44, 44100, "libmp3lame"),
        "voice.m4a": fx.encode(d / "voice.m4a", stereo44, 44100, "aac", fmt="ipod"),
        "raw.aac": fx.encode(d / "raw.aac", x48, 48000, "aac", fmt="adts"),
        "voice.opus": fx.encode(d / "voice.opus", x48, 48000, "libopus", fmt="ogg"),
        "browser.webm": fx.encode(d / "browser.webm", x48, 48000, "libopus", fmt="webm", options={"live": "1"}),
        "meeting.mp4": fx.encode(d / "meeting.mp4", stereo44, 44100, "aac", video="libx264"),
        "clip.mov": fx.encode(d / "clip.mov", x48, 48000, "aac", video="mpeg4"),
        "surround.mkv": fx.encode(d / "surround.mkv", fx.multichannel(x48, 6), 48000, "aac", video="libvpx"),
    }


LOSSLESS = {  # plus the 8 kHz phone call: speech barely reaches above 4 kHz
    "u8.wav",
    "phone_8k.wav",
    "s16_44k_stereo.wav",
    "s24_48k_stereo.wav",
    "f32_22k.wav",
    "s16_48k_6ch.wav",
    "s24_44k_stereo.flac",
}
FORMATS = [
    "u8.wav",
    "s16_44k_stereo.wav",
    "s24_48k_stereo.wav",
    "f32_22k.wav",
    "phone_8k.wav",
    "s16_48k_6ch.wav",
    "s24_44k_stereo.flac",
    "mp3_in.wav",
    "stereo.mp3",
    "voice.m4a",
    "raw.aac",
    "voice.opus",
    "browser.webm",
    "meeting.mp4",
    "clip.mov",
    "surround.mkv",
]


@pytest.mark.parametrize("name", FORMATS)
def test_decodes_every_format(media, speech, name):
    audio = decode_audio(media[name])
    check_output(audio)
    assert abs(len(audio) / SAMPLE_RATE - SPEECH_SECONDS) < 0.05, len(audio) / SAMPLE_RATE
    corr = best_correlation(audio, speech)
    assert corr > (0.99 if name in LOSSLESS else 0.98), corr
    if name in LOSSLESS:  # channels are averaged (gains 0.9..0.3 -> 0.6), not summed nor the first one taken
        assert 0.57 < rms(audio) / rms(speech) < 0.63


def test_shared_files(speech):
    expected = {"en/jfk.flac": 11.0, "en/hotwords.mp3": 4.0, "en/stereo_diarization.wav": 5.0, "zh/sample.wav": 6.0}
    for rel, seconds in expected.items():
        audio = decode_audio(fx.SHARED_AUDIO / rel)
        check_output(audio)
        assert abs(len(audio) / SAMPLE_RATE - seconds) < 0.05, rel
    # A 16 kHz mono WAV comes back sample for sample.
    np.testing.assert_allclose(decode_audio(fx.SPEECH_WAV), speech, atol=1e-6)


def test_sources_bytes_fileobj_and_pipe(media, speech):
    path = media["voice.m4a"]
    data = path.read_bytes()
    reference = decode_audio(path)
    np.testing.assert_array_equal(decode_audio(data), reference)
    with open(path, "rb") as f:
        f.seek(100)  # read from the start whatever the position
        np.testing.assert_array_equal(decode_audio(f), reference)
    np.testing.assert_array_equal(decode_audio(NonSeekable(data)), reference)
    np.testing.assert_array_equal(decode_audio(str(path)), reference)


def test_unicode_and_url_like_file_names(tmp_path, media):
    for name in ("会议 录音.m4a", "concat:a|b.mp3", "http:x.webm"):  # never parsed as an FFmpeg URL
        path = tmp_path / name
        path.write_bytes(media["voice.m4a"].read_bytes())
        assert abs(len(decode_audio(path)) / SAMPLE_RATE - SPEECH_SECONDS) < 0.05
    text = tmp_path / "会议纪要.wav"
    text.write_text("not audio")
    err = raises_code("not_media", text)
    assert err.message("zh") == "会议纪要.wav：无法识别的音频或视频文件"


class NonSeekable(io.RawIOBase):
    """A stream that can only be read forward, like a pipe or an upload socket."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        chunk = self._buf.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


def test_the_media_headers_state_what_the_tests_assume(media):
    """The header durations the decoder's length checks work from (read here with libsndfile and PyAV directly)."""
    assert fx.header_duration(fx.SPEECH_WAV) == pytest.approx(SPEECH_SECONDS, abs=1e-3)
    assert fx.header_duration(media["voice.m4a"]) == pytest.approx(SPEECH_SECONDS, abs=0.05)
    assert fx.header_duration(media["stereo.mp3"]) == pytest.approx(SPEECH_SECONDS, abs=0.05)
    assert fx.header_duration(media["browser.webm"]) is None  # a live recording's header has no duration
    assert fx.header_duration(b"not audio at all") is None
    assert fx.header_duration("/nonexistent/file.wav") is None


def test_one_millisecond_is_audio():
    for rate in (16000, 44100, 8000):
        n = rate // 1000
        tone = (0.5 * np.sin(np.arange(n) * 0.3)).astype(np.float32)
        buf = io.BytesIO()
        sf.write(buf, tone, rate, format="WAV", subtype="PCM_16")
        audio = decode_audio(buf.getvalue(), name="click.wav")
        check_output(audio)
        assert 15 <= len(audio) <= 17


def test_float_wav_with_nan_inf_and_overshoot_is_cleaned():
    values = np.tile(np.array([0.1, np.nan, np.inf, -np.inf, 2.0, -3.0], dtype=np.float32), 1000)
    buf = io.BytesIO()
    sf.write(buf, values, 16000, format="WAV", subtype="FLOAT")
    audio = decode_audio(buf.getvalue())
    check_output(audio)
    assert len(audio) == len(values)


def test_streaming_wav_placeholder_sizes_decode_to_the_end(speech):
    pcm = (speech * 32767).astype("<i2").tobytes()
    for placeholder in (0, 0xFFFFFFFF):
        audio = decode_audio(fx.wav_header(1, 16000, 16, placeholder) + pcm, name="stream.wav")
        assert len(audio) == len(speech)


# --- errors --------------------------------------------------------------------------------------------------------


def test_empty_file(tmp_path):
    path = tmp_path / "rec.mp3"
    path.write_bytes(b"")
    check_messages(raises_code("empty", path), "rec.mp3")
    check_messages(raises_code("empty", fx.wav_header(1, 16000, 16, 0), name="silent.wav"), "silent.wav")


def test_not_media(tmp_path):
    noise = tmp_path / "rec.mp3"
    noise.write_bytes(np.random.default_rng(0).bytes(50_000))
    err = raises_code("not_media", noise)
    check_messages(err, "rec.mp3")
    assert err.message("zh") == "rec.mp3：无法识别的音频或视频文件"
    assert isinstance(err.__cause__, av.error.FFmpegError)
    text = tmp_path / "notes.wav"
    text.write_text("this is a meeting agenda, not a recording\n" * 50)
    check_messages(raises_code("not_media", text), "notes.wav")
    png = b"\x89PNG\r\n\x1a\n" + bytes(200)
    raises_code("not_media", png, name="photo.png")


def test_truncated(tmp_path, media):
    wav = fx.SPEECH_WAV.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(wav[: len(wav) * 6 // 10])
    check_messages(raises_code("truncated", cut), "cut.wav")
    raises_code("truncated", wav[:30], name="header.wav")  # cut inside the header
    raises_code("truncated", wav[:44], name="nodata.wav")  # header only, no samples at all
    for name in ("voice.m4a", "meeting.mp4", "stereo.mp3", "s24_44k_stereo.flac"):
        data = media[name].read_bytes()
        raises_code("truncated", data[: len(data) // 2], name=name)


def test_zero_channels_or_zero_rate_header():
    pcm = bytes(32000)
    check_messages(raises_code("unreadable", fx.wav_header(0, 16000, 16, len(pcm)) + pcm, name="a.wav"), "a.wav")
    raises_code("unreadable", fx.wav_header(1, 0, 16, len(pcm)) + pcm, name="b.wav")
    raises_code("unreadable", fx.wav_header(65535, 16000, 16, len(pcm)) + pcm, name="c.wav")
    raises_code("unreadable", fx.wav_header(1, 1, 16, len(pcm)) + pcm, name="d.wav")  # 1 Hz: a memory bomb


def test_video_without_audio(tmp_path):
    path = fx.video_only(tmp_path / "screen.mp4")
    check_messages(raises_code("no_audio", path), "screen.mp4")


def test_missing_file_and_directory(tmp_path):
    err = raises_code("unreadable", tmp_path / "gone.wav")
    check_messages(err, "gone.wav")
    assert str(tmp_path) not in err.message("en")  # never a server path
    raises_code("unreadable", tmp_path)


def test_too_big(media):
    path = media["stereo.mp3"]
    size = path.stat().st_size
    err = raises_code("too_big", path, max_bytes=size - 1, name="big.mp3")
    check_messages(err, "big.mp3")
    assert "KB" in err.message("en") and "上限" in err.message("zh")
    raises_code("too_big", path.read_bytes(), max_bytes=1000)
    raises_code("too_big", NonSeekable(path.read_bytes()), max_bytes=1000)
    assert len(decode_audio(path, max_bytes=size)) > 0


def test_too_long_is_refused_from_the_header_without_decoding(tmp_path):
    wav = fx.sparse_silent_wav(tmp_path / "4h.wav", 4 * 3600)  # 460 MB on paper, nothing on disk
    mp3 = tmp_path / "4h.mp3"
    mp3.write_bytes(fx.silent_mp3_frame() * (4 * 3600 * 8000 // 576))  # 14 MB, no Xing header: estimated length
    for path in (wav, mp3):
        start = time.perf_counter()
        err = raises_code("too_long", path, max_duration=3 * 3600)
        assert time.perf_counter() - start < 0.5
        check_messages(err, path.name)
        assert err.duration == pytest.approx(4 * 3600, rel=0.01)
        assert "4:00:00" in err.message("en") and "3:00:00" in err.message("zh")


def test_too_long_stops_decoding_at_the_limit(tmp_path, speech):
    path = fx.headerless_webm(tmp_path / "live.webm", 30 * 60)  # no duration in the header: must decode to know
    assert fx.header_duration(path) is None
    start = time.perf_counter()
    err = raises_code("too_long", path, max_duration=10)
    assert time.perf_counter() - start < 0.5  # decoding all 30 minutes takes several times longer
    check_messages(err, "live.webm")
    assert "10.0 s" in err.message("en") and "10.0 秒" in err.message("zh")
    assert len(decode_audio(fx.SPEECH_WAV, max_duration=SPEECH_SECONDS)) == 88747  # exactly at the limit is fine


def test_error_codes_and_names():
    err = AudioError("too_big", "/srv/uploads/tmp123/会议 录音.m4a", size=3 * 2**20, max_bytes=2**20)
    assert err.filename == "会议 录音.m4a"
    assert err.message("zh") == "会议 录音.m4a：文件过大（3.0 MB，上限 1.0 MB）"
    assert AudioError("empty", "C:\\Users\\me\\a.wav").filename == "a.wav"
    assert set(CODES) == {"empty", "not_media", "truncated", "no_audio", "too_long", "too_big", "unreadable"}
    with pytest.raises(ValueError):
        AudioError("nope", "x.wav")


# --- fuzzing -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def seeds(tmp_path_factory, speech) -> list[bytes]:
    """Small valid files of each family, for the fuzzer to mutate."""
    d = tmp_path_factory.mktemp("seeds")
    clip = speech[8000:12000]  # 0.25 s
    paths = [
        fx.write_pcm(d / "s.wav", clip, 16000, "PCM_16"),
        fx.write_pcm(d / "s.flac", clip, 16000, "PCM_16"),
        fx.encode(d / "s.mp3", clip, 16000, "libmp3lame"),
        fx.encode(d / "s.m4a", clip, 16000, "aac", fmt="ipod"),
        fx.encode(d / "s.ogg", clip, 16000, "libopus", fmt="ogg"),
        fx.encode(d / "s.webm", clip, 16000, "libopus", fmt="webm"),
    ]
    return [p.read_bytes() for p in paths]


SPECIAL = [b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\xff\xff\xff\x7f", b"\x01\x00\x00\x00", b"\x00\x00\x01\x00"]


@st.composite
def mutations(draw, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        # Headers matter most: half the edits land in the first 256 bytes.
        pos = draw(st.one_of(st.integers(0, min(255, len(data) - 1)), st.integers(0, len(data) - 1)))
        op = draw(st.sampled_from(["flip", "special", "cut", "insert", "delete"]))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "special":
            data[pos : pos + 4] = draw(st.sampled_from(SPECIAL))
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        else:
            del data[pos : pos + draw(st.integers(1, 64))]
    return bytes(data)


@settings(
    max_examples=600,
    deadline=2000,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_fuzz_only_audio_errors(seeds, data):
    if data.draw(st.booleans()):
        blob = data.draw(st.binary(max_size=2048), label="random")
    else:
        blob = data.draw(mutations(data.draw(st.sampled_from(seeds))), label="mutated")
    # A hang inside FFmpeg cannot be interrupted from Python: dump the stacks and exit rather than block CI.
    faulthandler.dump_traceback_later(60, exit=True)
    assert len(blob) < 1 << 19  # far below the size limit: "too_big" is never the right answer
    try:
        audio = decode_audio(blob, name="fuzz.bin", max_duration=60, max_bytes=1 << 20)
    except AudioError as err:
        expected = {"empty"} if not blob else {"empty", "not_media", "truncated", "no_audio", "too_long", "unreadable"}
        assert err.code in expected and err.filename == "fuzz.bin", (err.code, err.detail)
        assert err.message("en").startswith("fuzz.bin: " + MESSAGES_EN[err.code])
        assert err.message("zh").startswith("fuzz.bin：" + MESSAGES_ZH[err.code])
    else:
        check_output(audio)
    finally:
        faulthandler.cancel_dump_traceback_later()
