"""Output writers: one small class per format (TXT, SRT, VTT, JSON, Markdown, DOCX).

With speakers, every format says who spoke, by display name (a name the user gave, else 发言人1 / Speaker 1):
TXT and the documents as speaker turns, SRT with the name before the text, VTT with `<v Name>` voice tags, JSON
with `speaker` on each segment and the list of speakers. DOCX is the only binary format: `render_bytes` gives
every format as bytes (what files, zips and downloads use), `render` the text ones as text.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import datetime

from .helpers import format_duration
from .speakers import Turn, display_name, labels, turns
from .transcript import Transcript


def format_timestamp(seconds: float, decimal: str = ".", always_hours: bool = True) -> str:
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    head = f"{hours:02d}:" if always_hours or hours else ""
    return f"{head}{minutes:02d}:{secs:02d}{decimal}{ms:03d}"


def clock(seconds: float) -> str:
    """[hh:mm:ss] of a turn."""
    s = max(0, int(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


@dataclass
class DocumentInfo:
    """What a document format puts above the transcript: the file's name and when it was transcribed."""

    title: str = ""
    created: datetime = field(default_factory=lambda: datetime.now().astimezone())


def chinese(transcript: Transcript) -> bool:
    """Whether the headings and the name-text separator are written the Chinese way."""
    return not transcript.language or transcript.language.startswith("zh")


def said(transcript: Transcript, name: str, text: str) -> str:
    """`name：text` (Chinese) or `name: text`."""
    return f"{name}{'：' if chinese(transcript) else ': '}{text}"


class Writer:
    extension = ""
    media_type = "text/plain"

    def render(self, transcript: Transcript, info: DocumentInfo) -> str:
        raise NotImplementedError

    def render_bytes(self, transcript: Transcript, info: DocumentInfo) -> bytes:
        return self.render(transcript, info).encode("utf-8")


class TxtWriter(Writer):
    extension = "txt"

    def render(self, transcript: Transcript, info: DocumentInfo) -> str:
        if not labels(transcript.segments):
            return transcript.text + "\n"
        # speaker turns: [00:01:05] 张经理：...
        return "".join(f"[{clock(t.start)}] {said(transcript, t.name, t.text)}\n" for t in turns(transcript))


class SrtWriter(Writer):
    extension = "srt"
    media_type = "application/x-subrip"

    def render(self, transcript: Transcript, info: DocumentInfo) -> str:
        blocks = []
        for i, seg in enumerate(transcript.segments, start=1):
            span = f"{format_timestamp(seg.start, ',')} --> {format_timestamp(seg.end, ',')}"
            text = seg.text.strip()
            if seg.speaker:
                text = said(transcript, display_name(transcript, seg.speaker), text)
            blocks.append(f"{i}\n{span}\n{text}\n")
        return "\n".join(blocks)


class VttWriter(Writer):
    extension = "vtt"
    media_type = "text/vtt"

    def render(self, transcript: Transcript, info: DocumentInfo) -> str:
        cues = []
        for s in transcript.segments:
            text = s.text.strip()
            if s.speaker:  # a voice tag; '>' would end it early
                text = f"<v {display_name(transcript, s.speaker).replace('>', '›')}>{text}"
            cues.append(f"{format_timestamp(s.start)} --> {format_timestamp(s.end)}\n{text}\n")
        return "WEBVTT\n\n" + "\n".join(cues)


class JsonWriter(Writer):
    extension = "json"
    media_type = "application/json"

    def render(self, transcript: Transcript, info: DocumentInfo) -> str:
        d = transcript.to_dict()
        if info.title:  # the file's name, as the other documents put it in their heading
            d = {"name": info.title, **d}
        return json.dumps(d, ensure_ascii=False, indent=2)


HEADINGS = {
    True: {"date": "日期", "duration": "时长", "participants": "参会人", "sep": "：", "list": "、"},
    False: {"date": "Date", "duration": "Duration", "participants": "Participants", "sep": ": ", "list": ", "},
}


