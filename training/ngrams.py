"""Exact n-gram overlap between texts and a fixed set of test fields, with memory bounded by the fields.

Normalisation, the same for test fields and corpus text in every language: Unicode NFKC, casefold,
every punctuation or symbol character (Unicode categories P* and S*) becomes a space, whitespace
collapses. Tokens are the words between spaces; a text written mostly in a script without spaces
(Han, kana) has its characters as tokens, whitespace left out.

An n-gram is `n` consecutive tokens (13 words, as GPT-3 and lm-eval's decontamination; 20 characters).
A field shorter than n tokens is one n-gram of its own length when it has at least `min_tokens`
(8 words, GPT-3's lower bound; 12 characters), else it is not checked and counted as too short.

Hashing: each token of the test vocabulary gets a random 64-bit value and an n-gram hashes to
sum(value_k * M^k) mod 2^64, over numpy arrays. A corpus token outside the test vocabulary cannot be
part of a matching n-gram, so it breaks the window. Every hash hit is then compared token by token,
so a reported match is exact; the index holds only the test n-grams, whatever the corpus size.
"""
from __future__ import annotations

import functools
import itertools
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
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd, so every power is invertible mod 2^64


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
def _fold_table() -> tuple[np.ndarray, np.ndarray]:
    """Per code point: a space for punctuation and symbols, the case fold where it is one character (a
    numpy gather runs ~200 times faster than a regex or str.translate); and where the fold is longer
    (ß -> ss). Built once, ~0.3 s; no punctuation, symbol or cased letter lies above U+1FFFF."""
    table, longer = np.arange(0x110000, dtype=np.uint32), np.zeros(0x110000, dtype=bool)
    for code in range(0x20000):
        char = chr(code)
        if unicodedata.category(char)[0] in "PS":
            table[code] = 32
        elif (folded := char.casefold()) != char:
            if len(folded) == 1:
                table[code] = ord(folded)
            else:
                longer[code] = True
    return table, longer


def normalize(text: str) -> str:
    """NFKC, casefold, punctuation and symbols -> space (whitespace is collapsed by the tokenizers)."""
    table, longer = _fold_table()
    codes = table[np.frombuffer(unicodedata.normalize("NFKC", text).encode("utf-32-le"), dtype=np.uint32)]
    out = codes.tobytes().decode("utf-32-le")
    return out.casefold() if longer[codes].any() else out


def mode_of(text: str) -> str:
    """CHAR when the text has at least as many Han / kana characters as words in other scripts."""
    unspaced = len(UNSPACED.findall(text))
    return CHAR if unspaced and unspaced >= len(_OTHER_WORD.findall(UNSPACED.sub(" ", text))) else WORD


def tokens(text: str, mode: str) -> list[str]:
    norm = normalize(text)
    return norm.split() if mode == WORD else list("".join(norm.split()))


def token_spans(text: str, mode: str) -> list[tuple[int, int]]:
    """(start, end) in `text` of each token of `tokens(text, mode)`, normalising piece by piece (slow path:
    only for reporting and masking; the caller checks the count matches)."""
    spans = []
    for piece in re.finditer(r"\S+", text):
        if mode == WORD:
            spans += [(piece.start(), piece.end())] * len(normalize(piece.group()).split())
        else:
            for offset, ch in enumerate(piece.group()):
                at = piece.start() + offset
                spans += [(at, at + 1)] * len("".join(normalize(ch).split()))
    return spans


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


