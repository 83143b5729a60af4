"""The error catalogue: every error a user can get, by code, in English and Chinese, with its HTTP status.

Errors are raised by code with parameters (``UserError("too_many_hotwords", count=120, limit=100)``) and their
text is rendered here, so the page, the API, the CLI and a failure stored in the history all read the same
words, in the reader's language (``error_message(code, lang, **params)``).

Rules of the templates:
- an entry holds one or more (English, Chinese) pairs, most detailed first: the first whose placeholders are all
  given (not None) is used, so a stored failure renders without the numbers it was raised with;
- a ``filename`` parameter puts the file's name in front: "name.wav: ..." / "name.wav：...";
- ``duration``/``max_duration`` (seconds) and ``size``/``max_bytes`` (bytes) are formatted for the language:
  "10.0 s" / "10.0 秒", "3:00:00", "256.0 KB".

No Gradio here: the API, the CLI and the decoder use this module without the page.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any

from .helpers import format_duration, format_size

LANGS = ("zh", "en")


def lang_of(value: Any) -> str:
    """The language code ("zh" or "en") from whatever the browser or client sent."""
    return "zh" if str(value or "").lower().startswith("zh") else "en"


@dataclass(frozen=True)
class ErrorText:
    texts: tuple[tuple[str, str], ...]  # (English, Chinese) templates, most detailed first
    status: int = 422  # HTTP status the API answers with
    code: str | None = None  # the code clients see, when it is not the entry's own (several texts share one)
    fields: tuple[frozenset[str], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        parse = string.Formatter().parse
        names = tuple(frozenset(f for _, f, _, _ in parse(en) if f) for en, _ in self.texts)
        object.__setattr__(self, "fields", names)


def _e(*texts: tuple[str, str], status: int = 422, code: str | None = None) -> ErrorText:
    return ErrorText(texts, status, code)


_TOO_LONG_EN, _TOO_LONG_ZH = "the audio is too long", "音频时长超出限制"
_TOO_BIG_EN, _TOO_BIG_ZH = "the file is too big", "文件过大"
_RETRY = ("; retry in {retry} s", "，请 {retry} 秒后重试")

ERRORS: dict[str, ErrorText] = {
    # ---- the file itself (AudioError, see audio.py): 413 too big, 415 not media / no audio, 422 the rest
    "empty": _e(("the file is empty (no audio data)", "文件为空（没有音频数据）")),
    "not_media": _e(("not an audio or video file we can read", "无法识别的音频或视频文件"), status=415),
    "truncated": _e(
        (
            "the file is incomplete (cut off before its end); please upload the whole file",
            "文件不完整（在结尾之前被截断），请重新上传完整文件",
        )
    ),
    "no_audio": _e(("the file has no audio track", "文件中没有音轨"), status=415),
    "too_long": _e(
        (
            _TOO_LONG_EN + " ({duration}; the limit is {max_duration})",
            _TOO_LONG_ZH + "（{duration}，上限 {max_duration}）",
        ),
        (_TOO_LONG_EN + " (longer than the {max_duration} limit)", _TOO_LONG_ZH + "（超过上限 {max_duration}）"),
        (_TOO_LONG_EN, _TOO_LONG_ZH),
    ),
    "too_big": _e(
        (_TOO_BIG_EN + " ({size}; the limit is {max_bytes})", _TOO_BIG_ZH + "（{size}，上限 {max_bytes}）"),
        (_TOO_BIG_EN + " (over the {max_bytes} limit)", _TOO_BIG_ZH + "（超过上限 {max_bytes}）"),
        (_TOO_BIG_EN, _TOO_BIG_ZH),
        status=413,
    ),
    "unreadable": _e(
        (
            "the audio could not be decoded (damaged file or unsupported format)",
            "音频无法解码（文件已损坏或格式不受支持）",
        )
    ),
    # ---- options and recognition
    "too_many_hotwords": _e(
        ("too many hotwords: {count} given, at most {limit} allowed", "热词过多：共 {count} 个，最多允许 {limit} 个")
    ),
    "hotword_too_long": _e(
        ("hotword too long ({limit} characters at most): {word}…", "热词过长（最多 {limit} 个字符）：{word}…")
    ),
    "bad_language": _e(
        (
            "language {language!r} is not supported by the {engine} engine",
            "{engine} 引擎不支持语言 {language!r}",
        )
    ),
    "engine_error": _e(("recognition failed ({error})", "识别失败（{error}）"), status=500),
    "cancelled": _e(("the client went away; transcription stopped", "客户端已断开，识别已停止"), status=499),
    "file_not_found": _e(("no such file", "文件不存在"), code="not_found"),  # the CLI's: never answered over HTTP
    "live_busy": _e(
        (
            "Live dictation is busy: {count} dictations are running (at most {limit}). Try again in a moment, or "
            "record first and recognize after (the other microphone mode).",
            "实时听写繁忙：已有 {count} 路听写在进行（最多 {limit} 路）。请稍后再试，或改用“先录音后识别”模式。",
        ),
        status=503,
    ),
    # ---- FunASR's WebSocket protocol (funasr_ws/), sent in the `error` of a message or a close reason
    "ws_busy": _e(
        (
            "the FunASR WebSocket listener is busy: {count} connections are open (at most {limit}); try again later",
            "FunASR WebSocket 服务繁忙：已有 {count} 个连接（最多 {limit} 个），请稍后再试",
        ),
        status=503,
    ),
    "ws_bad_mode": _e(
        (
            "unsupported mode {mode!r}: use offline, online or 2pass",
            "不支持的模式 {mode!r}：请用 offline、online 或 2pass",
        )
    ),
    "ws_bad_audio_fs": _e(
        (
            "unsupported audio_fs {audio_fs!r}: send PCM at 8000 to 48000 Hz (FunASR clients send 16000)",
            "不支持的 audio_fs {audio_fs!r}：PCM 采样率须在 8000 至 48000 Hz 之间（FunASR 客户端默认 16000）",
        )
    ),
    "ws_bad_message": _e(
        ("a text message that is not a JSON object was ignored", "已忽略一条不是 JSON 对象的文本消息"),
        status=400,
    ),
    "ws_too_much_audio": _e(
        (
            "too much audio on one connection (over {max_duration}); the rest was dropped",
            "单个连接的音频过长（超过 {max_duration}），其余部分已丢弃",
        ),
        status=413,
    ),
    # ---- API access
    "invalid_api_key": _e(("wrong API key or password", "API 密钥或密码错误"), status=401),
    "missing_api_key": _e(
        (
            "an API key is required: send the header 'Authorization: Bearer <key>'",
            "需要 API 密钥：请发送请求头 'Authorization: Bearer <key>'",
        ),
        status=401,
    ),
    "queue_full": _e(
        (
            "the server is busy ({in_flight} requests in flight)" + _RETRY[0],
            "服务器繁忙（{in_flight} 个请求正在处理或排队）" + _RETRY[1],
        ),
        status=503,
    ),
    "too_many_requests": _e(
        (
            "you have {mine} transcriptions in flight already (at most {limit})" + _RETRY[0],
            "您已有 {mine} 个识别请求在处理中（最多 {limit} 个）" + _RETRY[1],
        ),
        status=429,
    ),
    # ---- API requests: the upload
    "not_multipart": _e(
        (
            "send the audio as multipart/form-data with the file in the field 'file'",
            "请以 multipart/form-data 上传，文件放在字段 'file' 中",
        ),
        status=415,
    ),
    "upload_too_big": _e(
        (
            "the upload is too big ({size}; the limit is {max_bytes})",
            "上传文件过大（{size}，上限 {max_bytes}）",
        ),
        ("the upload is over the {max_bytes} limit", "上传文件超过 {max_bytes} 上限"),
        code="too_big",
        status=413,
    ),
    "missing_file": _e(("no audio file: send it as the form field 'file'", "缺少音频文件：请以表单字段 'file' 上传")),
    "unknown_file_field": _e(
        (
            "unknown file field {name!r}; send the audio as 'file'",
            "未知文件字段 {name!r}；请以 'file' 上传音频",
        ),
        code="unknown_option",
    ),
    "form_header_too_long": _e(("a multipart header is too long", "multipart 头部过长"), code="bad_form"),
    "form_part_unnamed": _e(("a form part has no name", "表单字段缺少名称"), code="bad_form"),
    "form_too_many_fields": _e(("too many form fields", "表单字段过多"), code="bad_form"),
    "form_two_files": _e(("one file per request", "每个请求只能上传一个文件"), code="bad_form"),
    "form_field_too_long": _e(("form field {name!r} is too long", "表单字段 {name!r} 过长"), code="bad_form"),
    "form_malformed": _e(("malformed multipart body: {detail}", "multipart 请求体格式错误"), code="bad_form"),
    "form_bad_header": _e(("malformed multipart header: {detail}", "multipart 请求头格式错误"), code="bad_form"),
    "form_incomplete": _e(("the upload ended before the form was complete", "上传在表单结束前中断"), code="bad_form"),
    "form_disconnected": _e(("the client disconnected during the upload", "上传过程中客户端断开连接"), code="bad_form"),
    # ---- API requests: options
    "unknown_option": _e(("unknown option {name!r}", "未知选项 {name!r}")),
    "unknown_query_param": _e(
        ("unknown query parameter {name!r} (known: {known})", "未知查询参数 {name!r}（可用：{known}）"),
        code="unknown_option",
    ),
    "bad_option": _e(("invalid value for {name!r}: {detail}", "选项 {name!r} 的值无效：{detail}")),
    "bad_speakers": _e(
        (
            'speakers must be "auto" or a number of voices from 1 to {limit}, not {value!r}',
            "说话人数须为 auto（自动识别）或 1 到 {limit} 之间的人数，而不是 {value!r}",
        ),
        code="bad_option",
    ),
    "unknown_speaker": _e(
        (
            "record {id} has no speaker {label!r} (its speakers: {known})",
            "记录 {id} 中没有说话人 {label!r}（现有：{known}）",
        ),
        code="bad_option",
    ),
    "repeated_option": _e(("option {name!r} given more than once", "选项 {name!r} 重复"), code="bad_option"),
    "bad_date": _e(
        (
            "{name} must be an ISO date or date-time, e.g. 2024-05-01 or 2024-05-01T08:00:00+08:00",
            "{name} 必须是 ISO 日期或时间，例如 2024-05-01 或 2024-05-01T08:00:00+08:00",
        ),
        code="bad_option",
    ),
    "bad_ids": _e(("ids must be comma-separated numbers", "ids 必须是逗号分隔的数字"), code="bad_option"),
    "engine_unavailable": _e(
        (
            "engine {requested!r} is not loaded: this server runs {loaded}",
            "未加载引擎 {requested!r}：本服务器已加载 {loaded}",
        )
    ),
    # ---- API: not found, and what the framework refuses (its own words, in both fields)
    # ---- quality rules (qa/rules.py): a bad rule names itself and what to fix
    "rule_not_object": _e(
        ("rule {rule}: each rule must be a JSON object", "规则 {rule}：每条规则必须是 JSON 对象"), code="bad_rule"
    ),
    "rule_unknown_field": _e(
        ("rule {rule!r}: unknown field {field!r}", "规则 {rule!r}：未知字段 {field!r}"), code="bad_rule"
    ),
    "rule_no_name": _e(("rule {rule}: it needs a name", "规则 {rule}：缺少名称 name"), code="bad_rule"),
    "rule_name_too_long": _e(
        ("rule {rule!r}: the name is over {limit} characters", "规则 {rule!r}：名称超过 {limit} 个字符"),
        code="bad_rule",
    ),
    "rule_bad_kind": _e(
        (
            "rule {rule!r}: unknown kind {kind!r} (use 'forbidden' or 'required')",
            "规则 {rule!r}：未知类型 {kind!r}（应为 forbidden 或 required）",
        ),
        code="bad_rule",
    ),
    "rule_bad_phrases": _e(
        ("rule {rule!r}: phrases must be a list of words", "规则 {rule!r}：phrases 必须是词语列表"), code="bad_rule"
    ),
    "rule_no_phrases": _e(
        ("rule {rule!r}: phrases is empty (give at least one word)", "规则 {rule!r}：phrases 为空（至少填写一个词）"),
        code="bad_rule",
    ),
    "rule_too_many_phrases": _e(
        ("rule {rule!r}: more than {limit} phrases", "规则 {rule!r}：词语超过 {limit} 个"), code="bad_rule"
    ),
    "rule_phrase_too_long": _e(
        ("rule {rule!r}: a phrase is over {limit} characters", "规则 {rule!r}：有词语超过 {limit} 个字符"),
        code="bad_rule",
    ),
    "rule_bad_window": _e(
        (
            "rule {rule!r}: within_s must be [from, to] in seconds, from < to, both >= 0 (from the start) or both"
            " <= 0 (from the end, e.g. [-30, 0] = the last 30 s)",
            "规则 {rule!r}：within_s 应为 [起, 止]（秒），起 < 止，两者都 >= 0（从开头算）"
            "或都 <= 0（从结尾算，如 [-30, 0] = 最后 30 秒）",
        ),
        code="bad_rule",
    ),
    "rule_bad_speaker": _e(
        (
            "rule {rule!r}: speaker must be a position from 1 (the first voice of the call) to 20",
            "规则 {rule!r}：speaker 应为说话人序号 1（通话中第一个说话的人）到 20",
        ),
        code="bad_rule",
    ),
    "rule_bad_enabled": _e(
        ("rule {rule!r}: enabled must be true or false", "规则 {rule!r}：enabled 应为 true 或 false"), code="bad_rule"
    ),
    "rule_duplicate": _e(("rule {rule!r}: two rules have this name", "规则 {rule!r}：有两条规则同名"), code="bad_rule"),
    "bad_rules_file": _e(("not a rules file ({detail})", "不是有效的规则文件（{detail}）"), code="bad_rule"),
    "rule_exists": _e(("a rule named {rule!r} exists already", "已有名为 {rule!r} 的规则"), status=409),
    "rule_not_found": _e(("no rule {id}", "没有规则 {id}"), code="not_found", status=404),
    "history_unavailable": _e(
        ("cannot open the history database {db}: {reason}", "无法打开历史数据库 {db}：{reason}"), status=503
    ),
    "record_not_found": _e(("no history record {id}", "没有历史记录 {id}"), code="not_found", status=404),
    "job_not_found": _e(("no queued job {id}", "没有排队任务 {id}"), code="not_found", status=404),
    "queue_not_configured": _e(
        (
            "this server has no work queue: start it with --db postgresql://… --queue",
            "此服务器没有任务队列：请用 --db postgresql://… --queue 启动",
        ),
        status=409,
    ),
    "queue_unavailable": _e(
        ("the work queue cannot be reached: {error}", "无法连接任务队列：{error}"),
        ("the work queue cannot be reached", "无法连接任务队列"),
        status=503,
    ),
    "no_endpoint": _e(
        ("no such endpoint: {path} (see /docs)", "没有此接口：{path}（见 /docs）"), code="not_found", status=404
    ),
    "model_not_found": _e(
        ("no such model {model!r} (GET /v1/models lists them)", "没有模型 {model!r}（GET /v1/models 列出可用模型）"),
        code="not_found",
        status=404,
    ),
    "http_not_found": _e(("{detail}", "{detail}"), code="not_found", status=404),
    "http_method_not_allowed": _e(("{detail}", "{detail}"), code="method_not_allowed", status=405),
    "http_error": _e(("{detail}", "{detail}"), status=400),
    "internal_error": _e(("internal server error (see the server log)", "服务器内部错误（见服务器日志）"), status=500),
    # ---- the server's walls (security.py), answered before any app runs
    "host_not_allowed": _e(
        (
            "this server does not answer to that host name; start it with --allowed-host NAME to allow it",
            "服务器不接受此主机名；如需允许，请用 --allowed-host 名称 启动",
        ),
        status=421,
    ),
    "cross_site": _e(
        (
            "request refused: it comes from another web site (cross-site requests need an API key)",
            "请求被拒绝：来自其他网站（跨站请求需要 API 密钥）",
        ),
        status=403,
    ),
    "login_required": _e(("sign in on the page first", "请先在页面登录"), status=401),
    "too_many_uploads": _e(("too many uploads in progress" + _RETRY[0], "正在进行的上传过多" + _RETRY[1]), status=503),
    "upload_timeout": _e(
        (
            "the upload stalled or was too slow and was stopped; send it again",
            "上传停滞或过慢，已中止；请重新上传",
        ),
        status=408,
    ),
}

_FORMATTERS = {
    "duration": format_duration,
    "max_duration": format_duration,
    "size": lambda n, _lang: format_size(n),
    "max_bytes": lambda n, _lang: format_size(n),
}


def entry(code: str) -> ErrorText:
    """The catalogue entry of `code`; ValueError for a code it does not hold (a typo fails where it is raised)."""
    try:
        return ERRORS[code]
    except KeyError:
        raise ValueError(f"unknown error code {code!r}") from None


def error_message(code: str, lang: str = "en", **params: Any) -> str:
    """The message of error `code` in `lang` ("en"/"zh", or a browser locale), e.g. for a failure stored with
    its code: ``error_message("truncated", "zh", filename="a.wav")``. Parameters left out (or None) choose a
    shorter text; ValueError when `code` is unknown or no text of it can be filled."""
    item = entry(code)
    lang = lang_of(lang)
    values = {k: _FORMATTERS[k](v, lang) if k in _FORMATTERS else v for k, v in params.items() if v is not None}
    for (en, zh), needed in zip(item.texts, item.fields, strict=True):
        if needed <= values.keys():
            text = (zh if lang == "zh" else en).format(**values)
            break
    else:
        raise ValueError(f"error {code!r} needs {sorted(item.fields[-1] - values.keys())}")
    if "filename" in values and "filename" not in needed:
        text = f"{values['filename']}：{text}" if lang == "zh" else f"{values['filename']}: {text}"
    return text
