"""Chinese inverse text normalization (spoken numbers -> digits), run on the recognizer's punctuated text.

wetext's zh ITN grammars (compiled FSTs) decide *which* spans are numbers (they keep 一些, 统一, 三心二意, 星期一,
names like 张三, and single digits such as 一个 as they are). We only use the tagger's verdict and the cardinal
verbalizer, and write each token ourselves, because wetext's own verbalizer writes dates as 2025/03/15, times as
3:15p.m., amounts as ¥100 and units as °/km; the product wants 2025年3月15日, 上午9点, 1500元 and 25度.

Post-rules on top of wetext (all small and explicit):
- date: 号 -> 日 (2025年3月15日); an amount's 块 -> 元 (1500元, 三块五 -> 3.5元; 块钱 -> 元), unless 块 is a
  classifier for a thing (十块蛋糕 -> 10块蛋糕).
- units stay in Chinese (二十五度 -> 25度, 三十公里 -> 30公里); 百分之五十 -> 50% is kept from wetext.
- a bare single-digit hour after 上午/下午/... (上午九点 -> 上午9点) and 第 + digit + a counting word (第三季度 ->
  第3季度), which wetext leaves as characters.
- numbers next to 几 stay as words (十几个, 几十个), wetext would write 10几个.
Text without Chinese (e.g. Whisper's English) is returned unchanged.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wetext.token_parser import Token

log = logging.getLogger(__name__)

# Characters that make up a spoken Chinese number.
_DIGITS = {"零": "0", "〇": "0", "幺": "1", "一": "1", "二": "2", "两": "2", "三": "3", "四": "4", "五": "5"}
_DIGITS |= {"六": "6", "七": "7", "八": "8", "九": "9"}
_NUM = "零〇幺一二两三四五六七八九十百千万亿"
_SINGLE = "一二两三四五六七八九"  # a single-digit number, as wetext leaves it untagged
_HAS_CJK = re.compile(r"[\u4e00-\u9fff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HAS_NUM = re.compile(f"[{_NUM}]")
_NUM_RUN = re.compile(f"[{_NUM}]+")

# Whisper may write traditional characters, which the grammars misread (十點三十分 -> 10.310分). These few are
# mapped 1:1 to simplified for the grammars and mapped back in the output; the rest of the text is never touched.
_TO_SIMPLIFIED = str.maketrans("點兩萬億塊號個歲幾錢鐘週時攝釐", "点两万亿块号个岁几钱钟周时摄厘")

# The tagger costs ~0.1 ms per character and grows faster past ~100, so it only sees short windows: clauses
# (numbers never span punctuation), and within them only the stretches around number characters.
_CLAUSE_END = re.compile(r"([。！？；，、：!?;,:\n\r]+)")
_CONTEXT = 8  # chars kept around a number: units (公里每小时), 上午/第/几 before it, idioms (三心二意)
_MAX_WINDOW = 100  # a window dense with numbers is cut at about this length
_CUT_MARGIN = 4  # preferably where no number character is this close

# 块 is a classifier too (十块蛋糕); it means 元 when followed by nothing, punctuation or one of these.
_AMOUNT_FOLLOWERS = set("钱的了吧吗呢啊呀哦嘛左上以到至和或每整")
_KUAI = re.compile(f"([{_NUM}]+)块(?:([{_SINGLE}零])[毛角]?(?:([{_SINGLE}零])分?)?)?")
_QUARTER = re.compile(f"([{_NUM}]+)点([一三]刻)")  # 三点一刻: a time, wetext reads it as 3.1刻
_ROUND_NUMBER = re.compile("([^万亿]+)([万亿]+)")  # a number ending in 万/亿 with none before
_MEASURE_NUMBER = re.compile(f"负?[{_NUM}]+(?:点[{_NUM}]+)?")

# A bare single-digit hour is only safe to convert after a part-of-day word (有三点需要注意 is not a time).
_NOON = "上午|下午|早上|早晨|中午|晚上|凌晨|傍晚|夜里|半夜|清晨|今晚|明晚|明早"
_NOON_HOUR = re.compile(f"({_NOON})([{_SINGLE}])点(?![点儿])")
_HOUR_OCLOCK = re.compile(f"([{_SINGLE}])点钟")
# 第 + single digit only before counting words where digits are usual (第3季度); 第一次, 第二天, 第一时间 stay.
_ORDINAL_WORDS = "季度|章|节|页|条|款|项|届|期|版|卷|集|册|课|单元|层|排|组|轮|局|场|名|阶段|部分|批|号|行|列|段|题"
_ORDINAL = re.compile(f"第([{_SINGLE}])(?=(?:{_ORDINAL_WORDS}))")


@dataclass
class _Piece:
    kind: str  # wetext token name (char, whitelist, cardinal, measure, date, ...) or "kuai" for an amount in 块
    source: str  # the spoken text this token covers
    output: str
    amount: str = ""  # "kuai" only: the amount in digits


class InverseNormalizer:
    """Loads wetext's zh ITN grammars once; calling it is cheap and thread-safe."""

    def __init__(self) -> None:
        # Imported here: importing wetext loads all of its FSTs (~0.4 s), only wanted when ITN is used.
        from wetext.token_parser import TokenParser
        from wetext.utils import tag, verbalize

        self._tag: Callable[[str], str] = lambda text: tag(text, "zh", "itn")
        self._verbalize: Callable[[str], str] = lambda tagged: verbalize(tagged, "zh", "itn")
        self._parser = TokenParser("zh", "itn")
        self._orders = self._parser.orders
        self._lock = threading.Lock()  # kaldifst/TokenParser objects are shared; not documented as thread-safe
        self("三十一")  # warm up

    def __call__(self, text: str) -> str:
        """Spoken-form numbers in Chinese text -> digits; everything else is returned exactly as given."""
        if not _HAS_CJK.search(text) or _KANA.search(text):
            return text  # English (Whisper) or Japanese: the zh grammars do not apply
        parts = _CLAUSE_END.split(text)  # odd indexes are the punctuation itself
        out = []
        for i, part in enumerate(parts):
            simplified = part.translate(_TO_SIMPLIFIED)
            if i % 2 or not _HAS_CJK.search(part) or not _HAS_NUM.search(simplified):
                out.append(part)  # punctuation, English, or nothing to convert: skip the FST
                continue
            converted = "".join(self._chunk(w) if has_number else w for w, has_number in _windows(simplified))
            if simplified != part:  # put back the traditional characters this clause used
                converted = converted.translate({ord(s): o for o, s in zip(part, simplified, strict=True) if o != s})
            out.append(converted)
        return "".join(out)

    def _chunk(self, text: str) -> str:
        try:
            with self._lock:
                pieces = self._pieces(text)
        except Exception:  # ITN must never lose a transcript
            log.exception("ITN failed, text kept as is: %r", text[:80])
            return text
        if pieces is None:
            return text
        _apply_context_rules(pieces)
        return "".join(p.output for p in pieces)

    def _pieces(self, text: str) -> list[_Piece] | None:
        self._parser.parse(self._tag(text))
        pieces = []
        for token in self._parser.tokens:
            fields = {k: _unescape(v) for k, v in token.members.items()}
            source = "".join(v for k, v in fields.items() if k != "preserve_order")
            pieces.append(self._render(token, fields, source))
        if "".join(p.source for p in pieces) != text:
            # Tokens must cover the text exactly, or we could drop or duplicate characters.
            log.warning("ITN tagger did not cover the text, kept as is: %r", text[:80])
            return None
        return pieces

    def _render(self, token: Token, fields: dict[str, str], source: str) -> _Piece:
        kind = token.name
        if kind in ("char", "whitelist"):
            return _Piece(kind, source, source)
        if kind == "cardinal":
            return _Piece(kind, source, self._cardinal(source) or source)
        if kind == "date":
            # 2025年3月15日, not wetext's 2025/03/15; a date's 号 is written 日.
            out = ""
            for key, value in fields.items():
                if key != "preserve_order":
                    value = self._numbers_to_digits(value)
                    out += re.sub("号$", "日", value) if key == "day" else value
            return _Piece(kind, source, out)
        if kind == "time":
            # 上午9点 / 9点半 / 12点30分40秒, not wetext's 9:30a.m.
            out = ""
            for key, value in fields.items():
                out += value if value in ("半", "一刻", "三刻") or key == "noon" else self._numbers_to_digits(value)
            return _Piece(kind, source, out)
        if kind == "measure":
            return self._measure(token, source)
        if kind == "money":
            return self._money(token, fields, source)
        return _Piece(kind, source, self._wetext(token) or source)  # fraction (1/3), telephone, ...

    def _measure(self, token: Token, source: str) -> _Piece:
        if source.startswith(("百分之", "千分之")):
            return _Piece("measure", source, self._wetext(token) or source)  # 50%
        if m := _QUARTER.fullmatch(source):
            return _Piece("measure", source, f"{self._cardinal(m[1]) or m[1]}点{m[2]}")
        if m := _KUAI.fullmatch(source):
            amount = self._cardinal(m[1])
            if amount and (m[2] or m[3]):
                amount += "." + "".join(_DIGITS[d] for d in (m[2] or "零") + (m[3] or ""))
            if amount:
                return _Piece("kuai", source, amount + "块", amount)  # 块 or 元: decided by what follows
        # The number in digits, the unit kept as spoken: 25度 and 30公里, not wetext's 25° and 30km.
        number = _MEASURE_NUMBER.match(source)
        digits = self._cardinal(number[0]) if number else None
        if digits:
            return _Piece("measure", source, digits + source[number.end() :])
        return _Piece("measure", source, self._wetext(token) or source)

    def _money(self, token: Token, fields: dict[str, str], source: str) -> _Piece:
        # 100元, 50.5元, 500美元 rather than wetext's ¥100 / $500.
        if set(fields) - {"value", "currency", "decimal"} or not source.startswith(fields.get("value", "?")):
            return _Piece("money", source, self._wetext(token) or source)  # a shape we have not seen
        amount = self._cardinal(fields["value"])
        decimal = fields.get("decimal", "")
        cents = re.fullmatch(f"([{_SINGLE}零])[角毛](?:([{_SINGLE}零])分)?", decimal)
        if amount and (not decimal or cents):
            if cents:
                amount += "." + _DIGITS[cents[1]] + (_DIGITS[cents[2]] if cents[2] else "")
            return _Piece("money", source, amount + fields.get("currency", ""))
        return _Piece("money", source, self._wetext(token) or source)

    def _wetext(self, token: Token) -> str:
        """wetext's own verbalization of one token ('' when it has none)."""
        return self._verbalize(token.string(self._orders)).strip()

    def _cardinal(self, spoken: str) -> str | None:
        """A spoken number in digits, or None when it is not one."""
        if not spoken:
            return None
        if spoken.startswith("负"):
            rest = self._cardinal(spoken[1:])
            return "-" + rest if rest else None
        digitwise = "".join(_DIGITS.get(ch, "") for ch in spoken)
        if len(digitwise) == len(spoken) and (len(spoken) == 1 or spoken[0] in "零〇"):
            return digitwise  # 九, 零五: wetext has no answer for single digits or a leading zero
        if m := _ROUND_NUMBER.fullmatch(spoken):
            head = self._cardinal(m[1])  # 三十五万 -> 35万, 九万亿 -> 9万亿 (wetext: 350000 or 35万 by context)
            return head + m[2] if head else None
        digits = self._verbalize(f'cardinal {{ value: "{spoken}" }}').strip()
        # Odd inputs come back with spaces (九九八十一 -> "998 11"): keep those as words.
        if re.fullmatch(r"[\d.~万亿-]+", digits) and digits[0].isdigit():
            return digits  # 二零二五 -> 2025, 三四 -> 3~4 (a range), 三点五 -> 3.5
        return digitwise if len(digitwise) == len(spoken) else None  # 二五(年) -> 25: wetext has no reading

    def _numbers_to_digits(self, text: str) -> str:
        return _NUM_RUN.sub(lambda m: self._cardinal(m[0]) or m[0], text)


