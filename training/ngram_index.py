"""The n-grams of a list of test fields (training/ngrams.py has the rules), searchable in corpus text.

Memory is what the test fields need: their token ids, one sorted array of 64-bit n-gram hashes per
n-gram length with the (field, position) refs of each, and a bitmap of the hashes' top bits. Corpus
text is tokenized in numpy (a word is looked up by its 64-bit hash); a window whose n-gram hash is in
the index is then checked word by word as strings, so a reported match is exact.
"""
from __future__ import annotations

import numpy as np

from training.ngrams import (BOUNDARY, CHAR, OOV, SEP, UNSPACED, WORD, Settings, mode_of, normalized_codes, tokens,
                             window_hashes, word_hashes)


class Index:
    def __init__(self, texts: list[str], settings: Settings = Settings()):
        self.settings = settings
        self.modes = [mode_of(text) for text in texts]
        self.vocab = {WORD: {SEP: BOUNDARY}, CHAR: {SEP: BOUNDARY}}
        self.field_ids: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(texts)
        self.grams = [0] * len(texts)  # n-grams checked per field; 0 = too short
        rng = np.random.default_rng(20240221)
        self.values, self.tables, self.lookup = {}, {}, {}
        for mode in (WORD, CHAR):
            fields = [f for f, m in enumerate(self.modes) if m == mode]
            vocab = self.vocab[mode]
            ids = [vocab.setdefault(t, len(vocab) + 1) for t in tokens(f" {SEP} ".join(
                texts[f].replace(SEP, " ") for f in fields), mode)]
            self.values[mode] = np.concatenate((np.zeros(2, dtype=np.uint64),  # OOV and BOUNDARY add nothing
                                                rng.integers(1, 2**63, len(vocab), dtype=np.uint64) * np.uint64(2) + 1))
            self.tables[mode] = self._build(fields, np.array(ids, dtype=np.int64), mode)
            self.lookup[mode] = self._lookup(mode) if self.tables[mode] else None

    def _lookup(self, mode: str):
        """CHAR: an id per code point. WORD: an open-addressing table of the words' 64-bit hashes (slot = top
        bits, linear probing; 1/8 full, so a lookup is ~1.2 numpy gathers instead of a binary search)."""
        if mode == CHAR:
            table = np.zeros(0x110000, dtype=np.int32)
            table[[ord(ch) for ch in self.vocab[CHAR]]] = list(self.vocab[CHAR].values())
            return table
        hashes = word_hashes(normalized_codes(" ".join(self.vocab[WORD])))
        if len(np.unique(hashes)) != len(hashes):
            raise RuntimeError("two test words share a 64-bit hash")  # never seen; lookups would be ambiguous
        bits = max(10, (8 * len(hashes)).bit_length())
        keys, ids, probes = np.zeros(1 << bits, dtype=np.uint64), np.zeros(1 << bits, dtype=np.int64), 1
        for word_hash, word_id in zip(hashes.tolist(), self.vocab[WORD].values()):
            slot, probe = word_hash >> (64 - bits), 1
            while ids[slot]:  # 0 = empty (no word has id OOV)
                slot, probe = (slot + 1) % (1 << bits), probe + 1
            keys[slot], ids[slot], probes = word_hash, word_id, max(probes, probe)
        return keys, ids, np.uint64(64 - bits), probes

    def _build(self, fields: list[int], ids: np.ndarray, mode: str) -> dict:
        """Split the joined ids into fields and index their windows: {k: (keys, starts, refs, bitmap, shift)}."""
        n, low = self.settings.size(mode)
        bounds = np.concatenate(([-1], np.flatnonzero(ids == BOUNDARY), [len(ids)]))
        lengths = sorted({int(min(n, b - a - 1)) for a, b in zip(bounds[:-1], bounds[1:]) if b - a - 1 >= low})
        windows = window_hashes(ids, self.values[mode], set(lengths))
        if mode == CHAR:  # corpus texts without such a character are skipped, so only these windows can match
            unspaced = np.zeros(len(self.values[CHAR]), dtype=bool)
            unspaced[[i for t, i in self.vocab[CHAR].items() if UNSPACED.match(t)]] = True
            count = np.concatenate(([0], np.cumsum(unspaced[ids])))
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

    def nbytes(self) -> int:
        """Memory of the index's arrays."""
        arrays = [*self.field_ids, *self.values.values(), *(self.lookup[WORD] or ())[:2], self.lookup[CHAR]]
        for table in self.tables.values():
            arrays += [a for keys, starts, refs, bitmap, _ in table.values() for a in (keys, starts, refs, bitmap)]
        return sum(a.nbytes for a in arrays if a is not None)

    def encode(self, texts: list[str], mode: str) -> np.ndarray:
        """Token ids of texts joined by BOUNDARY (OOV for tokens outside the test vocabulary). In CHAR mode,
        give only texts that hold a character of UNSPACED (no other text can match a CHAR n-gram)."""
        codes = normalized_codes(f" {SEP} ".join(t.replace(SEP, " ") for t in texts))
        if mode == CHAR:
            return self.lookup[CHAR][codes[codes != 32]].astype(np.int64)
        keys, ids, shift, probes = self.lookup[WORD]
        hashes = word_hashes(codes)
        slot = (hashes >> shift).astype(np.int64)
        found = ids[slot]
        out = np.where(keys[slot] == hashes, found, OOV)
        todo = np.flatnonzero((out == OOV) & (found != OOV))  # a taken slot, another word: probe on
        for _ in range(probes - 1):
            if not len(todo):
                break
            slot[todo] = (slot[todo] + 1) % len(keys)
            at = slot[todo]
            hit = keys[at] == hashes[todo]
            out[todo[hit]] = ids[at[hit]]
            todo = todo[~hit & (ids[at] != OOV)]  # an empty slot ends the search: not a test word
        return out

    def find(self, ids: np.ndarray, mode: str):
        """Yield (start, k, refs) for every window of `ids` whose ids equal a test n-gram's."""
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
            words: dict[int, list] = {}
            for start, k, refs in self.find(ids, mode):
                which = int(np.searchsorted(bounds, start))  # boundaries before the window = its text
                first = start - (int(bounds[which - 1]) + 1 if which else 0)
                if which not in words:  # the exact check, as strings (a word is looked up by its hash)
                    words[which] = [self.vocab[mode].get(t, OOV) for t in tokens(texts[chosen[which]], mode)]
                if words[which][first:first + k] == ids[start:start + k].tolist():
                    yield chosen[which], mode, first, k, refs
