"""Chinese ITN stage: exact expected strings, so a changed grammar or rule shows up as a failure."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from funasr_webui.itn import InverseNormalizer


@pytest.fixture(scope="module")
def itn() -> InverseNormalizer:
    return InverseNormalizer()  # loads the grammars once for the whole module


# The product documentation's examples.
DOC_EXAMPLES = [
    ("我三十一岁了", "我31岁了"),
    ("今天是二零二五年三月十五号", "今天是2025年3月15日"),  # a date's 号 becomes 日
    ("价格是一千五百块", "价格是1500元"),  # an amount's 块 becomes 元
]

# Shared TTS references (spoken -> written). refs.json writes 15号 / 1500块; our rules add 号->日 and 块->元.
TTS_REF_CASES = [
    ("今天是二零二五年三月十五号，价格是一千五百块。", "今天是2025年3月15日，价格是1500元。"),
    ("我们明天上午九点在会议室开会。", "我们明天上午9点在会议室开会。"),
    ("请把这份文件发给张经理。", "请把这份文件发给张经理。"),
    ("北京的天气很好，温度是二十五度。", "北京的天气很好，温度是25度。"),
    ("第三季度的目标是完成两百个新客户的签约。", "第3季度的目标是完成200个新客户的签约。"),
    ("请您稍等，我帮您查询一下物流信息。", "请您稍等，我帮您查询一下物流信息。"),
    ("这次心电图检查的结果一切正常。", "这次心电图检查的结果一切正常。"),
    ("项目预算总共是三十五万元。", "项目预算总共是35万元。"),
]

# Words that contain number characters but are not numbers.
UNCHANGED = [
    "张三和李四一起去吃饭。",
    "我们一起努力吧。",
    "给我一些时间。",
    "请稍等一下。",
    "一切都很顺利。",
    "我们的想法一样。",
    "大家要统一思想。",
    "万一下雨怎么办？",
    "做事不能三心二意。",
    "星期一开会，周一交报告。",
    "我今天买了三个苹果。",  # single digits stay as words, as in written Chinese
    "这是第一次，也是第二天。",  # 第 + digit only becomes a digit before words like 季度/章/名
    "安全第一。",
    "有三点需要注意。",  # not a time: no 上午/下午 before it
    "来了十几个人，几十个人在等。",  # approximate counts stay as words
]

# Decisions beyond the documented examples (see funasr_webui/itn.py's docstring).
MORE_CASES = [
    ("一千五百块钱", "1500元"),
    ("三十五块五", "35.5元"),
    ("三块五毛", "3.5元"),
    ("一千五百块左右。", "1500元左右。"),
    ("十块蛋糕", "10块蛋糕"),  # 块 as a classifier for things stays
    ("十三元五角", "13.5元"),
    ("五百美元", "500美元"),
    ("百分之五十", "50%"),
    ("三十公里每小时", "30公里每小时"),
    ("负二十度", "-20度"),
    ("下午三点十五分", "下午3点15分"),
    ("早上六点半", "早上6点半"),
    ("凌晨两点", "凌晨2点"),
    ("十二点三十分四十秒", "12点30分40秒"),
    ("三点一刻", "3点一刻"),
    ("一九四九年十月一日", "1949年10月1日"),
    ("十二月三十一号", "12月31日"),
    ("三月十五号到三月二十号", "3月15日到3月20日"),
    ("二零二五年三月十五号星期六", "2025年3月15日星期六"),
    ("十五号楼", "15号楼"),  # no month: not a date
    ("第三十一届", "第31届"),
    ("第一季度", "第1季度"),
    ("三四个", "3~4个"),
    ("七八十岁", "70~80岁"),
    ("三十多岁", "30多岁"),
    ("一亿两千万", "1亿2000万"),
    ("三分之一", "1/3"),
    ("电话是一三八零零一三八零零零", "电话是13800138000"),
    ("九九八十一", "九九八十一"),  # wetext reads it as "998 11": kept as words
    ("十點三十分", "10點30分"),  # traditional characters (Whisper) stay traditional
    ("他今年三十一歲了。", "他今年31歲了。"),
]

# Mixed Chinese / English, punctuation and odd characters pass through intact.
MIXED = [
    ("我用 Python 写了三十一个脚本, hello world!", "我用 Python 写了31个脚本, hello world!"),
    ("Hello 三十一 world, 二零二五年!", "Hello 31 world, 2025年!"),
    ('他说"三十一"岁', '他说"31"岁'),
    ("a\\b 三十一 {x} }", "a\\b 31 {x} }"),
    ("第一行\n第二行 三十一\t岁", "第1行\n第2行 31\t岁"),
    ("😀三十一岁😀", "😀31岁😀"),
    ("  前后有空格 三十一  ", "  前后有空格 31  "),
    ("GPT-4 有一千七百五十亿个参数。", "GPT-4 有1750亿个参数。"),
]

# Text without Chinese is never touched (Whisper's English); Japanese is not Chinese either.
NOT_CHINESE = [
    "",
    "   ",
    "\n",
    " I have three apples, and 31 of them are red.",
    "Meeting at 9 a.m. on March 15th, 2025!",
    "私は三十一歳です。",
]


@pytest.mark.parametrize(("spoken", "written"), DOC_EXAMPLES)
def test_doc_examples(itn: InverseNormalizer, spoken: str, written: str) -> None:
    assert itn(spoken) == written


@pytest.mark.parametrize(("spoken", "written"), TTS_REF_CASES)
def test_tts_refs(itn: InverseNormalizer, spoken: str, written: str) -> None:
    assert itn(spoken) == written


def test_tts_refs_file_is_covered(shared_audio: Path) -> None:
    # If the shared references change, the table above must follow (and its digits must agree with the file's).
    ours = dict(TTS_REF_CASES)
    for ref in json.loads((shared_audio / "tts" / "refs.json").read_text(encoding="utf-8")):
        assert ref["spoken"] in ours, ref["spoken"]
        expected = ours[ref["spoken"]].replace("15日", "15号").replace("1500元", "1500块")
        assert expected == ref["text"]


@pytest.mark.parametrize("text", UNCHANGED)
def test_unchanged(itn: InverseNormalizer, text: str) -> None:
    assert itn(text) == text


@pytest.mark.parametrize(("spoken", "written"), MORE_CASES)
def test_more_cases(itn: InverseNormalizer, spoken: str, written: str) -> None:
    assert itn(spoken) == written


@pytest.mark.parametrize(("spoken", "written"), MIXED)
def test_mixed_text(itn: InverseNormalizer, spoken: str, written: str) -> None:
    assert itn(spoken) == written


@pytest.mark.parametrize("text", NOT_CHINESE)
def test_not_chinese_untouched(itn: InverseNormalizer, text: str) -> None:
    assert itn(text) == text


@pytest.mark.parametrize(("spoken", "written"), DOC_EXAMPLES + TTS_REF_CASES + MORE_CASES + MIXED)
def test_idempotent(itn: InverseNormalizer, spoken: str, written: str) -> None:
    assert itn(written) == written  # already-written text is left alone


def test_long_input(itn: InverseNormalizer) -> None:
    spoken = "".join(s for s, _ in TTS_REF_CASES)
    written = "".join(w for _, w in TTS_REF_CASES)
    repeat = 20_000 // len(spoken) + 1
    start = time.perf_counter()
    result = itn(spoken * repeat)
    elapsed = time.perf_counter() - start
    assert len(spoken * repeat) >= 20_000
    assert result == written * repeat
    assert elapsed < 30  # ~2 s measured on 2 cores; generous for a busy CI machine


def test_long_unpunctuated_input(itn: InverseNormalizer) -> None:
    # Recognizer output with punctuation turned off: one 20k-character clause.
    spoken = "今天是二零二五年三月十五号价格是一千五百块钱我们明天上午九点在会议室开会请把这份文件发给张经理"
    written = "今天是2025年3月15日价格是1500元我们明天上午9点在会议室开会请把这份文件发给张经理"
    repeat = 20_000 // len(spoken) + 1
    start = time.perf_counter()
    assert itn(spoken * repeat) == written * repeat
    assert time.perf_counter() - start < 120  # a bound, not a speed target (~4 s alone; 31 s once under load)


def test_long_run_of_numbers_finishes(itn: InverseNormalizer) -> None:
    text = "一二三四五六七八九十" * 300  # no real number; only has to come back in bounded time
    start = time.perf_counter()
    result = itn(text)
    assert time.perf_counter() - start < 30
    assert isinstance(result, str) and result


def test_thread_safe(itn: InverseNormalizer) -> None:
    cases = [s for s, _ in DOC_EXAMPLES + TTS_REF_CASES + MORE_CASES + MIXED] * 5
    expected = [itn(s) for s in cases]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(itn, cases)) == expected
