"""SenseVoice-Small and Fun-ASR-Nano (+MLT) beside Paraformer, through funasr.AutoModel on tiny random-weight models
built from FunASR's own classes: loading from models/, tags, languages, hotwords in Nano's prompt, VAD times,
batching, several engines loaded at once and chosen per request (service, API, OpenAI client, CLI, page).

The tiny SenseVoice tags every clip <|HAPPY|><|Laughter|> and writes random characters; the tiny Nano always
answers 北京的天气很好。"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
import soundfile as sf

from funasr_webui import cli, engines, models
from funasr_webui.engine import TranscribeOptions
from funasr_webui.errors import UserError
from funasr_webui.history import HistoryStore
from funasr_webui.nano import MLT_LANGUAGES
from funasr_webui.pipeline import Pipeline
from funasr_webui.sensevoice import parse_tagged
from funasr_webui.service import TranscriptionService
from funasr_webui.settings import Settings
from tests.helpers import LiveServer

NANO_PHRASE = "北京的天气很好。"
LOADED = "sensevoice,fun-asr-nano,fun-asr-mlt-nano,paraformer"


@pytest.fixture(scope="module")
def pipeline(tiny_engine_models: Path) -> Pipeline:
    settings = Settings(models_dir=tiny_engine_models, engines=LOADED, offline=True, threads=2, device="cpu")
    return Pipeline.load(settings)


@pytest.fixture
def service(pipeline: Pipeline, tmp_path: Path) -> Iterator[TranscriptionService]:
    settings = pipeline.settings.model_copy(update={"db": tmp_path / "history.db"})
    history = HistoryStore(settings.db)
    try:
        yield TranscriptionService(settings, pipeline, history)
    finally:
        history.close()


@pytest.fixture(scope="module")
def long_audio(shared_audio: Path) -> np.ndarray:
    audio, rate = sf.read(shared_audio / "tts" / "dev_long.wav", dtype="float32")
    assert rate == 16000
    return audio


# ------------------------------------------------------------------ models: ids, folders, download, auto


def test_model_ids_and_folders_agree_with_funasrs_own_alias_tables() -> None:
    """A download lands where the loader looks, under the names FunASR itself uses for these models."""
    from funasr.cli import MODEL_CONFIGS
    from funasr.download.name_maps_from_hub import name_maps_ms

    for hub in (models.PARAFORMER, models.VAD, models.PUNC, models.STREAMING, models.CAMPP):
        assert name_maps_ms[hub.alias] == hub.model_id
    for hub in (models.SENSEVOICE, models.NANO):
        assert MODEL_CONFIGS[hub.alias]["model"] == hub.model_id
    # the MLT model is in neither table: its id is the one its model card gives
    assert models.MLT_NANO.model_id == "FunAudioLLM/Fun-ASR-MLT-Nano-2512"
    folders = {hub.alias: hub.path(Path("models")).name for hub in models.DOWNLOADS["all"]}
    assert folders == {
        "paraformer-zh": "speech_seaco_paraformer_large_asr_nat-zh-cn-16k-common-vocab8404-pytorch",
        "fsmn-vad": "speech_fsmn_vad_zh-cn-16k-common-pytorch",
        "ct-punc": "punc_ct-transformer_cn-en-common-vocab471067-large",
        "paraformer-zh-streaming": "speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-online",
        "fun-asr-nano": "Fun-ASR-Nano-2512",
        "fun-asr-mlt-nano": "Fun-ASR-MLT-Nano-2512",
        "sensevoice": "SenseVoiceSmall",
        "cam++": "speech_campplus_sv_zh-cn_16k-common",
    }
    assert set(models.DOWNLOADS) == {"paraformer", "fun-asr-nano", "fun-asr-mlt-nano", "sensevoice", "cam++", "all"}
    # each engine's folders are the ones its download fetches
    for name in ("paraformer", "fun-asr-nano", "fun-asr-mlt-nano", "sensevoice"):
        assert set(engines.ENGINE_MODELS[name]) <= set(models.DOWNLOADS[name])


@pytest.mark.parametrize("name", ["fun-asr-nano", "sensevoice", "cam++", "all"])
def test_download_command_fails_offline_in_one_line(name: str, offline, tmp_path: Path, capsys) -> None:
    assert cli.main(["download", "--model", name, "--models-dir", str(tmp_path), "--timeout", "30"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: cannot reach ModelScope (modelscope.cn) to download ")
    assert models.DOWNLOAD_LABELS[name] in err
    assert list(tmp_path.iterdir()) == []


def _fake_model(d: Path) -> None:
    d.mkdir(parents=True)
    (d / "config.yaml").write_text("model: x\n")
    (d / "model.pt").write_bytes(b"x")


def test_auto_order_favours_accuracy_on_the_device(tmp_path: Path) -> None:
    assert engines.auto_engine(tmp_path, "cuda") is None
    _fake_model(models.SENSEVOICE.path(tmp_path))
    assert engines.auto_engine(tmp_path, "cpu") == "sensevoice"
    _fake_model(models.NANO.path(tmp_path))
    assert engines.auto_engine(tmp_path, "cuda") == "fun-asr-nano"
    assert engines.auto_engine(tmp_path, "cpu") == "sensevoice"  # an LLM decoder is slow on a CPU
    for hub in models.REQUIRED_SET:
        _fake_model(hub.path(tmp_path))
    assert engines.auto_engine(tmp_path, "cpu") == "paraformer"
    assert engines.auto_engine(tmp_path, "cuda") == "fun-asr-nano"
    assert engines.plan(Settings(models_dir=tmp_path, engines="whisper,sensevoice"), "cpu").names == [
        "whisper",
        "sensevoice",
    ]
    assert engines.plan(Settings(models_dir=tmp_path, engine="sensevoice", engines="whisper"), "cpu").names == [
        "sensevoice",
        "whisper",
    ]


def test_an_unknown_engine_name_is_refused_before_loading(capsys) -> None:
    with pytest.raises(ValueError, match=r"unknown engine 'kaldi': choose from paraformer, fun-asr-nano"):
        engines.parse_engine_list("sensevoice, kaldi")
    with pytest.raises(SystemExit):
        cli.main(["transcribe", "x.wav", "--engines", "sensevoice,kaldi"])
    assert "unknown engine 'kaldi'" in capsys.readouterr().err


def test_an_engine_whose_models_are_missing_fails_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(models.ModelUnavailable) as e:
        Pipeline.load(Settings(models_dir=tmp_path, engine="sensevoice", offline=True, device="cpu", threads=2))
    assert str(e.value) == (
        f"offline mode (--offline): SenseVoice-Small models are not in {tmp_path} (SenseVoiceSmall);"
        " run `./run.sh download --model sensevoice` where ModelScope can be reached"
    )


# ------------------------------------------------------------------ SenseVoice


def test_sensevoice_tags_are_parsed_out_of_the_text() -> None:
    tagged = parse_tagged("<|en|><|HAPPY|><|Laughter|><|withitn|>Hello there.")
    assert (tagged.text, tagged.language, tagged.tags) == ("Hello there.", "en", ["HAPPY", "Laughter"])
    plain = parse_tagged("<|zh|><|NEUTRAL|><|Speech|><|woitn|>你好 <|zh|><|SAD|><|BGM|><|woitn|>再见")
    assert (plain.text, plain.language, plain.tags) == ("你好 再见", "zh", ["SAD", "BGM"])
    assert parse_tagged("<|nospeech|><|EMO_UNKNOWN|><|Event_UNK|><|woitn|>").text == ""


def test_sensevoice_loads_from_models_and_gives_tagged_segments_at_vad_times(
    pipeline: Pipeline, long_audio: np.ndarray, tiny_engine_models: Path
) -> None:
    engine = pipeline.engines["sensevoice"]
    assert engine.describe()["model_path"] == str(models.SENSEVOICE.path(tiny_engine_models))
    assert engine.languages == ("zh", "en", "yue", "ja", "ko")
    t = pipeline.transcribe(long_audio, TranscribeOptions(engine="sensevoice"))
    assert (t.engine, t.model, t.language) == ("sensevoice", "SenseVoiceSmall", "zh")
    spans = pipeline.vad.segments(long_audio)
    assert len(spans) > 3
    assert [(s.start, s.end) for s in t.segments] == [(round(a, 3), round(b, 3)) for a, b in spans]
    for s in t.segments:
        assert s.tags == ["HAPPY", "Laughter"] and s.text and "<|" not in s.text
    assert "<|" not in t.text and t.text == "".join(s.text for s in t.segments)


def test_sensevoice_language_and_itn_reach_the_model_and_itn_is_never_applied_twice(
    pipeline: Pipeline, long_audio: np.ndarray
) -> None:
    engine = pipeline.engines["sensevoice"]
    clip = long_audio[: 16000 * 4]
    assert pipeline.transcribe(clip, TranscribeOptions(engine="sensevoice", language="ko")).language == "ko"
    clips = [clip[int(a * 16000) : int(b * 16000)] for a, b in pipeline.vad.segments(clip)]
    for itn in (True, False):
        direct = [r["text"] for r in engine.model.generate(input=clips, use_itn=itn, batch_size=8, disable_pbar=True)]
        assert all(("<|withitn|>" if itn else "<|woitn|>") in d for d in direct)
        got = pipeline.transcribe(clip, TranscribeOptions(engine="sensevoice", itn=itn))
        # the model's own text, clip by clip: our ITN is not applied on top
        assert [s.text for s in got.segments] == [parse_tagged(d).text for d in direct]


def test_sensevoice_gives_character_times_when_asked(pipeline: Pipeline, long_audio: np.ndarray) -> None:
    plain = pipeline.transcribe(long_audio, TranscribeOptions(engine="sensevoice"))
    timed = pipeline.transcribe(long_audio, TranscribeOptions(engine="sensevoice", word_timestamps=True))
    assert all(s.words == [] for s in plain.segments)
    assert [s.text for s in timed.segments] == [s.text for s in plain.segments]
    for s in timed.segments:
        assert "".join(w.word for w in s.words) == s.text.replace("，", "").replace("。", "")
        assert all(s.start <= w.start < w.end <= s.end + 0.06 for w in s.words)
        assert [w.start for w in s.words] == sorted(w.start for w in s.words)


def test_sensevoice_batching_does_not_change_the_result(pipeline: Pipeline, long_audio: np.ndarray) -> None:
    engine = pipeline.engines["sensevoice"]
    progress: list[float] = []
    batched = pipeline.transcribe(long_audio, TranscribeOptions(engine="sensevoice", progress=progress.append))
    saved = engine.batch_size
    engine.batch_size = 1
    try:
        single = pipeline.transcribe(long_audio, TranscribeOptions(engine="sensevoice"))
    finally:
        engine.batch_size = saved
    assert [(s.start, s.end, s.text) for s in single.segments] == [(s.start, s.end, s.text) for s in batched.segments]
    assert progress[-1] == 1.0 and progress == sorted(progress)


def test_silence_gives_an_empty_transcript_on_every_engine(pipeline: Pipeline) -> None:
    for name in ("sensevoice", "fun-asr-nano"):
        t = pipeline.transcribe(np.zeros(16000 * 2, dtype=np.float32), TranscribeOptions(engine=name))
        assert t.text == "" and t.segments == []


# ------------------------------------------------------------------ Fun-ASR-Nano


@pytest.fixture
def prompts(pipeline: Pipeline, monkeypatch) -> dict[str, list[str]]:
    """The prompt each Nano model's real get_prompt builds for the LLM, recorded on the way through."""
    seen: dict[str, list[str]] = {}
    for name in ("fun-asr-nano", "fun-asr-mlt-nano"):
        model = pipeline.engines[name].model.model
        original = model.get_prompt

        def recording(*args, _original=original, _name=name, **kwargs):
            prompt = _original(*args, **kwargs)
            seen.setdefault(_name, []).append(prompt)
            return prompt

        monkeypatch.setattr(model, "get_prompt", recording)
    return seen


