"""The one result type every engine returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Segment:
    start: float  # seconds
    end: float  # seconds
    text: str


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

    @property
    def rtf(self) -> float:
        """Real-time factor: processing time over audio time (lower is faster)."""
        return self.elapsed / self.duration if self.duration > 0 else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rtf"] = round(self.rtf, 4)
        return d