def _apply_context_rules(pieces: list[_Piece]) -> None:
    """Rules that need a token's neighbours."""
    for i, piece in enumerate(pieces):
        before = pieces[i - 1].source if i > 0 else ""
        after = pieces[i + 1].source if i + 1 < len(pieces) else ""
        if piece.kind not in ("char", "whitelist") and (before.endswith("几") or after.startswith("几")):
            piece.output = piece.source  # 十几个, 几十个: approximate counts stay as words
        elif piece.kind == "kuai":
            nxt = after[:1]
            if nxt == "钱":
                piece.output = piece.amount + "元"  # 一百块钱 -> 100元
                pieces[i + 1].output = pieces[i + 1].output[1:]
            elif not nxt or not _HAS_CJK.match(nxt) or nxt in _AMOUNT_FOLLOWERS:
                piece.output = piece.amount + "元"
    # Runs of plain characters: the spans wetext left alone.
    start = 0
    while start < len(pieces):
        end = start
        while end < len(pieces) and pieces[end].kind == "char":
            end += 1
        if end - start > 1:
            run = "".join(p.output for p in pieces[start:end])
            new = _char_rules(run)
            if new != run:
                pieces[start].output = new
                for p in pieces[start + 1 : end]:
                    p.output = ""
        start = end + 1