def document_turns(transcript: Transcript) -> list[Turn]:
    """Speaker turns; without speakers, each sentence on its own."""
    if labels(transcript.segments):
        return turns(transcript)
    return [Turn("", "", s.start, s.end, s.text.strip()) for s in transcript.segments if s.text.strip()]


def header_lines(transcript: Transcript, info: DocumentInfo) -> list[tuple[str, str]]:
    """(heading, value) pairs under the title: date, duration, participants (when known)."""
    h = HEADINGS[chinese(transcript)]
    lines = [
        (h["date"], info.created.strftime("%Y-%m-%d %H:%M")),
        (h["duration"], format_duration(transcript.duration, "zh" if chinese(transcript) else "en")),
    ]
    names = [display_name(transcript, lab) for lab in labels(transcript.segments)]
    if names:
        lines.append((h["participants"], h["list"].join(names)))
    return lines


class MarkdownWriter(Writer):
    extension = "md"
    media_type = "text/markdown"

    def render(self, transcript: Transcript, info: DocumentInfo) -> str:
        sep = HEADINGS[chinese(transcript)]["sep"]
        out = [f"# {_md(info.title or 'Transcript')}", ""]
        out += [f"- **{k}**{sep}{_md(v)}" for k, v in header_lines(transcript, info)]
        out.append("")
        for t in document_turns(transcript):
            who = f"**{_md(t.name)}** " if t.name else ""
            out += [f"{who}`[{clock(t.start)}]`  ", _md(t.text), ""]
        return "\n".join(out)


def _md(text: str) -> str:
    """User text that Markdown shows as written (no accidental emphasis, links or headings)."""
    for ch in "\\`*_[]<>#|":
        text = text.replace(ch, "\\" + ch)
    return text


class DocxWriter(Writer):
    """Minutes an office worker mails round: title = file name; date, duration, participants; then the turns
    with their times."""

    extension = "docx"
    media_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    font = "Microsoft YaHei"  # East Asian text; Word and LibreOffice substitute a CJK font where it is absent

    def render(self, transcript: Transcript, info: DocumentInfo) -> str:
        raise ValueError("DOCX is a binary format: use render_bytes")

    def render_bytes(self, transcript: Transcript, info: DocumentInfo) -> bytes:
        from docx import Document
        from docx.oxml.ns import qn
        from docx.shared import Pt, RGBColor

        doc = Document()
        normal = doc.styles["Normal"]
        normal.font.size = Pt(11)
        normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), self.font)
        title = info.title or "Transcript"
        doc.core_properties.title = title
        doc.core_properties.created = info.created
        doc.add_heading(title, level=0)
        sep = HEADINGS[chinese(transcript)]["sep"]
        for k, v in header_lines(transcript, info):
            p = doc.add_paragraph()
            p.add_run(k + sep).bold = True
            p.add_run(v)
        for t in document_turns(transcript):
            p = doc.add_paragraph()
            if t.name:
                p.add_run(t.name).bold = True
                p.add_run("  ")
            stamp = p.add_run(f"[{clock(t.start)}]")
            stamp.font.color.rgb = RGBColor(0x76, 0x76, 0x76)
            stamp.font.size = Pt(9)
            doc.add_paragraph(t.text)
        buf = io.BytesIO()
        doc.save(buf)
        return buf.getvalue()


WRITERS: dict[str, Writer] = {
    w.extension: w for w in (TxtWriter(), SrtWriter(), VttWriter(), JsonWriter(), MarkdownWriter(), DocxWriter())
}
FORMATS = tuple(WRITERS)
BINARY_FORMATS = ("docx",)
TEXT_FORMATS = tuple(f for f in FORMATS if f not in BINARY_FORMATS)


def _writer(fmt: str) -> Writer:
    try:
        return WRITERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}") from None


def render(transcript: Transcript, fmt: str, info: DocumentInfo | None = None) -> str:
    """A text format (txt, srt, vtt, json, md) as text."""
    return _writer(fmt).render(transcript, info or DocumentInfo())


def render_bytes(transcript: Transcript, fmt: str, info: DocumentInfo | None = None) -> bytes:
    """Any format as the bytes of its file (UTF-8 for the text ones)."""
    return _writer(fmt).render_bytes(transcript, info or DocumentInfo())
