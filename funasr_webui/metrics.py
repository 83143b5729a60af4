"""Accuracy measures used by the tests and benchmarks."""

from __future__ import annotations

import unicodedata


def strip_punctuation(text: str) -> str:
    """Letters and digits only, lower-cased: punctuation and spacing are not what a CER judges."""
    return "".join(ch for ch in text.lower() if unicodedata.category(ch)[0] in ("L", "N"))


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        cur = [i]
        for j, cb in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate, punctuation ignored."""
    ref, hyp = strip_punctuation(reference), strip_punctuation(hypothesis)
    return edit_distance(ref, hyp) / max(1, len(ref))