class Index:
    """The n-grams of a list of test fields, searchable in corpus text."""

    def __init__(self, texts: list[str], settings: Settings = Settings()):
        self.settings = settings
        self.modes = [mode_of(text) for text in texts]
        self.vocab = {WORD: {SEP: BOUNDARY}, CHAR: {SEP: BOUNDARY}}
        self.field_ids: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(texts)
        self.grams = [0] * len(texts)  # n-grams checked per field; 0 = too short
        rng = np.random.default_rng(20240221)
        self.values, self.tables = {}, {}
        for mode in (WORD, CHAR):
            fields = [f for f, m in enumerate(self.modes) if m == mode]
            vocab = self.vocab[mode]
            ids = [vocab.setdefault(t, len(vocab) + 1) for t in tokens(f" {SEP} ".join(
                texts[f].replace(SEP, " ") for f in fields), mode)]
            self.values[mode] = np.concatenate((np.zeros(2, dtype=np.uint64),  # OOV and BOUNDARY add nothing
                                                rng.integers(1, 2**63, len(vocab), dtype=np.uint64) * np.uint64(2) + 1))
            self.tables[mode] = self._build(fields, np.array(ids, dtype=np.int64), mode)

    def _build(self, fields: list[int], ids: np.ndarray, mode: str) -> dict:
        """Split the joined ids into fields and index their windows: {k: (keys, starts, refs, bitmap)}."""
        n, low = self.settings.size(mode)
        bounds = np.concatenate(([-1], np.flatnonzero(ids == BOUNDARY), [len(ids)]))
        lengths = sorted({int(min(n, b - a - 1)) for a, b in zip(bounds[:-1], bounds[1:]) if b - a - 1 >= low})
        windows = window_hashes(ids, self.values[mode], set(lengths))
        if mode == CHAR:  # corpus texts without such a character are skipped, so only these windows can match
            unspaced = np.array([bool(UNSPACED.match(t)) for t in self.vocab[CHAR]] + [False], dtype=bool)
            order = np.array(list(self.vocab[CHAR].values()) + [OOV])
            lookup = np.zeros(len(self.values[CHAR]), dtype=bool)
            lookup[order] = unspaced
            count = np.concatenate(([0], np.cumsum(lookup[ids])))
        parts = {k: [] for k in lengths}
        for field, a, b in zip(fields, bounds[:-1] + 1, bounds[1:]):
            self.field_ids[field] = ids[a:b]
            k = min(n, b - a)
            if k < low:
                continue
            starts = np.arange(a, b - k + 1)
            if mode == CHAR:
                starts = starts[count[starts + k] > count[starts]]
            self.grams[field] = len(starts)
            parts[k].append((windows[k][0][starts], np.full(len(starts), field), starts - a))
        return {k: self._table(*map(np.concatenate, zip(*p))) for k, p in parts.items() if p}

    @staticmethod
    def _table(hashes: np.ndarray, fields: np.ndarray, positions: np.ndarray):
        """Sorted unique hashes, for each its (field, position) refs as CSR arrays, and a bitmap of their top
        bits that rejects almost every corpus window before the binary search (the search dominates)."""
        order = np.argsort(hashes, kind="stable")
        keys, starts = np.unique(hashes[order], return_index=True)
        bits = int(np.clip(np.ceil(np.log2(len(keys) * 32)), 10, 26))
        bitmap = np.zeros(1 << bits, dtype=bool)
        bitmap[keys >> np.uint64(64 - bits)] = True
        refs = np.stack([fields[order], positions[order]], axis=1)
        return keys, np.append(starts, len(order)), refs, bitmap, np.uint64(64 - bits)

    def has(self, mode: str) -> bool:
        return bool(self.tables[mode])

    def encode(self, texts: list[str], mode: str) -> np.ndarray:
        """Token ids of texts joined by BOUNDARY (OOV for tokens outside the test vocabulary). In CHAR mode,
        give only texts that hold a character of UNSPACED (no other text can match a CHAR n-gram)."""
        toks = tokens(f" {SEP} ".join(t.replace(SEP, " ") for t in texts), mode)
        return np.fromiter(map(self.vocab[mode].get, toks, itertools.repeat(OOV)), dtype=np.int64, count=len(toks))

    def find(self, ids: np.ndarray, mode: str):
        """Yield (start, k, refs) for every window of `ids` equal to a test n-gram; refs = [(field, position)]."""
        tables = self.tables[mode]
        for k, (hashes, valid) in window_hashes(ids, self.values[mode], set(tables)).items():
            keys, starts, refs, bitmap, shift = tables[k]
            candidates = np.flatnonzero(valid)
            candidates = candidates[bitmap[hashes[candidates] >> shift]]
            slot = np.minimum(np.searchsorted(keys, hashes[candidates]), len(keys) - 1)
            equal = keys[slot] == hashes[candidates]
            for start, j in zip(candidates[equal], slot[equal]):
                field, position = refs[starts[j]]
                if np.array_equal(ids[start:start + k], self.field_ids[field][position:position + k]):
                    yield int(start), k, refs[starts[j]:starts[j + 1]]

    def search(self, texts: list[str]):
        """Yield (text index, mode, first token, k, refs) for every test n-gram found in `texts`."""
        for mode in (WORD, CHAR):
            if not self.tables[mode]:
                continue
            chosen = range(len(texts)) if mode == WORD else [i for i, t in enumerate(texts) if UNSPACED.search(t)]
            if not chosen:
                continue
            ids = self.encode([texts[i] for i in chosen], mode)
            bounds = np.flatnonzero(ids == BOUNDARY)
            for start, k, refs in self.find(ids, mode):
                which = int(np.searchsorted(bounds, start))  # boundaries before the window = its text
                yield chosen[which], mode, start - (int(bounds[which - 1]) + 1 if which else 0), k, refs
