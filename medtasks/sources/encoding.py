"""A file that is not UTF-8: where the first bad byte is, and which legacy encoding it looks like.

Importers read text as UTF-8 only (a guess is never used to import: a wrong guess would store
garbled questions silently). On a UnicodeDecodeError they call `not_utf8`, which rescans the raw
bytes and returns one DataError naming the file, the line, the byte offset and the likely encoding.

The guess tries the legacy encodings of each language of the languages table (`legacy_encodings`) and keeps the one whose
decoded words look like that language: the non-ASCII letters are in its script, words are not
MiXeD case, and a Latin word is not made mostly of accented letters (which is what Arabic, Cyrillic
or Chinese bytes look like when read as cp1252).
"""
from __future__ import annotations

import re
from typing import BinaryIO, Callable

from medtasks.records import DataError
from medtasks.spec import LANGUAGES

BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
MIN_SCORE = 0.8  # share of plausible words below which no encoding is named
_WORD = re.compile(r"[^\W\d_]+")
_CHUNK = 1 << 20
_WINDOW = 1 << 16  # bytes around the first bad one that the guess looks at


def _word_score(word: str, script: re.Pattern, latin: bool) -> float:
    """1 for a plausible word of the language; 0.5 for an all-capitals one, or one mixing Latin letters
    into another script (rare, but Chinese writes "维生素B" without a space); 0 for an implausible one."""
    if not all(script.match(ch) for ch in word if not ch.isascii()):
        return 0.0
    if latin and len(word) > 3 and sum(not ch.isascii() for ch in word) * 2 > len(word):
        return 0.0
    weight = 0.5 if not latin and any(ch.isascii() for ch in word) else 1.0
    if word.islower() or (word[0].isupper() and word[1:].islower()) or word.lower() == word.upper():
        return weight
    return weight / 2 if word.isupper() else 0.0


def plausibility(text: str, code: str) -> float:
    """Share (0..1) of the words with a non-ASCII letter that look like language `code` (pure)."""
    script = re.compile(LANGUAGES[code].script)
    latin = bool(script.match("a"))
    words = [w for w in _WORD.findall(text) if not w.isascii()]
    if not words:
        return 0.0
    return sum(_word_score(w, script, latin) for w in words) / len(words)


def guess_encoding(sample: bytes) -> str | None:
    """The legacy encoding `sample` most plausibly is, or None (pure). `sample` should start and end at
    line boundaries so that no multi-byte character is cut."""
    for bom, name in BOMS:
        if sample.startswith(bom):
            return name
    best, best_score = None, MIN_SCORE
    for code, language in LANGUAGES.items():
        for encoding in language.legacy_encodings:
            try:
                text = sample.decode(encoding)
            except UnicodeDecodeError:
                continue
            score = plausibility(text, code)
            if score > best_score:
                best, best_score = encoding, score
    return best


def first_bad_utf8(stream: BinaryIO) -> tuple[int, int, bytes] | None:
    """(byte offset, line number, bytes around it cut at line boundaries) of the first byte that is not
    valid UTF-8, or None when the whole stream decodes. Streams in 1 MB blocks."""
    offset, line, carry = 0, 1, b""
    while True:
        data = stream.read(_CHUNK)
        block = carry + data
        try:
            block.decode("utf-8")
            good = len(block)
        except UnicodeDecodeError as err:
            if data and err.reason == "unexpected end of data":
                good = err.start  # a character cut by the block edge: finish it with the next block
            else:
                start, end = max(0, err.start - _WINDOW // 4), err.start + _WINDOW
                window = block[start:end]
                bad = err.start - start
                if end < len(block) and b"\n" in window[bad:]:  # cut: end at a line break after the bad byte
                    window = window[:window.rindex(b"\n") + 1]
                if start and b"\n" in window[:bad]:  # cut: start after a line break before it
                    window = window[window.index(b"\n") + 1:]
                return offset + err.start, line + block.count(b"\n", 0, err.start), window
        line += block.count(b"\n", 0, good)
        offset += good
        carry = block[good:]
        if not data:
            return None


def not_utf8(source: str, open_binary: Callable[[], BinaryIO]) -> DataError:
    """The DataError for a file that failed to decode: file, line, byte offset, likely encoding."""
    with open_binary() as stream:
        head = stream.read(4)
        stream.seek(0)
        found = first_bad_utf8(stream)
    guess = next((name for bom, name in BOMS if head.startswith(bom)), None)
    if found is None:  # decoded fine this time (the file changed?): still name it
        return DataError(source, None, None, "not valid UTF-8; re-save it as UTF-8")
    offset, line, window = found
    guess = guess or guess_encoding(window)
    how = (f"looks like {guess}; convert it with `iconv -f {guess} -t utf-8`" if guess
           else "encoding not recognised; re-save it as UTF-8")
    return DataError(source, f"line {line} (byte {offset})", None, f"not UTF-8 ({how})")
