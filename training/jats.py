"""JATS XML (PubMed Central) -> clean text, as pure functions.

Kept: article title, abstract(s), body section titles and paragraphs. Dropped: references,
tables, formulas, figures, footnotes, labels, citation markers and all markup. The output is
a list of paragraphs; `chunk_paragraphs` cuts them into pieces of at most N words.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from medtasks.common import UsageError

# Subtrees whose text never reaches the corpus (their tail text does: it belongs to the parent).
DROPPED = frozenset({
    "ref-list", "table-wrap", "table", "table-wrap-foot", "disp-formula", "inline-formula", "math",
    "tex-math", "fig", "fig-group", "graphic", "inline-graphic", "media", "supplementary-material",
    "alternatives", "fn-group", "fn", "label", "object-id", "ack", "app-group", "glossary", "sec-meta",
    "processing-meta", "disp-formula-group", "chem-struct-wrap", "code", "preformat",
})
BLOCKS = frozenset({"p", "title", "term"})  # text blocks: one paragraph each
NESTED = frozenset({"list", "def-list", "disp-quote", "boxed-text", "statement", "verse-group"})
SKIPPED_ABSTRACTS = frozenset({"graphical", "teaser", "toc"})
_EMPTY_BRACKETS = re.compile(r"[\[(][\s,;–—-]*[\])]")
_SPACE_BEFORE_PUNCT = re.compile(r" ([,.;:!?])")
# A removed citation marker leaves CITE in the text, so that the separators between citations
# ("[1, 2; 4–6]") go with them while every other comma, dash or bracket stays. XML cannot hold NUL.
CITE = "\x00"
_CITE_RUN = re.compile(r"\x00(?:[\s,;–—-]*\x00)+")  # citations joined by separators -> one
_CITE_BRACKETED = re.compile(r"[\[(]\s*\x00\s*[\])]")  # "[1]" -> the citation alone
_CITE_LAST_IN_BRACKETS = re.compile(r"\s*[,;]\s*\x00(?=\s*[\])])")  # "(p < 0.05, 3)" -> "(p < 0.05)"
_CITE_FIRST_IN_BRACKETS = re.compile(r"(?<=[\[(])\s*\x00\s*[,;]\s*")  # "(3; see Methods)" -> "(see Methods)"


class JatsError(UsageError, ValueError):
    """The bytes are not a usable JATS article (not XML, or no <article> element)."""


@dataclass
class Article:
    title: str
    abstract: list[str]
    body: list[str]

    def paragraphs(self) -> list[str]:
        return [p for p in [self.title, *self.abstract, *self.body] if p]


def local(tag) -> str:
    """Tag name without its namespace ('{http://www.w3.org/1998/Math/MathML}math' -> 'math')."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def drop_citations(text: str) -> str:
    """Remove the CITE marks with the brackets and separators that belonged to the citations only."""
    previous = None
    while previous != text:  # "[1], [2]" needs two rounds: brackets first, then the run they form
        previous = text
        text = _CITE_BRACKETED.sub(CITE, _CITE_RUN.sub(CITE, text))
    text = _CITE_FIRST_IN_BRACKETS.sub("", _CITE_LAST_IN_BRACKETS.sub("", text))
    return text.replace(CITE, " ")


def clean(text: str) -> str:
    """One line of prose: no citation marks, collapsed whitespace, no brackets left empty."""
    text = " ".join(_EMPTY_BRACKETS.sub(" ", drop_citations(text)).split())
    return _SPACE_BEFORE_PUNCT.sub(r"\1", text)


def inline_text(element: ET.Element) -> str:
    """Text under `element`, skipping dropped subtrees, citation markers and nested block containers."""
    parts = [element.text or ""]
    for child in element:
        name = local(child.tag)
        is_citation = name == "xref" and child.get("ref-type") in ("bibr", "fn", "table-fn")
        if is_citation:
            parts.append(CITE)
        elif name and name not in DROPPED and name not in NESTED:
            parts.append(inline_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def blocks(element: ET.Element) -> list[str]:
    """Paragraphs under `element` in document order (each title and <p> makes one)."""
    out: list[str] = []
    for child in element:
        name = local(child.tag)
        if not name or name in DROPPED:
            continue
        if name in BLOCKS:
            text = clean(inline_text(child))
            if text:
                out.append(text)
            for nested in child:  # a list or quote inside a paragraph follows it as its own blocks
                if local(nested.tag) in NESTED:
                    out.extend(blocks(nested))
        else:
            out.extend(blocks(child))
    return out


def parse_article(data: bytes) -> Article:
    """Parse one JATS document. Raises JatsError on malformed XML or a missing <article>."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        raise JatsError(f"malformed XML: {err}") from None
    article = root if local(root.tag) == "article" else next(
        (e for e in root.iter() if local(e.tag) == "article"), None)
    if article is None:
        raise JatsError(f"no <article> element (root is <{local(root.tag)}>)")
    meta = _child(_child(article, "front"), "article-meta")
    title_el = _child(_child(meta, "title-group"), "article-title")
    title = clean(inline_text(title_el)) if title_el is not None else ""
    abstract: list[str] = []
    for element in (meta if meta is not None else []):
        if local(element.tag) == "abstract" and element.get("abstract-type") not in SKIPPED_ABSTRACTS:
            abstract.extend(blocks(element))
    body_el = _child(article, "body")
    body = blocks(body_el) if body_el is not None else []
    return Article(title=title, abstract=abstract, body=body)


def _child(element: ET.Element | None, name: str) -> ET.Element | None:
    if element is None:
        return None
    return next((c for c in element if local(c.tag) == name), None)


def chunk_paragraphs(paragraphs: list[str], max_words: int = 1000) -> list[str]:
    """Greedily join paragraphs (blank line between) into chunks of at most `max_words` words.

    A paragraph longer than the limit is cut at word boundaries. Every word lands in exactly
    one chunk, in order.
    """
    if max_words < 1:
        raise ValueError(f"max_words must be >= 1, got {max_words}")
    chunks: list[str] = []
    current: list[str] = []
    count = 0
    for paragraph in paragraphs:
        words = paragraph.split()
        while words:
            room = max_words - count
            if len(words) > room and current:  # flush before starting a paragraph that does not fit
                chunks.append("\n\n".join(current))
                current, count = [], 0
                continue
            piece, words = words[:max_words - count], words[max_words - count:]
            current.append(" ".join(piece))
            count += len(piece)
    if current:
        chunks.append("\n\n".join(current))
    return chunks
