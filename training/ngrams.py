"""The n-gram rules of contamination checks: normalisation, tokens, hashes (pure functions).

Normalisation, the same for test fields and corpus text in every language: Unicode NFKC, casefold,
every punctuation or symbol character (Unicode categories P* and S*) becomes a space, whitespace
collapses. Tokens are the words between spaces; a text written mostly in a script without spaces
(Han, kana) has its characters as tokens, whitespace left out.

An n-gram is `n` consecutive tokens (13 words, as GPT-3 and lm-eval's decontamination; 20 characters).
A field shorter than n tokens is one n-gram of its own length when it has at least `min_tokens`
(8 words, GPT-3's lower bound; 12 characters), else it is not checked and counted as too short.

Hashing (numpy, no Python object per word): a word hashes to 64 bits from its code points; a test word
gets a random 64-bit value and an n-gram hashes to sum(value_k * M^k) mod 2^64. A corpus word outside
the test vocabulary cannot be part of a matching n-gram, so it breaks the window. The index of the test
n-grams is training/ngram_index.py; it re-checks every hit as strings, so reported matches are exact.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import asdict, dataclass

import numpy as np

from medtasks.common import UsageError

WORD, CHAR = "word", "char"
SEP = "\x00"  # joins the texts of a batch; XML and sane corpora never hold it (replaced if they do)
OOV, BOUNDARY = 0, 1  # token ids that break a window; test tokens start at 2
UNSPACED = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_OTHER_WORD = re.compile(r"[^\W\d_]+")
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd: n-gram hashes (token values * M^k)
_CHAR_BASE = np.uint64(0xFF51AFD7ED558CCD)  # odd: token hashes (code points * B^i)


@dataclass(frozen=True)
class Settings:
    n: int = 13  # word n-gram
    min_tokens: int = 8  # shorter word fields are not checked
    char_n: int = 20  # character n-gram, for scripts without spaces (~13 words of Chinese)
    char_min: int = 12

    def __post_init__(self):
        for name, size, low in (("--ngram", self.n, self.min_tokens), ("--char-ngram", self.char_n, self.char_min)):
            if not 1 <= low <= size:
                raise UsageError(f"{name} {size} with minimum {low}: need 1 <= minimum <= n")

    def size(self, mode: str) -> tuple[int, int]:
        return (self.n, self.min_tokens) if mode == WORD else (self.char_n, self.char_min)

    def to_dict(self) -> dict:
        return asdict(self)


@functools.lru_cache(maxsize=1)
def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per code point (numpy gathers run ~200 times faster than a regex or str.translate):
    fold: a space for punctuation, symbols and whitespace, the case fold where it is one character;
    longer: the case fold is longer (ß -> ss); unstable: NFKC may change a word holding it (it decomposes,
    is a combining mark, or composes with the character before it). Built once, ~0.5 s; nothing above
    U+2FFFF needs any of it."""
    fold, longer = np.arange(0x110000, dtype=np.uint32), np.zeros(0x110000, dtype=bool)
    unstable = np.zeros(0x110000, dtype=bool)
    unstable[0x1161:0x1176] = unstable[0x11A8:0x11C3] = True  # Hangul vowels and finals compose algorithmically
    for code in range(0x30000):
        char = chr(code)
        if unicodedata.category(char)[0] in "PS" or char.isspace():
            fold[code] = 32
        elif (folded := char.casefold()) != char:
            if len(folded) == 1:
                fold[code] = ord(folded)
            else:
                longer[code] = True
        if not unicodedata.is_normalized("NFKC", char) or unicodedata.combining(char):
            unstable[code] = True
        parts = unicodedata.decomposition(char).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            unstable[int(parts[1], 16)] = True  # the second half of a canonical pair composes
    return fold, longer, unstable


