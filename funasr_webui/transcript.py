"""The one result type every engine returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Word:
    start: float  # seconds
    end: float  # seconds
    word: str


@dataclass
class Segment:
    start: float  # seconds
    end: float  # seconds
    text: str
    speaker: str = ""  # a short stable label per voice ("S1", "S2", in order of first appearance); "" = not known
    tags: list[str] = field(default_factory=list)  # emotion / sound-event tags the model gave, e.g. ["HAPPY"]
    words: list[Word] = field(default_factory=list)  # word (or character) times, only when asked for

    def extras(self) -> dict[str, Any]:
        """The optional fields that are set, JSON-ready (how history stores them beside start, end, text)."""
        d: dict[str, Any] = {}
        if self.speaker:
            d["speaker"] = self.speaker
        if self.tags:
            d["tags"] = list(self.tags)
        if self.words:
            d["words"] = [[round(w.start, 3), round(w.end, 3), w.word] for w in self.words]
        return d

    @classmethod
    def from_stored(cls, item: list) -> Segment:
        """A segment as history stores it: [start, end, text] or [start, end, text, extras]."""
        start, end, text = float(item[0]), float(item[1]), str(item[2])
        extras = item[3] if len(item) > 3 and isinstance(item[3], dict) else {}
        words = [Word(float(s), float(e), str(w)) for s, e, w in extras.get("words", [])]
        return cls(start, end, text, str(extras.get("speaker", "")), [str(x) for x in extras.get("tags", [])], words)

    def to_stored(self) -> list:
        item: list = [round(self.start, 3), round(self.end, 3), self.text]
        extras = self.extras()
        if extras:
            item.append(extras)
        return item


@dataclass
class Transcript:
    text: str  # final text: punctuated and, when asked, inverse-normalized
    raw_text: str  # the recognizer's text before punctuation and ITN
    segments: list[Segment] = field(default_factory=list)
    language: str = ""
    duration: float = 0.0  # audio seconds
    engine: str = ""
    model: str = ""
    device: str = ""
    elapsed: float = 0.0  # processing seconds
    hotwords: list[str] = field(default_factory=list)
    itn: bool = True
    speaker_names: dict[str, str] = field(default_factory=dict)  # label -> name the user gave ("S1" -> "张经理")

    @property
    def rtf(self) -> float:
        """Real-time factor: processing time over audio time (lower is faster)."""
        return self.elapsed / self.duration if self.duration > 0 else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["segments"] = [segment_dict(s) for s in self.segments]
        d["rtf"] = round(self.rtf, 4)
        from .speakers import speaker_list

        del d["speaker_names"]  # outputs show each speaker's display name instead
        d["speakers"] = speaker_list(self)
        return d


def segment_dict(s: Segment) -> dict[str, Any]:
    """A segment as JSON outputs show it: start, end, text, and only the optional fields that are set."""
    extras = s.extras()
    if "words" in extras:
        extras["words"] = [{"start": w.start, "end": w.end, "word": w.word} for w in s.words]
    return {"start": s.start, "end": s.end, "text": s.text, **extras}
