"""lm-eval model `hf-prefix`: the HF backend, computing a prompt prefix shared by many requests once.

In BioMistral's regime every question of a task carries the same instruction and the same three
English examples (most of a ~1,500-token MedQA prompt, and the same for all eight languages).
Stock HFLM recomputes that prefix for every question. Here the loglikelihood requests of a call
(lm-eval sends a whole run at once) are planned first:

1. each distinct model input (context + continuation minus its last token) becomes one row;
2. rows are sorted by tokens, so rows sharing a prefix are neighbours, and cut into groups that
   share a long prefix (`plan_groups`, pure and tested on its own);
3. per group the prefix's key/value cache is computed once (batch 1), then the rows' remaining
   tokens are scored in batches against that cache expanded (a view, no copy) across the batch;
   the cache is dropped before the next group, so memory stays bounded by one prefix + one batch;
4. rows with no worthwhile shared prefix are scored without a cache, like stock HFLM.

Numbers match stock HFLM (same truncation, same log-softmax dtype, same greedy check).
Anything this cannot accelerate (seq2seq models, rolling loglikelihood, caches that are not
plain or sliding-window DynamicCache layers) goes through the stock path unchanged.

Usage: `lm_eval --model hf-prefix --model_args pretrained=DIR ...` (found through the
`lm_eval.models` entry point and medtasks/_discovery.py); extra model arg `min_prefix_tokens`.
"""
from __future__ import annotations

import copy
import inspect
import logging
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm

log = logging.getLogger(__name__)

MODEL_NAME = "hf-prefix"
DEFAULT_MIN_PREFIX_TOKENS = 32  # below this a separate prefix pass costs more than it saves


# ---------------------------------------------------------------- planning (pure, no torch)

@dataclass(frozen=True)
class Row:
    tokens: tuple[int, ...]  # model input: (context + continuation)[:-1], truncated like stock HFLM
    need: int  # trailing positions whose logits are scored (longest continuation using this row)


@dataclass
class Group:
    prefix_len: int  # 0: no shared prefix, rows scored in full
    rows: list[int] = field(default_factory=list)  # indices into the planned rows