def test_nano_hotwords_language_and_itn_reach_its_prompt(pipeline: Pipeline, long_audio: np.ndarray, prompts) -> None:
    clip = long_audio[: 16000 * 4]
    t = pipeline.transcribe(clip, TranscribeOptions(engine="fun-asr-nano", hotwords=["达摩院", "魔搭"], language="zh"))
    assert t.text == NANO_PHRASE and t.language == "zh" and t.hotwords == ["达摩院", "魔搭"]
    assert "热词列表：[达摩院, 魔搭]" in prompts["fun-asr-nano"][-1]
    assert prompts["fun-asr-nano"][-1].endswith("语音转写成中文：")
    pipeline.transcribe(clip, TranscribeOptions(engine="fun-asr-nano", itn=False))
    assert prompts["fun-asr-nano"][-1] == "语音转写，不进行文本规整："  # auto language, no hotwords, no ITN
    pipeline.transcribe(clip, TranscribeOptions(engine="fun-asr-mlt-nano", language="vi"))
    assert prompts["fun-asr-mlt-nano"][-1] == "语音转写成越南语："


def test_nano_segments_are_vad_clips_and_batching_keeps_them(pipeline: Pipeline, long_audio: np.ndarray) -> None:
    engine = pipeline.engines["fun-asr-nano"]
    batched = pipeline.transcribe(long_audio, TranscribeOptions(engine="fun-asr-nano"))
    spans = pipeline.vad.segments(long_audio)
    assert [(s.start, s.end) for s in batched.segments] == [(round(a, 3), round(b, 3)) for a, b in spans]
    assert all(s.text == NANO_PHRASE for s in batched.segments)
    assert batched.text == NANO_PHRASE * len(spans) and batched.raw_text == batched.text
    saved = engine.batch_size
    engine.batch_size = 1
    try:
        single = pipeline.transcribe(long_audio, TranscribeOptions(engine="fun-asr-nano"))
    finally:
        engine.batch_size = saved
    assert [(s.start, s.end, s.text) for s in single.segments] == [(s.start, s.end, s.text) for s in batched.segments]