def _char_rules(text: str) -> str:
    text = _NOON_HOUR.sub(lambda m: m[1] + _DIGITS[m[2]] + "点", text)
    text = _HOUR_OCLOCK.sub(lambda m: _DIGITS[m[1]] + "点钟", text)
    return _ORDINAL.sub(lambda m: "第" + _DIGITS[m[1]], text)


def _windows(text: str) -> list[tuple[str, bool]]:
    """Split text into (stretch, has_number): numbers with _CONTEXT chars either side, and the rest."""
    spans: list[list[int]] = []
    for m in _NUM_RUN.finditer(text):
        start, end = max(0, m.start() - _CONTEXT), min(len(text), m.end() + _CONTEXT)
        if spans and start <= spans[-1][1]:
            spans[-1][1] = end  # overlapping contexts: one window
        else:
            spans.append([start, end])
    windows, pos = [], 0
    for start, end in spans:
        if start > pos:
            windows.append((text[pos:start], False))
        while end - start > _MAX_WINDOW:  # only text dense with numbers gets here
            cut = next(
                (
                    i
                    for i in range(start + _MAX_WINDOW, start + _MAX_WINDOW // 2, -1)
                    if not _HAS_NUM.search(text, i - _CUT_MARGIN, i + _CUT_MARGIN)
                ),
                start + _MAX_WINDOW,
            )
            windows.append((text[start:cut], True))
            start = cut
        windows.append((text[start:end], True))
        pos = end
    if pos < len(text):
        windows.append((text[pos:], False))
    return windows


def _unescape(value: str) -> str:
    r"""The tagger writes " and \ as \" and \\ inside its token strings."""
    return re.sub(r"\\(.)", r"\1", value, flags=re.DOTALL)
