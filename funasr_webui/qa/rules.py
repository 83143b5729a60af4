"""A quality rule and the hit it leaves on a call; validating rules read from JSON (files, the API, the page).

A rule's JSON: ``{"name": "greeting", "kind": "required", "phrases": ["您好", "你好"], "within_s": [0, 15],
"speaker": 1, "enabled": true}``. ``within_s``, ``speaker`` and ``enabled`` are optional. ``within_s`` counts from
the start when both numbers are >= 0, from the end when the first is negative (``[-30, 0]`` = the last 30 s).
``speaker`` is a position: 1 = whoever speaks first in the call (``Segment.speaker`` "S1", the agent when the
agent answers), 2 = the second voice.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ..errors import UserError

KINDS = ("forbidden", "required")
HIT_KINDS = ("forbidden", "missing")  # a forbidden phrase said; a required phrase not said (in its window)
MAX_NAME_CHARS = 100
MAX_PHRASE_CHARS = 50
MAX_PHRASES = 100
MAX_RULES = 500
_FIELDS = {"id", "name", "kind", "phrases", "within_s", "speaker", "enabled"}


@dataclass
class Rule:
    name: str
    kind: str  # "forbidden" | "required"
    phrases: list[str]
    within_s: tuple[float, float] | None = None  # None: the whole call
    speaker: int | None = None  # None: anyone; 1 = the first voice of the call
    enabled: bool = True
    id: int | None = None  # set once stored

    def to_dict(self, with_id: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id} if with_id else {}
        d |= {"name": self.name, "kind": self.kind, "phrases": list(self.phrases)}
        if self.within_s is not None:
            d["within_s"] = [_number(x) for x in self.within_s]
        if self.speaker is not None:
            d["speaker"] = self.speaker
        d["enabled"] = self.enabled
        return d

    def window(self, duration: float) -> tuple[float, float] | None:
        """The window in seconds from the start of a call of ``duration`` seconds (None: the whole call)."""
        if self.within_s is None:
            return None
        lo, hi = self.within_s
        if lo < 0:  # counted from the end; 0 as the second number is the end itself
            return max(0.0, duration + lo), duration + hi
        return lo, hi


@dataclass
class Hit:
    """One finding on one call: a forbidden phrase said (with where), or a required one missing."""

    rule: str  # the rule's name when the call was checked (kept if the rule is renamed or deleted later)
    kind: str  # "forbidden" | "missing"
    phrase: str  # the phrase said; for "missing", the phrases expected, joined by " / "
    start: float | None  # seconds; for "missing", the window searched (None: the whole call)
    end: float | None
    text: str = ""  # the sentence the phrase was said in ("" for "missing")
    segment: int | None = None  # index of that sentence in the record's segments
    rule_id: int | None = None
    speaker: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "kind": self.kind,
            "phrase": self.phrase,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "segment": self.segment,
            "speaker": self.speaker,
        }


@dataclass
class Located:
    """A hit as a report shows it: with the record it belongs to."""

    record_id: int
    name: str  # the record's name (its source when it has none)
    created_at: str  # ISO UTC
    hit: Hit

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.record_id, "name": self.name, "created_at": self.created_at, **self.hit.to_dict()}


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)


def rule_from_dict(item: Any, index: int = 1) -> Rule:
    """One rule from its JSON object; a UserError (code "bad_rule") says what is wrong and how to fix it."""
    if not isinstance(item, dict):
        raise UserError("rule_not_object", rule=f"#{index}")
    raw_name = item.get("name")
    name = raw_name.strip() if isinstance(raw_name, str) else ""
    label = name or f"#{index}"
    unknown = sorted(set(item) - _FIELDS)
    if unknown:
        raise UserError("rule_unknown_field", rule=label, field=unknown[0])
    if not name:
        raise UserError("rule_no_name", rule=label)
    if len(name) > MAX_NAME_CHARS:
        raise UserError("rule_name_too_long", rule=label[:20], limit=MAX_NAME_CHARS)
    kind = item.get("kind")
    if kind not in KINDS:
        raise UserError("rule_bad_kind", rule=label, kind=str(kind))
    phrases = item.get("phrases")
    if isinstance(phrases, str):
        phrases = [phrases]
    if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
        raise UserError("rule_bad_phrases", rule=label)
    cleaned: list[str] = []
    for p in phrases:
        p = " ".join(p.split())
        if p and p not in cleaned:
            cleaned.append(p)
    if not cleaned or not any(_has_letters(p) for p in cleaned):
        raise UserError("rule_no_phrases", rule=label)
    if len(cleaned) > MAX_PHRASES:
        raise UserError("rule_too_many_phrases", rule=label, limit=MAX_PHRASES)
    if any(len(p) > MAX_PHRASE_CHARS for p in cleaned):
        raise UserError("rule_phrase_too_long", rule=label, limit=MAX_PHRASE_CHARS)
    cleaned = [p for p in cleaned if _has_letters(p)]
    return Rule(
        name=name,
        kind=kind,
        phrases=cleaned,
        within_s=_window(item.get("within_s"), label),
        speaker=_speaker(item.get("speaker"), label),
        enabled=_enabled(item.get("enabled", True), label),
        id=item.get("id") if isinstance(item.get("id"), int) else None,
    )


def _has_letters(p: str) -> bool:
    return any(ch.isalnum() for ch in p)


def _window(value: Any, label: str) -> tuple[float, float] | None:
    if value is None:
        return None
    bad = UserError("rule_bad_window", rule=label)
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise bad
    if not all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in value):
        raise bad
    lo, hi = float(value[0]), float(value[1])
    if lo >= hi or (lo < 0 < hi):
        raise bad
    return lo, hi


def _speaker(value: Any, label: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.upper().startswith("S") and value[1:].isdigit():
        value = int(value[1:])  # "S1", as segments label speakers
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 20:
        raise UserError("rule_bad_speaker", rule=label)
    return value


def _enabled(value: Any, label: str) -> bool:
    if not isinstance(value, bool):
        raise UserError("rule_bad_enabled", rule=label)
    return value


def parse_rules(text: str | bytes) -> list[Rule]:
    """A JSON list of rules (a rules file); every rule checked before any is used, names unique."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError("bad_rules_file", detail=str(e)) from None
    if isinstance(data, dict) and isinstance(data.get("rules"), list):
        data = data["rules"]  # what `qa export` and GET /api/v1/rules write
    if not isinstance(data, list):
        raise UserError("bad_rules_file", detail="expected a JSON list of rules")
    if len(data) > MAX_RULES:
        raise UserError("bad_rules_file", detail=f"more than {MAX_RULES} rules")
    rules = [rule_from_dict(item, i) for i, item in enumerate(data, start=1)]
    seen: set[str] = set()
    for r in rules:
        if r.name in seen:
            raise UserError("rule_duplicate", rule=r.name)
        seen.add(r.name)
    return rules


def dump_rules(rules: list[Rule]) -> str:
    """A rules file, as ``parse_rules`` reads it back."""
    return json.dumps([r.to_dict() for r in rules], ensure_ascii=False, indent=2) + "\n"