def test_each_nano_offers_its_own_languages(service: TranscriptionService) -> None:
    assert service.pipeline.engines["fun-asr-nano"].languages == ("zh", "en", "ja")
    assert len(MLT_LANGUAGES) == 31 and service.pipeline.engines["fun-asr-mlt-nano"].languages[:3] == ("zh", "en", "ja")
    assert service.options(language="ko", engine="fun-asr-mlt-nano").language == "ko"
    with pytest.raises(UserError) as e:
        service.options(language="ko", engine="fun-asr-nano")
    assert e.value.code == "bad_language" and "fun-asr-nano" in e.value.message("en")


# ------------------------------------------------------------------ several engines, chosen per request


def test_every_engine_is_loaded_once_the_first_being_the_default(pipeline: Pipeline) -> None:
    assert list(pipeline.engines) == ["sensevoice", "fun-asr-nano", "fun-asr-mlt-nano", "paraformer"]
    assert pipeline.engine is pipeline.engines["sensevoice"]
    # one FSMN-VAD for the engines that use ours
    assert pipeline.engines["fun-asr-nano"].vad is pipeline.vad is pipeline.engines["sensevoice"].vad


def test_the_service_runs_the_engine_each_request_names_and_history_records_it(
    service: TranscriptionService, shared_audio: Path
) -> None:
    path = shared_audio / "zh" / "asr_example.wav"
    made = {}
    for name in ("fun-asr-nano", "paraformer", None):
        outcome = service.transcribe_file(path, name=path.name, source="api", options=service.options(engine=name))
        made[name] = service.get(outcome.record_id)
    assert (made["fun-asr-nano"].engine, made["fun-asr-nano"].model) == ("fun-asr-nano", "Fun-ASR-Nano-2512")
    assert made["fun-asr-nano"].text == NANO_PHRASE
    assert made["paraformer"].engine == "paraformer"
    assert made[None].engine == "sensevoice"  # the default
    assert made[None].transcript().segments[0].tags == ["HAPPY", "Laughter"]  # stored per segment
    assert [r.engine for r in service.search(engine="fun-asr-nano").records] == ["fun-asr-nano"]
    # the same file with another engine is not "done before"
    assert service.previous(path, service.options(engine="fun-asr-mlt-nano")) is None
    with pytest.raises(UserError) as e:
        service.options(engine="whisper")
    assert e.value.code == "engine_unavailable"
    assert e.value.message("en") == (
        "engine 'whisper' is not loaded: this server runs 'sensevoice' (SenseVoiceSmall), "
        "'fun-asr-nano' (Fun-ASR-Nano-2512), 'fun-asr-mlt-nano' (Fun-ASR-MLT-Nano-2512), "
        "'paraformer' (speech_seaco_paraformer_large_asr_nat-zh-cn-16k-common-vocab8404-pytorch)"
    )
    assert e.value.message("zh").startswith("未加载引擎 'whisper'：本服务器已加载 'sensevoice' (SenseVoiceSmall)")


