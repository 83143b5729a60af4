"""Checking one call against the rules: which forbidden phrases were said where, which required ones are missing.

Matching ignores punctuation, spaces, letter case and full-/half-width forms, so "您好，" matches "您 好". It runs on
every sentence's final text, and on the raw text too (before punctuation and ITN), so ITN writing "一千五百" as
"1500" does not hide the phrase "一千五百"; a phrase is also looked for in its own ITN form. A phrase found in the
raw text more often than in the sentences is placed in the sentence at the same relative position.

A hit's time is the sentence's start and end, narrowed to where the phrase sits in it (by its share of the
sentence's characters, or by the word times when the engine gave them). A phrase counts for a time window when it
starts inside the window.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..transcript import Segment
from .rules import Hit, Rule

_NOT_WORD = re.compile(r"[\W_]+")


def normalize(text: str) -> str:
    """Letters and digits only, lower-cased, NFKC (full-width forms folded)."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).lower())


@dataclass
class CallText:
    """What a call is checked on: its sentences, raw text and length (a Transcript or a stored record)."""

    segments: Sequence[Segment]
    raw_text: str
    duration: float


@dataclass
class _Occurrence:
    segment: int
    pos: int  # character offset of the phrase in the sentence's normalized text
    length: int


def _find_all(haystack: str, needle: str) -> list[int]:
    out, i = [], haystack.find(needle)
    while i >= 0:
        out.append(i)
        i = haystack.find(needle, i + len(needle))
    return out


class _Prepared:
    """A call's normalized sentences and raw text, computed once for all rules."""

    def __init__(self, call: CallText) -> None:
        self.segments = list(call.segments)
        self.norm = [normalize(s.text) for s in self.segments]
        self.raw = normalize(call.raw_text)
        self.joined = "\n".join(self.norm)  # "\n" never occurs in normalized text: no match spans two sentences
        self.duration = float(call.duration) or (self.segments[-1].end if self.segments else 0.0)
        # each sentence's share of the whole text, to place a raw-text occurrence in a sentence
        self.starts: list[int] = []
        total = 0
        for n in self.norm:
            self.starts.append(total)
            total += len(n)
        self.total = total
        # speaker positions in order of first appearance: S1 = 1 (labels are assigned that way, but stored
        # labels from any engine are re-ranked so "first voice" always means the first one heard)
        order: list[str] = []
        for s in self.segments:
            if s.speaker and s.speaker not in order:
                order.append(s.speaker)
        self.speaker_pos = {label: i + 1 for i, label in enumerate(order)}

    def occurrences(self, variants: list[str]) -> list[_Occurrence]:
        if not any(v in self.joined for v in variants) and variants[0] not in self.raw:
            return []  # the usual case, decided with one search over the whole call
        found: list[_Occurrence] = []
        for i, text in enumerate(self.norm):
            taken: list[tuple[int, int]] = []
            for v in variants:
                for pos in _find_all(text, v):
                    if not any(pos < b and a < pos + len(v) for a, b in taken):  # "1500" and "一千五百" once
                        taken.append((pos, pos + len(v)))
                        found.append(_Occurrence(i, pos, len(v)))
        raw_hits = _find_all(self.raw, variants[0])
        if len(raw_hits) > len(found) and self.total:
            # said, but hidden from the sentences (ITN rewrote it): each raw occurrence is placed in the sentence
            # at the same relative position, unless that sentence already holds one found above
            per_segment = Counter(o.segment for o in found)
            scale = self.total / max(1, len(self.raw))
            for pos in raw_hits:
                if len(found) >= len(raw_hits):
                    break
                at = min(self.total - 1, int(pos * scale))
                seg = max(0, bisect.bisect_right(self.starts, at) - 1)
                if per_segment[seg]:
                    per_segment[seg] -= 1
                    continue
                found.append(_Occurrence(seg, at - self.starts[seg], len(variants[0])))
        found.sort(key=lambda o: (o.segment, o.pos))
        return found

    def time_of(self, occ: _Occurrence) -> tuple[float, float]:
        s = self.segments[occ.segment]
        words = s.words
        n = max(1, len(self.norm[occ.segment]))
        if words:  # the engine's word times: the word holding the phrase's first and last characters
            spans, at = [], 0
            for w in words:
                k = len(normalize(w.word))
                spans.append((at, at + k, w))
                at += k
            first = next((w for a, b, w in spans if a <= occ.pos < b), None)
            last = next((w for a, b, w in spans if a < occ.pos + occ.length <= b), None)
            if first is not None and last is not None:
                return round(first.start, 3), round(last.end, 3)
        span = max(0.0, s.end - s.start)
        start = s.start + span * occ.pos / n
        end = s.start + span * min(n, occ.pos + occ.length) / n
        return round(start, 3), round(end, 3)


class Checker:
    """The enabled rules, with each phrase's normalized forms worked out once (for one call, or 100,000)."""

    def __init__(self, rules: Sequence[Rule], itn: Callable[[str], str] | None = None) -> None:
        self.rules = [r for r in rules if r.enabled]
        # per rule: (phrase, its normalized form, and its ITN'd form for calls whose text went through ITN)
        self._plain = [[(p, [normalize(p)]) for p in r.phrases] for r in self.rules]
        self._itn = [[(p, _variants(p, itn)) for p in r.phrases] for r in self.rules] if itn else self._plain

    def check(self, call: CallText, itn: bool = True) -> list[Hit]:
        """The hits of ``call``, in rule order then time order; ``itn``: whether its final text went through ITN."""
        prepared = _Prepared(call)
        hits: list[Hit] = []
        for rule, phrases in zip(self.rules, self._itn if itn else self._plain, strict=True):
            hits.extend(_check_rule(prepared, rule, phrases))
        return hits


def check(call: CallText, rules: Sequence[Rule], itn: Callable[[str], str] | None = None) -> list[Hit]:
    """The hits of ``call`` against the enabled ``rules``. ``itn``: the inverse normalizer the call's final text
    went through (None when ITN was off), so a phrase is also matched in its written form ("一千五百" → "1500")."""
    return Checker(rules, itn).check(call, itn is not None)


def _variants(phrase: str, itn: Callable[[str], str] | None) -> list[str]:
    out = [normalize(phrase)]
    if itn is not None:
        written = normalize(itn(phrase))
        if written and written not in out:
            out.append(written)
    return [v for v in out if v]


def _check_rule(call: _Prepared, rule: Rule, phrases: list[tuple[str, list[str]]]) -> list[Hit]:
    window = rule.window(call.duration)
    # A speaker limit applies when the call has speakers; without them every sentence is the speaker's.
    limit = rule.speaker if call.speaker_pos else None
    found: list[Hit] = []
    for phrase, variants in phrases:
        for occ in call.occurrences(variants):
            seg = call.segments[occ.segment]
            if limit is not None and call.speaker_pos.get(seg.speaker) != limit:
                continue
            start, end = call.time_of(occ)
            if window is not None and not (window[0] <= start <= window[1]):
                continue
            found.append(Hit(rule.name, "forbidden", phrase, start, end, seg.text, occ.segment, rule.id, seg.speaker))
    if rule.kind == "forbidden":
        found.sort(key=lambda h: (h.start or 0.0, h.phrase))
        return found
    if found:
        return []
    lo, hi = window if window is not None else (None, None)
    if lo is not None:
        lo, hi = round(lo, 3), round(min(hi, call.duration) if call.duration else hi, 3)
    return [Hit(rule.name, "missing", " / ".join(rule.phrases), lo, hi, "", None, rule.id)]