def common_prefix_len(a, b) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def plan_groups(rows: list[Row], min_prefix: int = DEFAULT_MIN_PREFIX_TOKENS) -> list[Group]:
    """Cut the rows, sorted by tokens, into groups sharing a prefix; leftovers in one prefix-0 group.

    A row joins the open group when the shared prefix stays >= min_prefix and what the group's
    members lose by a shorter prefix is less than what the row saves by sharing it. A prefix
    never covers a scored position (it stops `need` tokens before each row's end).
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
        groups.append(Group(0, leftover))
    return groups


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


def expand_cache(cache, batch: int):
    """A batch-`batch` view of a batch-1 DynamicCache; the original is untouched (layers only cat)."""
    out = copy.copy(cache)
    out.layers = []
    for layer in cache.layers:
        view = copy.copy(layer)
        view.keys = layer.keys.expand(batch, -1, -1, -1)
        view.values = layer.values.expand(batch, -1, -1, -1)
        out.layers.append(view)
    return out


# ---------------------------------------------------------------- the backend

@register_model(MODEL_NAME)
class PrefixCachingHFLM(HFLM):
    """HFLM whose loglikelihood computes each shared prompt prefix once per run (see module doc)."""

    def __init__(self, *args, min_prefix_tokens: int = DEFAULT_MIN_PREFIX_TOKENS, **kwargs):
        super().__init__(*args, **kwargs)
        self.min_prefix_tokens = int(min_prefix_tokens)
        self.prefix_stats = {"groups": 0, "prefix_tokens": 0, "suffix_tokens": 0, "padded_tokens": 0,
                             "rows": 0, "requests": 0, "fallback_calls": 0}
        self._cache_kwarg, self._cache_attr = _cache_api()
        params = inspect.signature(self.model.forward).parameters
        self._keeps_logits = "logits_to_keep" in params
        self._cache_ok: bool | None = None

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs: int | None = None):
        if self.backend != "causal" or override_bs is not None or not requests:
            self.prefix_stats["fallback_calls"] += 1
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        if not self._cache_supported():
            log.warning("%s: this model's KV cache is not a plain DynamicCache; using the stock HF path", MODEL_NAME)
            self.prefix_stats["fallback_calls"] += 1
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm)
        rows, row_of = self._rows(requests)
        groups = plan_groups(rows, self.min_prefix_tokens)

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

    def _cache_supported(self) -> bool:
        """Checked once per model, on a 1-token input: is its cache one we can share exactly?"""
        if self._cache_ok is None:
            out = self._forward(torch.tensor([[self.prefix_token_id]], device=self.device), keep=1)
            self._cache_ok = cache_limit(getattr(out, self._cache_attr, None)) is not None
        return self._cache_ok

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
        """Yield (row index, log-probs [need, vocab]) for every row of the group."""
        prefix_len, cache = group.prefix_len, None
        if prefix_len:
            prefix = rows[group.rows[0]].tokens[:prefix_len]
            out = self._forward(torch.tensor([prefix], device=self.device), keep=1)
            cache = getattr(out, self._cache_attr)
            del out
            if max(len(rows[i].tokens) for i in group.rows) > cache_limit(cache):
                prefix_len, cache = 0, None  # sliding window would mask: score in full instead
            else:
                self.prefix_stats["groups"] += 1
                self.prefix_stats["prefix_tokens"] += prefix_len
        members = sorted(group.rows, key=lambda i: -len(rows[i].tokens))
        size = self._batch_size()
        for start in range(0, len(members), size):
            batch = members[start:start + size]
            yield from zip(batch, self._score_batch([rows[i] for i in batch], prefix_len, cache))
        del cache  # released before the next group's prefix is computed

    def _score_batch(self, batch: list[Row], prefix_len: int, cache) -> list[torch.Tensor]:
        suffixes = [row.tokens[prefix_len:] for row in batch]
        width = max(map(len, suffixes))
        ids = torch.zeros((len(batch), width), dtype=torch.long, device=self.device)  # right padding
        for i, suffix in enumerate(suffixes):
            ids[i, :len(suffix)] = torch.tensor(suffix, dtype=torch.long)
        # positions whose logits are scored: the last `need` of each row (padding comes after them)
        spans = [(len(s) - row.need, len(s)) for s, row in zip(suffixes, batch)]
        keep = sorted({p for a, b in spans for p in range(a, b)})
        where = {p: k for k, p in enumerate(keep)}
        view = expand_cache(cache, len(batch)) if cache is not None else None
        out = self._forward(ids, cache=view, keep=torch.tensor(keep, device=self.device))
        logits = out.logits
        if logits.shape[1] != len(keep):  # model ignored logits_to_keep: full suffix logits
            where = {p: p for p in keep}
        self.prefix_stats["suffix_tokens"] += sum(map(len, suffixes))
        self.prefix_stats["padded_tokens"] += ids.numel()
        scored = []
        for i, (a, b) in enumerate(spans):
            picked = logits[i, [where[p] for p in range(a, b)]]
            scored.append(F.log_softmax(picked, dim=-1, dtype=self.softmax_dtype))
        return scored

    def _answer(self, request, logprobs: torch.Tensor) -> tuple[float, bool]:
        request_str, _, continuation_enc = request
        lp = logprobs[-len(continuation_enc):]
        cont = torch.tensor(continuation_enc, dtype=torch.long, device=lp.device)
        answer = (float(lp.gather(1, cont.unsqueeze(-1)).sum()), bool((lp.argmax(dim=-1) == cont).all()))
        if request_str is not None:
            self.cache_hook.add_partial("loglikelihood", request_str, answer)
        return answer
