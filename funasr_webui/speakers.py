"""Speakers of a transcript: stable labels, display names, speaker turns, and splitting a sentence where its
speaker changes."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .transcript import Segment, Transcript

MAX_SPEAKERS = 10  # the most voices --speakers N may ask for, and the most `auto` finds
MAX_NAME_CHARS = 40
AUTO_WORDS = ("auto", "自动")
_SPLIT_MARKS = "，。！？；、,.!?; "  # where a sentence is best cut when its speaker changes inside it


@dataclass
class Turn:
    """Consecutive sentences of one speaker, joined."""

    speaker: str  # label, "" when not known
    name: str  # display name
    start: float
    end: float
    text: str


def labels(segments: list[Segment]) -> list[str]:
    """The speaker labels, in order of first appearance."""
    return list(dict.fromkeys(s.speaker for s in segments if s.speaker))


def relabel_by_appearance(segments: list[Segment]) -> list[Segment]:
    """Any speaker ids (FunASR's 0, 1, ...; clusters' "#3") as "S1", "S2", ... in order of first appearance."""
    mapping = {old: f"S{i}" for i, old in enumerate(labels(segments), start=1)}
    return [replace(s, speaker=mapping.get(s.speaker, "")) for s in segments]


def default_name(label: str, language: str = "") -> str:
    """发言人1 for a Chinese transcript (or one whose language is not known), Speaker 1 otherwise."""
    n = label[1:] if label[:1] == "S" and label[1:].isdigit() else label
    return f"Speaker {n}" if language and not language.startswith("zh") else f"发言人{n}"


def display_name(transcript: Transcript, label: str) -> str:
    return transcript.speaker_names.get(label) or default_name(label, transcript.language)


def speaker_list(transcript: Transcript) -> list[dict[str, str]]:
    """[{"label": "S1", "name": "张经理"}, ...] in order of first appearance (JSON outputs, the page)."""
    return [{"label": lab, "name": display_name(transcript, lab)} for lab in labels(transcript.segments)]


def turns(transcript: Transcript) -> list[Turn]:
    """Speaker turns: consecutive sentences of one speaker joined (Chinese without a space, others with one)."""
    out: list[Turn] = []
    for s in transcript.segments:
        text = s.text.strip()
        if not text:
            continue
        if out and out[-1].speaker == s.speaker:
            last = out[-1]
            joiner = "" if _is_cjk(last.text[-1:]) or _is_cjk(text[:1]) else " "
            last.text, last.end = last.text + joiner + text, s.end
            continue
        name = display_name(transcript, s.speaker) if s.speaker else ""
        out.append(Turn(s.speaker, name, s.start, s.end, text))
    return out


def parse_speakers(value: str | int | None) -> int | None:
    """The speakers option from a CLI, API or page value: None or "" = not asked, "auto" = 0 (find how many),
    "1".."10" = that many; UserError("bad_speakers") for anything else."""
    from .errors import UserError

    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip().lower()
    if text in AUTO_WORDS:
        return 0
    if text.isdigit() and 1 <= int(text) <= MAX_SPEAKERS and not isinstance(value, bool):
        return int(text)
    raise UserError("bad_speakers", value=str(value)[:20], limit=MAX_SPEAKERS)


def checked_names(record_id: int, segments: list[Segment], names: dict[str, str]) -> dict[str, str]:
    """New display names for a record's speakers, cleaned; UserError("unknown_speaker") for a label the record
    does not have."""
    from .errors import UserError

    known = labels(segments)
    for label in names:
        if label not in known:
            raise UserError("unknown_speaker", id=record_id, label=str(label)[:20], known=", ".join(known) or "-")
    return {label: clean_name(str(name or "")) for label, name in names.items()}


def clean_name(name: str) -> str:
    """A display name as given by a user: one line, trimmed, at most MAX_NAME_CHARS."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in name).split())[:MAX_NAME_CHARS]


def split_segment(seg: Segment, at: list[float], speakers: list[str]) -> list[Segment]:
    """`seg` cut at the times `at` (len(speakers) - 1 of them), piece k spoken by speakers[k]. The text is cut by
    word times when the segment has them, else in proportion to time, moved to a nearby punctuation mark or space."""
    if not at:
        return [replace(seg, speaker=speakers[0])]
    bounds = [seg.start, *at, seg.end]
    if seg.words:
        spans = zip(bounds, bounds[1:], strict=False)
        parts = [[w for w in seg.words if a <= (w.start + w.end) / 2 < b] for a, b in spans]
        texts = ["".join(w.word for w in p).strip() for p in parts]
    else:
        parts = [[] for _ in speakers]
        texts = _split_text(seg.text, [(t - seg.start) / max(seg.end - seg.start, 1e-9) for t in at])
    out = []
    for k, text in enumerate(texts):
        if text.strip():
            out.append(Segment(bounds[k], bounds[k + 1], text.strip(), speakers[k], list(seg.tags), parts[k]))
        elif out:  # nothing of the text falls here: the time goes to the previous piece
            out[-1].end = bounds[k + 1]
    if not out:
        return [replace(seg, speaker=speakers[0])]
    out[0].start = seg.start
    return out


def _split_text(text: str, fractions: list[float]) -> list[str]:
    cuts, last = [], 0
    for f in fractions:
        cut = max(last, min(len(text), round(f * len(text))))
        radius = max(2, len(text) // 8)
        marks = [i + 1 for i in range(max(last, cut - radius), min(len(text), cut + radius)) if text[i] in _SPLIT_MARKS]
        if marks:
            cut = min(marks, key=lambda i: abs(i - cut))
        cuts.append(cut)
        last = cut
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def _is_cjk(ch: str) -> bool:
    return bool(ch) and ("\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef")