@pytest.fixture
def server(service: TranscriptionService) -> Iterator[LiveServer]:
    from funasr_webui.server import create_app

    with LiveServer(create_app(service)) as live:
        yield live


def test_api_and_openai_client_choose_the_engine_per_request(server: LiveServer, shared_audio: Path) -> None:
    import openai

    health = requests.get(server.url + "/health", timeout=30).json()
    assert [(e["name"], e["device"], e["default"]) for e in health["engines"]] == [
        ("sensevoice", "cpu", True),
        ("fun-asr-nano", "cpu", False),
        ("fun-asr-mlt-nano", "cpu", False),
        ("paraformer", "cpu", False),
    ]
    assert health["engines"][0]["languages"] == ["zh", "en", "yue", "ja", "ko"]
    path = shared_audio / "zh" / "asr_example.wav"

    def native(**fields) -> requests.Response:
        with path.open("rb") as f:
            return requests.post(
                server.url + "/api/v1/transcriptions", files={"file": (path.name, f)}, data=fields, timeout=120
            )

    nano = native(engine="fun-asr-nano").json()
    assert (nano["engine"], nano["text"]) == ("fun-asr-nano", NANO_PHRASE)
    sense = native().json()
    assert sense["engine"] == "sensevoice" and sense["segments"][0]["tags"] == ["HAPPY", "Laughter"]
    refused = native(engine="whisper")
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "engine_unavailable"
    assert "'sensevoice' (SenseVoiceSmall)" in refused.json()["error"]["message"]

    client = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-local")
    with path.open("rb") as f:
        chosen = client.audio.transcriptions.create(model="fun-asr-mlt-nano", file=f)
    assert chosen.text == NANO_PHRASE and chosen.model_extra["model"] == "fun-asr-mlt-nano"
    with path.open("rb") as f:
        default = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="verbose_json")
    assert default.text and "<|" not in default.text and default.language == "zh"
    with path.open("rb") as f, pytest.raises(openai.UnprocessableEntityError) as e:
        client.audio.transcriptions.create(model="whisper", file=f)  # an engine's name, not loaded here
    assert e.value.body["code"] == "engine_unavailable"


