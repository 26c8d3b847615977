"""lm-eval model `hf-prefix`: the HF backend, computing each prompt prefix shared by many requests once.

In BioMistral's regime every question of a task carries the same instruction and the same three
English examples (most of a ~1,500-token MedQA prompt, and the same for all eight languages).
Stock HFLM recomputes that prefix for every question. Here the loglikelihood requests of a call
(lm-eval sends a whole run at once) are planned first:

1. each distinct model input (context + continuation minus its last token) becomes one row;
2. rows are sorted by tokens, so rows sharing a prefix are neighbours, and cut into groups that
   share a long prefix (`plan_groups`, pure and tested on its own);
3. per group the prefix's key/value cache comes from a prefix cache keyed by token ids (an LRU
   bounded in bytes, kept for the life of the model object). When it lacks the prefix, only the
   part past the longest cached prefix is computed, in one pass with the group's longest row, so
   examples shared by several tasks or languages are computed once per run even where the tasks'
   prefixes diverge after them, and no group pays a separate prefix pass;
4. the other rows' own tokens (suffixes) are scored against that cache, expanded across the batch
   as a view, in batches of similar length (`plan_batches`): padding stays within `max_padding`;
5. rows with no worthwhile shared prefix are scored without a cache, like stock HFLM.

Numbers match stock HFLM (same truncation, same log-softmax dtype, same greedy check).
Anything this cannot accelerate (seq2seq models, rolling loglikelihood, caches that are not
plain or sliding-window DynamicCache layers) goes through the stock path unchanged; with a
sliding window, only rows shorter than the window share a cache.

Usage: `lm_eval --model hf-prefix --model_args pretrained=DIR ...` (found through the
`lm_eval.models` entry point and medtasks/_discovery.py); extra model args `min_prefix_tokens`,
`max_padding`, `prefix_cache_mb`.
"""
from __future__ import annotations

import copy
import inspect
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm

from medtasks.common import UsageError

log = logging.getLogger(__name__)

MODEL_NAME = "hf-prefix"
DEFAULT_MIN_PREFIX_TOKENS = 32  # below this a separate prefix pass costs more than it saves
DEFAULT_MAX_PADDING = 0.05  # padded positions a suffix batch may hold, as a share of its real tokens
DEFAULT_PREFIX_CACHE_MB = 512  # a 1,500-token prefix: ~70 MB for a 135M model in fp32, ~200 MB for 7B in bf16


# ---------------------------------------------------------------- planning (pure, no torch)

@dataclass(frozen=True)
class Row:
    tokens: tuple[int, ...]  # model input: (context + continuation)[:-1], truncated like stock HFLM
    need: int  # trailing positions whose logits are scored (longest continuation using this row)


@dataclass
class Group:
    prefix_len: int  # 0: no shared prefix, rows scored in full
    rows: list[int] = field(default_factory=list)  # indices into the planned rows


