"""Local transformers seq2seq models: Marian (OPUS-MT), M2M100, NLLB. Batched; on GPU when present.

`model` names one model for every pair, a template with {src} and {tgt}
("Helsinki-NLP/opus-mt-{src}-{tgt}"), or per-pair entries "en-fr=path1,en-es=path2".
"name@revision" pins a hub revision. Weights load from safetensors only, remote code never runs.
"""
from __future__ import annotations

import threading
from pathlib import Path

from medtasks.common import UsageError, model_content_hash, require
from medtasks.spec import get_language
from translation.backends.base import Backend, Client
from translation.net import PermanentError


def _import():
    import torch  # medeval's own dependencies, imported when a model is loaded
    import transformers

    return torch, transformers


class Seq2SeqBackend(Backend):
    name = "seq2seq"

    def __init__(self, model: str | None = None, device: str | None = None, batch_size: int = 16, max_new_tokens: int = 512,
                 num_beams: int | None = None, max_chars: int = 400):
        if not model:
            raise UsageError("--backend seq2seq needs --model: a path, a hub id, a {src}/{tgt} template "
                             "or src-tgt=path pairs")
        require("sentencepiece", "translation", "the seq2seq backend (Marian and M2M100 tokenizers)")
        self.model_spec = model
        self.device = device
        self.batch_size, self.max_new_tokens, self.num_beams = batch_size, max_new_tokens, num_beams
        self.max_chars = max_chars  # ~100-150 tokens: well inside every model's 512-token input
        self._loaded: dict[tuple[str, str], tuple] = {}
        self._lock = threading.Lock()

    def model_for(self, source: str, target: str) -> str:
        spec = self.model_spec
        if "=" in spec:
            pairs = dict(part.split("=", 1) for part in spec.split(",") if part.strip())
            pair = f"{source}-{target}"
            if pair not in pairs:
                raise PermanentError(f"no seq2seq model configured for {pair}; configured: {', '.join(pairs)}")
            return pairs[pair].strip()
        return spec.format(src=source, tgt=target)

    def version(self, source: str, target: str) -> str:
        name = self.model_for(source, target)
        path = Path(name)
        if path.is_dir():  # a local model: its config and weights tell two models apart, not its folder
            return f"{path.name}@sha256:{model_content_hash(str(path.resolve()))[:16]}"
        return name

    def _load(self, source: str, target: str):
        with self._lock:
            if (source, target) not in self._loaded:
                torch, transformers = _import()
                name, _, revision = self.model_for(source, target).partition("@")
                device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
                common = dict(revision=revision or None, trust_remote_code=False)
                tokenizer = transformers.AutoTokenizer.from_pretrained(name, **common)
                model = transformers.AutoModelForSeq2SeqLM.from_pretrained(
                    name, use_safetensors=True, dtype=torch.float16 if device.startswith("cuda") else torch.float32,
                    **common).to(device).eval()
                self._loaded[(source, target)] = (tokenizer, model, device, self._forced_bos(tokenizer, source, target))
            return self._loaded[(source, target)]

    @staticmethod
    def _forced_bos(tokenizer, source: str, target: str) -> int | None:
        """Many-to-many models need the source language set and the target language forced."""
        if "nllb" in type(tokenizer).__name__.lower():
            src, tgt = (get_language(code).nllb_code for code in (source, target))
            tokenizer.src_lang = src
            return tokenizer.convert_tokens_to_ids(tgt)
        if hasattr(tokenizer, "get_lang_id"):  # M2M100: ISO codes
            tokenizer.src_lang = source
            return tokenizer.get_lang_id(target)
        return None  # Marian: one model per pair

    def new_client(self, source: str, target: str) -> Client:
        tokenizer, model, device, forced_bos = self._load(source, target)
        torch, _ = _import()
        limit = min(tokenizer.model_max_length or 10**6, getattr(model.config, "max_position_embeddings", 10**6))
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])

        def client(batch: list[str]) -> list[str | PermanentError]:
            encoded = tokenizer(batch, return_tensors="pt", padding=True)
            lengths = encoded["attention_mask"].sum(dim=1).tolist()
            long = {i for i, n in enumerate(lengths) if n > limit}
            if long:  # never let the tokenizer cut a segment silently: report it, translate the rest
                fitting = [text for i, text in enumerate(batch) if i not in long]
                done = iter(client(fitting) if fitting else [])
                return [PermanentError(f"segment of {lengths[i]} tokens exceeds the model's {limit}-token input; "
                                       "lower --max-chars") if i in long else next(done) for i in range(len(batch))]
            kwargs = {"max_new_tokens": self.max_new_tokens}
            if self.num_beams:
                kwargs["num_beams"] = self.num_beams
            if forced_bos is not None:
                kwargs["forced_bos_token_id"] = forced_bos
            with torch.inference_mode():
                output = model.generate(**encoded.to(device), **kwargs)
            results = []
            for row, text in zip(output.tolist(), tokenizer.batch_decode(output, skip_special_tokens=True)):
                # Marian configs force EOS at the length limit: an EOS in the last slot is a cut, not an end
                ends = [i for i, token in enumerate(row[1:]) if token in eos_ids]
                finished = bool(ends) and ends[0] < self.max_new_tokens - 1
                results.append(text if finished else PermanentError(
                    f"output cut at max_new_tokens={self.max_new_tokens} (no end-of-sequence token)"))
            return results

        return client

