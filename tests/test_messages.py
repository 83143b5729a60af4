"""The error catalogue: every code the code raises has its English and Chinese text, and they read as written."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from funasr_webui.audio import CODES as AUDIO_CODES
from funasr_webui.audio import AudioError
from funasr_webui.errors import Cancelled, UserError
from funasr_webui.messages import ERRORS, error_message

PACKAGE = Path(__file__).resolve().parent.parent / "funasr_webui"
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
RAISED = re.compile(r"\b(?:UserError|AudioError)\(\s*\"([a-z_]+)\"")


def sources() -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py")}


def raised_codes() -> set[str]:
    """Every code the package raises with a literal: UserError("code", ...) and AudioError("code", ...)."""
    return {code for text in sources().values() for code in RAISED.findall(text)}


def test_every_code_raised_is_in_the_catalogue_in_both_languages() -> None:
    codes = raised_codes() | set(AUDIO_CODES)
    assert len(codes) > 40, sorted(codes)  # the scan finds them (a broken pattern would find none)
    missing = sorted(codes - ERRORS.keys())
    assert not missing, f"raised but not in messages.ERRORS: {missing}"
    for code in codes:
        for en, zh in ERRORS[code].texts:
            words = re.sub(r"\{[^}]*\}", "", en).strip()
            assert en.strip() and zh.strip(), code
            assert not CJK.search(en), (code, en)
            assert CJK.search(zh) or not re.search(r"[A-Za-z]", words), (code, zh)  # only "{detail}" may be bare


def test_every_catalogue_entry_is_used_and_its_chinese_takes_no_other_parameters() -> None:
    code = "\n".join(text for path, text in sources().items() if path.name != "messages.py")
    unused = sorted(key for key in ERRORS if f'"{key}"' not in code)
    assert not unused, f"in messages.ERRORS but never raised: {unused}"
    parse = string.Formatter().parse
    for key, item in ERRORS.items():
        for en, zh in item.texts:
            # the text is chosen by the English template's parameters: the Chinese may leave a technical one out
            assert {f for _, f, _, _ in parse(zh) if f} <= {f for _, f, _, _ in parse(en) if f}, key


def test_an_unknown_code_fails_where_it_is_raised() -> None:
    with pytest.raises(ValueError, match="nope"):
        UserError("nope")
    with pytest.raises(ValueError):
        AudioError("nope", "x.wav")
    with pytest.raises(ValueError):
        error_message("nope", "en")


def test_messages_read_as_written_in_both_languages() -> None:
    err = UserError("too_many_hotwords", count=120, limit=100)
    assert (err.code, err.status) == ("too_many_hotwords", 422)
    assert err.message("en") == "too many hotwords: 120 given, at most 100 allowed"
    assert err.message("zh-CN") == "热词过多：共 120 个，最多允许 100 个"
    assert str(err) == err.message("en")

    long = AudioError("too_long", "/srv/tmp/会议.wav", duration=12.34, max_duration=10)
    assert long.message("en") == "会议.wav: the audio is too long (12.3 s; the limit is 10.0 s)"
    assert long.message("zh") == "会议.wav：音频时长超出限制（12.3 秒，上限 10.0 秒）"
    assert (
        AudioError("too_long", "a.wav", max_duration=3 * 3600).message("zh")
        == "a.wav：音频时长超出限制（超过上限 3:00:00）"
    )

    big = UserError("upload_too_big", size=2_000_000, max_bytes=256 * 1024)
    assert (big.key, big.code, big.status) == ("upload_too_big", "too_big", 413)
    assert big.message("en") == "the upload is too big (1.9 MB; the limit is 256.0 KB)"
    assert big.message("zh") == "上传文件过大（1.9 MB，上限 256.0 KB）"

    busy = UserError("queue_full", in_flight=3, retry=10, headers={"Retry-After": "10"})
    assert busy.status == 503 and busy.headers == {"Retry-After": "10"}
    assert busy.body() == {
        "error": {
            "code": "queue_full",
            "message": "the server is busy (3 requests in flight); retry in 10 s",
            "message_zh": "服务器繁忙（3 个请求正在处理或排队），请 10 秒后重试",
        }
    }
    form = UserError("form_field_too_long", name="hotwords")
    assert (form.code, form.message("en"), form.message("zh")) == (
        "bad_form",
        "form field 'hotwords' is too long",
        "表单字段 'hotwords' 过长",
    )
    failed = UserError("engine_error", filename="a.wav", error="RuntimeError: CUDA error")
    assert failed.status == 500 and failed.message("zh") == "a.wav：识别失败（RuntimeError: CUDA error）"
    assert (Cancelled().code, Cancelled().status, Cancelled().message("zh")) == (
        "cancelled",
        499,
        "客户端已断开，识别已停止",
    )


def test_a_stored_failure_renders_from_its_code_in_the_readers_language() -> None:
    assert (
        error_message("truncated", "zh", filename="cut.wav")
        == "cut.wav：文件不完整（在结尾之前被截断），请重新上传完整文件"
    )
    assert (
        error_message("truncated", "en")
        == "the file is incomplete (cut off before its end); please upload the whole file"
    )
    # without the numbers it was raised with, the shorter text
    assert error_message("too_long", "en", filename="long.mp3") == "long.mp3: the audio is too long"
    assert error_message("too_big", "zh", filename="big.wav", max_bytes=2**20) == "big.wav：文件过大（超过上限 1.0 MB）"
    # the same text as the error raised with those parameters
    err = AudioError("not_media", "doc.pdf")
    assert error_message(err.key, "zh", **err.params) == err.message("zh") == "doc.pdf：无法识别的音频或视频文件"