def _nfkc(text: str, codes: np.ndarray, unstable: np.ndarray) -> str:
    """NFKC of the whitespace-delimited words that need it, the rest untouched: the same string as NFKC of
    the whole (ASCII whitespace is a stable boundary, UAX #15), several times faster on mostly-stable text."""
    need = np.flatnonzero(unstable[codes])
    if not len(need):
        return text
    bounds = np.concatenate(([-1], np.flatnonzero((codes == 32) | ((codes >= 9) & (codes <= 13))), [len(codes)]))
    at = np.searchsorted(bounds, need)
    starts, first = np.unique(bounds[at - 1] + 1, return_index=True)
    pieces, end = [], 0
    for start, stop in zip(starts.tolist(), bounds[at[first]].tolist()):
        pieces += [text[end:start], unicodedata.normalize("NFKC", text[start:stop])]
        end = stop
    return "".join(pieces) + text[end:]


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def normalized_codes(text: str) -> np.ndarray:
    """The code points of the normalised text: NFKC, casefold, punctuation, symbols and whitespace -> 32."""
    fold, longer, unstable = _tables()
    codes = fold[_codes(_nfkc(text, _codes(text), unstable))]
    return fold[_codes(codes.tobytes().decode("utf-32-le").casefold())] if longer[codes].any() else codes


def normalize(text: str) -> str:
    return normalized_codes(text).tobytes().decode("utf-32-le")


def mode_of(text: str) -> str:
    """CHAR when the text has at least as many Han / kana characters as words in other scripts."""
    unspaced = len(UNSPACED.findall(text))
    return CHAR if unspaced and unspaced >= len(_OTHER_WORD.findall(UNSPACED.sub(" ", text))) else WORD


def tokens(text: str, mode: str) -> list[str]:
    norm = normalize(text)
    return norm.split() if mode == WORD else list("".join(norm.split()))


def token_spans(text: str, mode: str) -> list[tuple[int, int]] | None:
    """(start, end) in `text` of each token of `tokens(text, mode)`, normalising piece by piece (slow path:
    only for reporting and masking); None when normalising piece by piece gives another token count than
    normalising the whole text (the tokens cannot then be mapped onto the text)."""
    spans = []
    for piece in re.finditer(r"\S+", text):
        if mode == WORD:
            spans += [(piece.start(), piece.end())] * len(normalize(piece.group()).split())
        else:
            for offset, ch in enumerate(piece.group()):
                at = piece.start() + offset
                spans += [(at, at + 1)] * len("".join(normalize(ch).split()))
    return spans if len(spans) == len(tokens(text, mode)) else None


@functools.lru_cache(maxsize=8)
def _powers(n: int) -> np.ndarray:
    with np.errstate(over="ignore"):  # 1, B, B^2, ... mod 2^64
        return np.cumprod(np.concatenate((np.ones(1, dtype=np.uint64), np.full(n - 1, _CHAR_BASE, dtype=np.uint64))))


def word_hashes(codes: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each token (run of code points other than 32) of normalised text, in order: the
    words are hashed in numpy, never made into Python strings (3 times faster than split + dict)."""
    keep = np.flatnonzero(codes != 32)
    if not len(keep):
        return np.zeros(0, dtype=np.uint64)
    first = np.ones(len(keep), dtype=bool)
    first[1:] = np.diff(keep) != 1
    starts = np.flatnonzero(first)
    position = np.arange(len(keep)) - np.repeat(starts, np.diff(np.append(starts, len(keep))))
    powers = _powers(1 << int(position.max() + 1).bit_length())  # few sizes, so the cache hits
    with np.errstate(over="ignore"):
        h = np.add.reduceat((codes[keep].astype(np.uint64) + np.uint64(1)) * powers[position], starts)
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)  # splitmix64's finaliser: short words
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)  # spread over the top bits too
        return h ^ (h >> np.uint64(31))


def window_hashes(ids: np.ndarray, values: np.ndarray, lengths) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{k: (hash of the window starting at each position, whether it has no OOV/BOUNDARY token)} for k in lengths."""
    vals = values[ids]
    bad = np.concatenate(([0], np.cumsum(ids <= BOUNDARY)))
    acc, power, out = np.zeros(len(ids), dtype=np.uint64), np.uint64(1), {}
    with np.errstate(over="ignore"):
        for k in range(1, max(lengths, default=0) + 1):
            m = len(ids) - k + 1
            if m <= 0:
                break
            acc[:m] += vals[k - 1:] * power
            power = power * _MULTIPLIER
            if k in lengths:
                out[k] = (acc[:m].copy(), bad[k:k + m] == bad[:m])
    return out