def test_cli_chooses_the_engine_and_loads_the_listed_ones(
    tiny_engine_models: Path, shared_audio: Path, tmp_path, capsys
):
    path = shared_audio / "zh" / "asr_example.wav"
    common = ["--models-dir", str(tiny_engine_models), "--db", str(tmp_path / "h.db"), "--offline", "--device", "cpu"]
    argv = ["transcribe", str(path), "--format", "json", "--engines", "sensevoice,fun-asr-nano", "--threads", "2"]
    assert cli.main([*argv, "--engine", "fun-asr-nano", *common]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["engine"], out["text"]) == ("fun-asr-nano", NANO_PHRASE)
    assert cli.main([*argv, *common]) == 0  # no --engine: the first listed
    out = json.loads(capsys.readouterr().out)
    assert out["engine"] == "sensevoice" and out["segments"][0]["tags"] == ["HAPPY", "Laughter"]


def test_the_page_offers_the_loaded_engines_and_shows_tags_as_badges(
    service: TranscriptionService, shared_audio: Path
) -> None:
    from funasr_webui.ui.app import build_page

    page = build_page(service)
    selector = page.single.options.engine
    assert selector.visible and selector.value == "sensevoice"
    assert [value for _label, value in selector.choices] == [
        "sensevoice",
        "fun-asr-nano",
        "fun-asr-mlt-nano",
        "paraformer",
    ]
    assert [value for _label, value in page.batch.options.engine.choices] == [v for _l, v in selector.choices]
    assert page.microphone.options.engine.visible
    assert "fun-asr-nano (Fun-ASR-Nano-2512, CPU)" in page.header.engine_line("en")
    assert page.header.notice("en")["visible"] is False  # no stand-in: a FunASR model is the default

    path = str(shared_audio / "zh" / "asr_example.wav")
    status, text, stats, segments, *_ = page.single.callbacks.single_start(path, "", True, "auto", "zh", "sensevoice")
    assert "<|" not in text and text
    assert '<span class="tag-badge" title="HAPPY">😊 开心 ×1</span>' in stats
    assert segments.iloc[0, 2].startswith("[😊 开心] [😄 笑声] ")
    status, text, *_ = page.single.callbacks.single_start(path, "", True, "auto", "en", "fun-asr-nano")
    assert text == NANO_PHRASE
    status, text, *_ = page.single.callbacks.single_start(path, "", True, "auto", "en", "whisper")
    assert "engine 'whisper' is not loaded" in status
    from funasr_webui.ui.components import language_update

    assert [v for _l, v in language_update(service, "fun-asr-nano")["choices"]] == ["auto", "zh", "en", "ja"]
    assert language_update(service, "paraformer")["visible"] is False


