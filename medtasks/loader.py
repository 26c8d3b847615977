"""lm-eval's `custom_dataset` for every task: resolve the records, convert them to docs, pick the shots.

Each task YAML passes its benchmark and language (dataset_kwargs); lm-eval adds the task metadata
(regime, version) and `--metadata` (where `fewshot_seed` selects the few-shot examples of a run).
Where the records come from is medtasks.resolve's business, not this module's.
"""
from __future__ import annotations

from medtasks import spec
from medtasks.records import Record
from medtasks.resolve import ensure, fewshot_source, resolve, resolve_fewshot


def to_doc(record: Record, data_sha256: str) -> dict:
    """A flat row for lm-eval. `data_sha256` (the store file's checksum) travels into every sample, so
    results can tell which data a score was computed on."""
    return {
        "id": record.id,
        "question": record.question,
        "context": record.context or "",
        "options": list(record.options.values()),
        "answer": record.answer,
        "category": str(record.provenance.get("category", "")),
        "data_sha256": data_sha256,
    }


def check_task_data(benchmark: str, language: str, fewshot_seed: int = spec.DEFAULT_FEWSHOT_SEED) -> None:
    """Raise MissingData unless every split the task loads is in the store or can be imported now (what it
    imports stays in the store). `medeval eval` runs it for every task before it starts lm-eval; nothing is
    read here (lm-eval's process reads the records)."""
    ensure(benchmark, language, "test")
    fewshot_source(benchmark, language, int(fewshot_seed))


def load_task_dataset(benchmark: str, language: str, fewshot_seed: int = spec.DEFAULT_FEWSHOT_SEED, **_metadata):
    """DatasetDict(test=..., fewshot=...) for one task; test only in a zero-shot regime. Other metadata
    keys (version, regime) are lm-eval's and the YAML's; the regime itself is read from the spec."""
    import datasets

    spec.get_language(language)
    test = resolve(benchmark, language, "test")
    splits = {"test": datasets.Dataset.from_list([to_doc(r, test.sha256) for r in test.records])}
    shots = resolve_fewshot(benchmark, language, int(fewshot_seed))
    if shots is not None:
        splits["fewshot"] = datasets.Dataset.from_list([to_doc(r, shots.sha256) for r in shots.records])
    return datasets.DatasetDict(splits)