def common_prefix_len(a: tuple, b: tuple) -> int:
    """Length of the common prefix of two tuples (slice comparisons run in C: bisect on them)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def plan_groups(rows: list[Row], min_prefix: int = DEFAULT_MIN_PREFIX_TOKENS,
                max_len: int | None = None) -> list[Group]:
    """Cut the rows, sorted by tokens, into groups sharing a prefix; leftovers in one prefix-0 group.

    A row joins the open group when the shared prefix stays >= min_prefix and what the group's
    members lose by a shorter prefix is less than what the row saves by sharing it. A prefix
    never covers a scored position (it stops `need` tokens before each row's end). Rows longer
    than max_len (what a sliding-window cache serves exactly) are left over.
    """
    order = sorted(range(len(rows)), key=lambda i: rows[i].tokens)
    groups: list[Group] = []
    leftover: list[int] = []

    def close(members: list[int], prefix: int) -> None:
        if len(members) > 1 and prefix >= min_prefix:
            groups.append(Group(prefix, members))
        else:
            leftover.extend(members)

    members: list[int] = []
    lcp = room = 0
    for i in order:
        row = rows[i]
        if max_len is not None and len(row.tokens) > max_len:
            leftover.append(i)
            continue
        if members:
            new_lcp = min(lcp, common_prefix_len(rows[members[0]].tokens, row.tokens))
            new_room = min(room, len(row.tokens) - row.need)
            new_prefix, old_prefix = min(new_lcp, new_room), min(lcp, room)
            if new_prefix >= min_prefix and len(members) * (old_prefix - new_prefix) < new_prefix:
                members.append(i)
                lcp, room = new_lcp, new_room
                continue
            close(members, old_prefix)
        members, lcp, room = [i], len(row.tokens), len(row.tokens) - row.need
    if members:
        close(members, min(lcp, room))
    if leftover:
        groups.append(Group(0, sorted(leftover)))
    return groups


def plan_batches(lengths: Sequence[int], max_rows: int, max_padding: float = DEFAULT_MAX_PADDING) -> list[list[int]]:
    """Indices of `lengths` cut into batches, longest first: a row joins the open batch while it has
    fewer than max_rows rows and its padded positions stay <= max_padding x its real tokens."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    width = real = 0
    for i in order:
        n = lengths[i]
        if batches and len(batches[-1]) < max_rows and width * (len(batches[-1]) + 1) <= (1 + max_padding) * (real + n):
            batches[-1].append(i)
            real += n
        else:
            batches.append([i])
            width = real = n
    return batches


def token_floor(rows_by_task: Mapping[str | None, Sequence[Row]]) -> dict[str, int]:
    """The fewest tokens any backend must forward to score these rows: each task's shared prefix
    (the common prefix of its rows, short of every scored position) counted once per run, and only
    past what an earlier prefix already covered (prefixes form a tree: tasks and languages with the
    same examples share its trunk), plus each row's own tokens after its task's prefix.

    Independent of the planner: it only knows which task asked for which row.
    """
    prefix_of: dict[tuple[int, ...], int] = {}  # distinct row -> longest prefix among its tasks
    for rows in rows_by_task.values():
        if not rows:
            continue
        first = rows[0].tokens
        shared = min(min(common_prefix_len(first, r.tokens) for r in rows), min(len(r.tokens) - r.need for r in rows))
        for r in rows:
            prefix_of[r.tokens] = max(prefix_of.get(r.tokens, 0), shared)
    prefixes = sorted({tokens[:n] for tokens, n in prefix_of.items()})
    # in sorted order, a prefix's longest overlap with any earlier one is its overlap with its predecessor
    trunk = sum(len(p) - (common_prefix_len(p, q) if q is not None else 0)
                for p, q in zip(prefixes, [None, *prefixes[:-1]]))
    own = sum(len(tokens) - n for tokens, n in prefix_of.items())
    return {"prefix": trunk, "suffix": own, "total": trunk + own}


def request_floor(lm: HFLM, requests) -> dict[str, int]:
    """token_floor of lm-eval loglikelihood Instances grouped by task_name, each row built the way stock
    HFLM builds its model input (lm-eval's own encoding and left truncation)."""
    by_task: dict[str | None, dict[tuple[int, ...], int]] = {}
    for request in requests:
        context_enc, continuation_enc = lm._encode_pair(*request.args)
        tokens = tuple((context_enc + continuation_enc)[-(lm.max_length + 1):][:-1])
        rows = by_task.setdefault(request.task_name, {})
        rows[tokens] = max(rows.get(tokens, 0), len(continuation_enc))
    return token_floor({task: [Row(t, need) for t, need in rows.items()] for task, rows in by_task.items()})


class PrefixCache:
    """An LRU of values keyed by token tuples, bounded by their size in bytes; `longest` finds the
    entry sharing the longest prefix with a query (a handful of entries: a linear scan is enough)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.entries: OrderedDict[tuple[int, ...], tuple[object, int]] = OrderedDict()
        self.nbytes = 0
        self.evictions = 0

    def longest(self, tokens: tuple[int, ...]) -> tuple[tuple[int, ...] | None, object, int]:
        """(key, value, shared length) of the entry sharing the longest prefix with tokens (most recent on
        ties), marked as recently used; (None, None, 0) when nothing is shared."""
        best, shared = None, 0
        for key in reversed(self.entries):
            n = common_prefix_len(key, tokens)
            if n > shared:
                best, shared = key, n
        if best is None:
            return None, None, 0
        self.entries.move_to_end(best)
        return best, self.entries[best][0], shared

    def put(self, tokens: tuple[int, ...], value, nbytes: int) -> bool:
        """Keep value under tokens, evicting the least recently used entries beyond max_bytes; False when
        the value alone exceeds the bound (it is then not kept)."""
        if tokens in self.entries:
            self.nbytes -= self.entries.pop(tokens)[1]
        if nbytes > self.max_bytes:
            return False
        self.entries[tokens] = (value, nbytes)
        self.nbytes += nbytes
        while self.nbytes > self.max_bytes:
            _, (_, size) = self.entries.popitem(last=False)
            self.nbytes -= size
            self.evictions += 1
        return True

    def clear(self) -> None:
        self.entries.clear()
        self.nbytes = 0


# ---------------------------------------------------------------- key/value cache helpers

def _cache_api():
    """(forward keyword, output attribute) for the KV cache: transformers 5.2x renamed past_key_values."""
    from transformers.modeling_outputs import CausalLMOutputWithPast

    name = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"
    return name, name


def cache_limit(cache) -> int | None:
    """Longest row the cache can serve exactly; None when its type is not one we know to be exact.

    Plain DynamicLayer: unlimited. Sliding-window layers: rows shorter than the window (where the
    window masks nothing, so cached and uncached attention are the same).
    """
    from transformers.cache_utils import DynamicCache, DynamicLayer, DynamicSlidingWindowLayer

    if type(cache) is not DynamicCache:
        return None
    limit = 1 << 62
    for layer in cache.layers:
        if type(layer) is DynamicSlidingWindowLayer:
            limit = min(limit, layer.sliding_window - 1)
        elif type(layer) is not DynamicLayer:
            return None
    return limit


def cache_view(cache, length: int, batch: int = 1):
    """The first `length` positions of a batch-1 DynamicCache as a batch-`batch` view (no copy).

    The original is untouched: a forward pass only rebinds the view's layers' tensors (torch.cat).
    Sliding-window layers hold every position here (rows are shorter than the window).
    """
    out = copy.copy(cache)
    out.layers = []
    for layer in cache.layers:
        view = copy.copy(layer)
        view.keys = layer.keys[:, :, :length].expand(batch, -1, -1, -1)
        view.values = layer.values[:, :, :length].expand(batch, -1, -1, -1)
        if hasattr(view, "cumulative_length"):
            view.cumulative_length = length
        out.layers.append(view)
    return out


def cache_copy(cache, length: int):
    """A batch-1 DynamicCache holding a copy of the first `length` positions (frees the rest)."""
    out = cache_view(cache, length)
    for layer in out.layers:
        layer.keys, layer.values = layer.keys.clone(), layer.values.clone()
    return out


def cache_nbytes(cache) -> int:
    return sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))


# ---------------------------------------------------------------- the backend

_UNKNOWN = object()


class PrefixCachingHFLM(HFLM):
    """HFLM whose loglikelihood computes each shared prompt prefix once per run (see module doc)."""

    def __init__(self, *args, min_prefix_tokens: int = DEFAULT_MIN_PREFIX_TOKENS,
                 max_padding: float = DEFAULT_MAX_PADDING, prefix_cache_mb: float = DEFAULT_PREFIX_CACHE_MB,
                 **kwargs):
        min_prefix_tokens, max_padding = int(min_prefix_tokens), float(max_padding)
        prefix_cache_mb = float(prefix_cache_mb)
        if min_prefix_tokens < 1 or max_padding < 0 or prefix_cache_mb < 0:
            raise UsageError(f"{MODEL_NAME}: min_prefix_tokens must be >= 1, max_padding and prefix_cache_mb >= 0 "
                             f"(got {min_prefix_tokens}, {max_padding}, {prefix_cache_mb}); fix --model_args")
        super().__init__(*args, **kwargs)
        self.min_prefix_tokens = min_prefix_tokens
        self.max_padding = max_padding
        self.prefix_cache = PrefixCache(int(prefix_cache_mb * 2**20))
        self.prefix_stats = {"groups": 0, "prefix_tokens": 0, "prefix_reused": 0, "suffix_tokens": 0,
                             "padded_tokens": 0, "batches": 0, "rows": 0, "requests": 0, "fallback_calls": 0}
        self._cache_kwarg, self._cache_attr = _cache_api()
        self._keeps_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        self._row_limit = _UNKNOWN

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs: int | None = None):
        if self.backend != "causal" or override_bs is not None or not requests:
            self.prefix_stats["fallback_calls"] += 1
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        limit = self._exact_row_limit()
        if limit is None:
            log.warning("%s: this model's KV cache is not a plain DynamicCache; using the stock HF path", MODEL_NAME)
            self.prefix_stats["fallback_calls"] += 1
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm)
        rows, row_of = self._rows(requests)
        groups = plan_groups(rows, self.min_prefix_tokens, max_len=limit)

        by_row: dict[int, list[int]] = {}
        for req_index, row_index in enumerate(row_of):
            by_row.setdefault(row_index, []).append(req_index)
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        pbar = tqdm(total=len(requests), disable=disable_tqdm or self.rank != 0,
                    desc="Running loglikelihood requests (prefix cache)")
        for group in groups:
            for row_index, logprobs in self._score_group(group, rows):
                for req_index in by_row[row_index]:
                    results[req_index] = self._answer(requests[req_index], logprobs)
                    pbar.update(1)
        pbar.close()
        self.prefix_stats["requests"] += len(requests)
        self.prefix_stats["rows"] += len(rows)
        self.prefix_stats["cache_evictions"] = self.prefix_cache.evictions
        log.info("%s: %s", MODEL_NAME, self.prefix_stats)
        return results

    # -- planning inputs

    def _rows(self, requests) -> tuple[list[Row], list[int]]:
        """One row per distinct model input; row_of[i] is request i's row."""
        index: dict[tuple[int, ...], int] = {}
        needs: list[int] = []
        row_of = []
        for _, context_enc, continuation_enc in requests:
            assert len(context_enc) > 0 and len(continuation_enc) > 0
            assert len(continuation_enc) <= self.max_length
            tokens = tuple((context_enc + continuation_enc)[-(self.max_length + 1):][:-1])
            i = index.setdefault(tokens, len(index))
            if i == len(needs):
                needs.append(0)
            needs[i] = max(needs[i], len(continuation_enc))
            row_of.append(i)
        rows = [Row(tokens, need) for tokens, need in zip(index, needs)]
        return rows, row_of

    def _exact_row_limit(self) -> int | None:
        """Longest row a shared cache serves exactly (None: not a cache we know), probed once on 1 token."""
        if self._row_limit is _UNKNOWN:
            out = self._forward(torch.tensor([[self.prefix_token_id]], device=self.device), keep=1)
            self._row_limit = cache_limit(getattr(out, self._cache_attr, None))
        return self._row_limit

    # -- model calls

    def _forward(self, input_ids: torch.Tensor, cache=None, keep=None):
        kwargs = {self._cache_kwarg: cache, "use_cache": True}
        if keep is not None and self._keeps_logits:
            kwargs["logits_to_keep"] = keep
        with torch.no_grad(), torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                                             enabled=self.mixed_precision_dtype is not None):
            return self.model(input_ids=input_ids, **kwargs)

    def _batch_size(self) -> int:
        if self.batch_size == "auto":
            if not hasattr(self, "_auto_batch_size"):  # full-length rows: an upper bound for suffixes
                self._auto_batch_size = self._detect_batch_size()
            return self._auto_batch_size
        return int(self.batch_size)

    def _score_group(self, group: Group, rows: list[Row]):
        """Yield (row index, log-probs [need, vocab]) for every row of the group.

        The group's prefix comes from the prefix cache when it holds all of it. Otherwise its missing
        part (past the longest cached prefix) is computed in one pass with the longest row's own
        tokens, and kept in the cache; the other rows follow in batches of similar length.
        """
        prefix_len, members, cache = group.prefix_len, list(group.rows), None
        if prefix_len:
            self.prefix_stats["groups"] += 1
            prefix = rows[members[0]].tokens[:prefix_len]
            _, cache, shared = self.prefix_cache.longest(prefix)
            self.prefix_stats["prefix_reused"] += shared
            if shared < prefix_len:
                first = max(members, key=lambda i: len(rows[i].tokens))
                members.remove(first)
                (logprobs,), grown, _ = self._score_batch([rows[first]], shared, cache)
                cache = cache_copy(grown, prefix_len)
                self.prefix_cache.put(prefix, cache, cache_nbytes(cache))
                own = len(rows[first].tokens) - prefix_len
                self._count(prefix=prefix_len - shared, own=own, padded=own)
                yield first, logprobs
        lengths = [len(rows[i].tokens) - prefix_len for i in members]
        for batch in plan_batches(lengths, self._batch_size(), self.max_padding):
            picked = [members[j] for j in batch]
            scored, _, width = self._score_batch([rows[i] for i in picked], prefix_len, cache)
            self._count(own=sum(lengths[j] for j in batch), padded=width * len(batch))
            yield from zip(picked, scored)

    def _count(self, prefix: int = 0, own: int = 0, padded: int = 0) -> None:
        stats = self.prefix_stats
        stats["prefix_tokens"] += prefix
        stats["suffix_tokens"] += own
        stats["padded_tokens"] += padded
        stats["batches"] += 1

    def _score_batch(self, batch: list[Row], start: int, cache):
        """Score rows from position `start` on, against the first `start` positions of `cache` (batch-1;
        None when start is 0). Returns (log-probs [need, vocab] per row, the grown cache, padded width)."""
        suffixes = [row.tokens[start:] for row in batch]
        width = max(map(len, suffixes))
        ids = torch.zeros((len(batch), width), dtype=torch.long)  # right padding (causal: never attended to)
        for i, suffix in enumerate(suffixes):
            ids[i, :len(suffix)] = torch.tensor(suffix, dtype=torch.long)
        # positions whose logits are scored: the last `need` of each row (padding comes after them)
        spans = [(len(s) - row.need, len(s)) for s, row in zip(suffixes, batch)]
        keep = sorted({p for a, b in spans for p in range(a, b)})
        where = {p: k for k, p in enumerate(keep)}
        view = cache_view(cache, start, len(batch)) if start else None
        out = self._forward(ids.to(self.device), cache=view, keep=torch.tensor(keep, device=self.device))
        logits = out.logits
        if logits.shape[1] != len(keep):  # model ignored logits_to_keep: full suffix logits
            where = {p: p for p in keep}
        scored = []
        for i, (a, b) in enumerate(spans):
            picked = logits[i, [where[p] for p in range(a, b)]]
            scored.append(F.log_softmax(picked, dim=-1, dtype=self.softmax_dtype))
        return scored, getattr(out, self._cache_attr), width

    def _answer(self, request, logprobs: torch.Tensor) -> tuple[float, bool]:
        request_str, _, continuation_enc = request
        lp = logprobs[-len(continuation_enc):]
        cont = torch.tensor(continuation_enc, dtype=torch.long, device=lp.device)
        answer = (float(lp.gather(1, cont.unsqueeze(-1)).sum()), bool((lp.argmax(dim=-1) == cont).all()))
        if request_str is not None:
            self.cache_hook.add_partial("loglikelihood", request_str, answer)
        return answer