def test_live_dictation_runs_the_chosen_engine(service: TranscriptionService, long_audio: np.ndarray) -> None:
    from funasr_webui.live import LiveTranscriber

    live = LiveTranscriber(service.pipeline)
    state = live.start(service.options(engine="fun-asr-nano"))
    pcm = (long_audio[: 16000 * 12] * 32767).astype(np.int16)
    for i in range(0, pcm.size, 4800):
        live.feed(state, pcm[i : i + 4800], 16000)
    live.finish(state)
    assert state.sentences and all(s.text == NANO_PHRASE for s in state.sentences)
    transcript = live.transcript(state)
    assert (transcript.engine, transcript.model) == ("fun-asr-nano", "Fun-ASR-Nano-2512")


@pytest.mark.browser
def test_the_model_selector_in_the_browser(server: LiveServer, chromium: Path, shared_audio: Path) -> None:
    """Choose a model on the Single file tab, recognize, then another: each answers, SenseVoice with its badges."""
    import re

    from tests.browser_setup import ARTIFACTS, LAUNCH_ARGS, VIEWPORT, playwright_sync_api

    sync_api = playwright_sync_api()
    expect = sync_api.expect
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=LAUNCH_ARGS)
        try:
            page = browser.new_context(locale="en-US", viewport=VIEWPORT).new_page()
            page.goto(server.url + "/")
            expect(page.locator("#engine-line")).to_contain_text("Loaded models", timeout=60_000)
            expect(page.locator("#engine-line")).to_contain_text("fun-asr-mlt-nano (Fun-ASR-MLT-Nano-2512, CPU)")
            selector = page.locator("#single-engine")
            expect(selector).to_contain_text("Recognition model")
            expect(page.locator("#single-language")).to_be_visible()  # SenseVoice, the default, has languages

            def choose(label: str) -> None:
                selector.locator("input").click()
                page.get_by_role("option", name=re.compile("^" + re.escape(label))).click()

            page.locator("#single-file input[type=file]").set_input_files(str(shared_audio / "zh" / "asr_example.wav"))
            choose("Paraformer")
            expect(page.locator("#single-language")).to_be_hidden()  # Paraformer: nothing to choose
            choose("Fun-ASR-Nano (")
            expect(page.locator("#single-language")).to_be_visible()
            page.locator("#single-start").click()
            expect(page.locator("#single-text textarea")).to_have_value(NANO_PHRASE, timeout=120_000)
            expect(page.locator("#single-stats .tag-badge")).to_have_count(0)

            choose("SenseVoice-Small")
            page.locator("#single-start").click()
            expect(page.locator("#single-stats .tag-badge").first).to_have_text("😊 happy ×1", timeout=120_000)
            expect(page.locator("#single-segments")).to_contain_text("[😊 happy] [😄 laughter]")
            assert "<|" not in page.locator("#single-text textarea").input_value()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "engines-selector.png"), full_page=True)
        finally:
            browser.close()
