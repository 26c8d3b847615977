"""Split long text at sentence boundaries under a backend's length limit, and put it back together.

A segment list is [(text, separator_after)]: joining text + separator over the list gives the
original (stripped) text back, so translations are rejoined with the source's own whitespace.
"""
from __future__ import annotations

import re

# Sentence ends: Latin punctuation followed by space and a capital/digit/bracket, CJK full stops
# (no space follows them), and line breaks. Abbreviations like "e.g. the" do not match (lowercase).
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])|(?<=[。！？])(?=\S)|\s*\n\s*")
# Fallbacks for a single sentence over the limit: clauses, then words, then a hard cut.
_FALLBACKS = (re.compile(r"(?<=[,;:，；])\s*"), re.compile(r"\s+"))

Segments = list[tuple[str, str]]


def _split_keep(text: str, pattern: re.Pattern) -> Segments:
    out: list[list[str]] = []
    start = 0
    for match in pattern.finditer(text):
        if match.start() == match.end() and match.start() in (0, len(text)):
            continue
        piece = text[start:match.start()]
        if piece:
            out.append([piece, match.group()])
        elif out:
            out[-1][1] += match.group()
        start = match.end()
    if text[start:]:
        out.append([text[start:], ""])
    return [(piece, sep) for piece, sep in out]


def _fit(piece: str, sep: str, limit: int, level: int = 0) -> Segments:
    if len(piece) <= limit:
        return [(piece, sep)]
    if level == len(_FALLBACKS):
        chunks = [piece[i:i + limit] for i in range(0, len(piece), limit)]
        return [(chunk, "") for chunk in chunks[:-1]] + [(chunks[-1], sep)]
    parts = _split_keep(piece, _FALLBACKS[level])
    parts[-1] = (parts[-1][0], parts[-1][1] + sep)
    return [unit for part, part_sep in parts for unit in _fit(part, part_sep, limit, level + 1)]


def _pack(units: Segments, limit: int) -> Segments:
    """Greedily merge consecutive units while they stay under the limit: fewer requests."""
    packed: Segments = []
    for piece, sep in units:
        if packed and len(packed[-1][0]) + len(packed[-1][1]) + len(piece) <= limit:
            prev, prev_sep = packed[-1]
            packed[-1] = (prev + prev_sep + piece, sep)
        else:
            packed.append((piece, sep))
    return packed


def segment(text: str, limit: int) -> Segments:
    """Segments of the stripped text, each at most `limit` characters, cut at sentence ends first."""
    if limit < 1:
        raise ValueError(f"limit must be positive, got {limit}")
    text = text.strip()
    if not text:
        return []
    if len(text) <= limit:
        return [(text, "")]
    units = [unit for piece, sep in _split_keep(text, _SENTENCE) for unit in _fit(piece, sep, limit)]
    return _pack(units, limit)


def join(translations: list[str], segments: Segments) -> str:
    """Rejoin translated segments with the source separators."""
    if len(translations) != len(segments):
        raise ValueError(f"{len(translations)} translations for {len(segments)} segments")
    return "".join(t.strip() + sep for t, (_, sep) in zip(translations, segments)).strip()


def needs_translation(text: str) -> bool:
    """Only text with letters goes to a backend; '120/80' or '(3)' is copied (Google returns None for it)."""
    return any(ch.isalpha() for ch in text)
