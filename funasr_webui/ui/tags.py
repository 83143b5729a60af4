"""SenseVoice's emotion and sound-event tags as small badges: in the sentence table (before the sentence) and as
a summary under the transcript (each tag with how many sentences have it). Never part of the text itself."""

from __future__ import annotations

import html
from collections import Counter

from ..i18n import MESSAGES, t
from ..transcript import Transcript

TAG_EMOJI = {
    "HAPPY": "😊",
    "SAD": "😢",
    "ANGRY": "😠",
    "FEARFUL": "😨",
    "DISGUSTED": "🤢",
    "SURPRISED": "😮",
    "BGM": "🎵",
    "Applause": "👏",
    "Laughter": "😄",
    "Cry": "😭",
    "Sneeze": "🤧",
    "Breath": "💨",
    "Cough": "😷",
    "Sing": "🎤",
    "Speech_Noise": "🔊",
}


def tag_label(tag: str, lang: str) -> str:
    """ "😊 happy" / "😊 开心"; a tag this version does not know is shown by its name."""
    name = t(f"tag_{tag}", lang) if f"tag_{tag}" in MESSAGES else tag
    return f"{TAG_EMOJI.get(tag, '🏷')} {name}"


def cell_badges(tags: list[str], lang: str) -> str:
    """The prefix of a sentence's cell in the table: "[😊 happy] [😄 laughter] " (empty without tags)."""
    return "".join(f"[{tag_label(tag, lang)}] " for tag in tags)


def tags_summary(transcript: Transcript, lang: str) -> str:
    """HTML badges for the stats line, e.g. "😊 happy ×3", in order of first appearance; "" without tags."""
    counts = Counter(tag for s in transcript.segments for tag in s.tags)
    if not counts:
        return ""
    badges = " ".join(
        f'<span class="tag-badge" title="{html.escape(tag)}">{html.escape(tag_label(tag, lang))} ×{n}</span>'
        for tag, n in counts.items()
    )
    return t("tags_line", lang, tags=badges)
