"""The online path: the same benchmarks from the Hugging Face hub (datasets / huggingface_hub).

No machine here reaches the hub, so before any download this module checks HF_HUB_OFFLINE /
HF_DATASETS_OFFLINE and probes the endpoint with a short timeout: offline fails in seconds with
HubUnavailable (saying how to prepare the data offline) instead of after the libraries' retries.
Row conversion is pure and tested on rows built in the tests.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from medtasks.common import UsageError
from medtasks.records import DataError, Record
from medtasks.sources import hints, medmcqa, pubmedqa, truthfulqa
from medtasks.sources.common import checked, field, provenance, text_field
from medtasks.spec import BENCHMARKS, SOURCE_LANGUAGE, get_benchmark

NAME = "hub"
MEDQA = "GBaker/MedQA-USMLE-4-options-hf"  # sent1 = question, ending0..3, label 0-3
MEDMCQA = "openlifescienceai/medmcqa"  # cop 0-3; validation = the official dev split
PUBMEDQA = ("qiaojin/PubMedQA", "pqa_labeled")  # one split, 1000 rows
MMLU = "cais/mmlu"  # config = subject; choices list, answer 0-3
TRUTHFULQA = ("truthfulqa/truthful_qa", "generation")  # the CSV's columns as lists; one split, validation
BIOINSTRUCTQA = ("BioMistral/BioInstructQA", "data.zip")
# The official PubMedQA test ids are not on the hub; they come from the authors' repository.
PUBMEDQA_TEST_IDS = "https://raw.githubusercontent.com/pubmedqa/pubmedqa/master/data/test_ground_truth.json"
PROBE_TIMEOUT_S = 3.0
PROBE_MEMORY_S = 60.0  # an 80-task offline run asks many times; probe once a minute, not per task
_PROBED: dict[str, tuple[float, str | None]] = {}  # endpoint -> (monotonic time, failure reason)
OFFLINE_HELP = (
    "Prepare the data offline instead: copy the original files into a folder laid out like the "
    "shared data folder (medqa/en/4_options/test.jsonl, medmcqa/en/dev.jsonl, pubmedqa/en/ori_pqal.json, "
    f"mmlu/en/test/*.csv, ...) and either set MEDTASKS_DATA={hints.DATA_DIR} (tasks import it on first use) or run "
    f"{hints.quoted(hints.import_data())}; BioInstructQA's data.zip, downloaded elsewhere, imports with "
    f"{hints.quoted(hints.import_bioinstructqa())}."
)


class HubUnavailable(UsageError, RuntimeError):
    """The hub cannot be used (offline mode or unreachable); the message says what to do instead, and
    `reason` says why in a few words (for callers that give their own advice)."""

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason or message


def env_flag(name: str) -> bool:
    """Whether environment variable `name` is set to a true value (1, true, yes, on)."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def probe(url: str, timeout: float | None = None) -> str | None:
    """None when `url` answers at all (any HTTP status), else the reason. Bounded by `timeout` even
    when name resolution hangs, because the request runs in a daemon thread."""
    timeout = PROBE_TIMEOUT_S if timeout is None else timeout
    outcome: list[str | None] = []

    def attempt():
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
            outcome.append(None)
        except urllib.error.HTTPError:
            outcome.append(None)  # the server answered: reachable
        except Exception as err:  # noqa: BLE001 - any failure means unreachable; report it
            outcome.append(f"{type(err).__name__}: {getattr(err, 'reason', err)}")

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return outcome[0] if outcome else f"no answer within {timeout:g} s"


def ensure_hub(what: str) -> None:
    """Raise HubUnavailable fast when the hub cannot be used for `what`."""
    for flag in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if env_flag(flag):
            raise HubUnavailable(f"cannot fetch {what}: {flag} is set. {OFFLINE_HELP}", f"{flag} is set")
    endpoint = hub_endpoint()
    checked_at, reason = _PROBED.get(endpoint, (float("-inf"), None))
    if time.monotonic() - checked_at > PROBE_MEMORY_S:
        reason = probe(endpoint)
        _PROBED[endpoint] = (time.monotonic(), reason)
    if reason:
        raise HubUnavailable(f"cannot fetch {what}: {endpoint} is unreachable ({reason}). {OFFLINE_HELP}",
                             f"{endpoint} is unreachable ({reason})")


def rows_sha256(rows: list[dict]) -> str:
    """Checksum of hub rows as canonical JSON lines: the hub analogue of a file's sha256."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update((json.dumps(row, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode())
    return digest.hexdigest()


# Pure row converters: one hub row -> Record.

def convert_medqa(row: dict, split: str, number: int, prov: dict) -> Record:
    source, where = prov["source"], prov["row"]
    options = {letter: text_field(row, f"ending{i}", source, where) for i, letter in enumerate("ABCD")}
    return checked(Record(f"medqa-{split}-{number:04d}", "medqa", SOURCE_LANGUAGE, split,
                          text_field(row, "sent1", source, where), options,
                          _index_letter(field(row, "label", source, where), "ABCD", source, where, "label"),
                          None, prov), where)


def convert_mmlu(row: dict, benchmark: str, split: str, original_split: str, number: int, prov: dict) -> Record:
    source, where = prov["source"], prov["row"]
    choices = field(row, "choices", source, where)
    if not isinstance(choices, list) or len(choices) != 4:
        raise DataError(source, where, "choices", f"expected 4 choices, got {choices!r:.80}")
    return checked(Record(f"{benchmark}-{original_split}-{number:04d}", benchmark, SOURCE_LANGUAGE, split,
                          text_field(row, "question", source, where), dict(zip("ABCD", choices)),
                          _index_letter(field(row, "answer", source, where), "ABCD", source, where, "answer"),
                          None, prov), where)


def convert_pubmedqa(row: dict, split: str, prov: dict) -> Record:
    source, where = prov["source"], prov["row"]
    context = field(row, "context", source, where)
    item = {"QUESTION": field(row, "question", source, where),
            "CONTEXTS": context.get("contexts") if isinstance(context, dict) else None,
            "final_decision": field(row, "final_decision", source, where)}
    return pubmedqa.convert_item(str(field(row, "pubid", source, where)), item, split, prov)


def _index_letter(value, letters: str, source: str, where, key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(letters):
        raise DataError(source, where, key, f"expected an index 0-{len(letters) - 1}, got {value!r}")
    return letters[value]


# Fetchers: download, then convert with the functions above.

def _load(repo: str, config: str | None = None):
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a core dependency of lm-eval
        raise ImportError("the hub path needs `datasets`: pip install datasets") from None
    return datasets.load_dataset(repo, config)  # no trust_remote_code: plain data repos only


def _convert_split(rows, repo: str, split: str, convert) -> list[Record]:
    rows = [dict(row) for row in rows]
    sha = rows_sha256(rows)
    return [convert(row, number, provenance(NAME, f"{repo}:{split}", sha, number))
            for number, row in enumerate(rows, 1)]


def fetch_medqa() -> list[Record]:
    data, records = _load(MEDQA), []
    for split in ("test", "train", "validation"):
        records += _convert_split(data[split], MEDQA, split, lambda row, n, p, s=split: convert_medqa(row, s, n, p))
    return records


def fetch_medmcqa() -> list[Record]:
    data, records = _load(MEDMCQA), []
    for hub_split, split in (("validation", "test"), ("train", "train")):
        records += _convert_split(data[hub_split], MEDMCQA, hub_split,
                                  lambda row, n, p, s=split: medmcqa.convert_row(row, s, p, cop_base=0))
    return records


def fetch_pubmedqa() -> list[Record]:
    repo, config = PUBMEDQA
    try:
        with urllib.request.urlopen(PUBMEDQA_TEST_IDS, timeout=10) as answer:
            test_ids = set(json.loads(answer.read().decode("utf-8")))
    except OSError as err:
        raise HubUnavailable(f"cannot fetch the PubMedQA test ids from {PUBMEDQA_TEST_IDS} ({err}). "
                             f"{OFFLINE_HELP}", f"{PUBMEDQA_TEST_IDS} is unreachable ({err})") from None
    if len(test_ids) != 500:
        raise DataError(PUBMEDQA_TEST_IDS, None, None, f"expected 500 test ids, got {len(test_ids)}")
    rows = _load(repo, config)["train"]
    return _convert_split(rows, f"{repo}/{config}", "train", lambda row, n, p: convert_pubmedqa(
        row, "test" if str(row.get("pubid")) in test_ids else "fewshot", p))


def fetch_mmlu(benchmark: str) -> list[Record]:
    subject, records = BENCHMARKS[benchmark].mmlu_subject, []
    data = _load(MMLU, subject)
    for hub_split, split in (("test", "test"), ("dev", "fewshot")):
        records += _convert_split(data[hub_split], f"{MMLU}/{subject}", hub_split,
                                  lambda row, n, p, s=split, o=hub_split: convert_mmlu(row, benchmark, s, o, n, p))
    return records


def truthfulqa_rows(rows) -> list[tuple[int, int, dict]]:
    """Hub `generation` rows -> (index, row number, normalized row) as truthfulqa.select takes them (pure)."""
    out = []
    for number, row in enumerate(rows, 1):
        incorrect = row.get("incorrect_answers")
        if not isinstance(incorrect, list):
            raise DataError(f"{TRUTHFULQA[0]}/{TRUTHFULQA[1]}", number, "incorrect_answers",
                            f"expected a list, got {type(incorrect).__name__}")
        out.append((number, number, {"type": row.get("type"), "category": row.get("category"),
                                     "question": row.get("question"), "best_answer": row.get("best_answer"),
                                     "incorrect_answers": incorrect}))
    return out


def fetch_truthfulqa(categories=None, seed: int = truthfulqa.ORDER_SEED) -> list[Record]:
    """The medical categories of TruthfulQA's `generation` config (not multiple_choice: its mc1/mc2
    choice lists differ from the CSV's answers); the same ids and options as the CSV release."""
    repo, config = TRUTHFULQA
    rows = [dict(row) for row in _load(repo, config)["validation"]]
    chosen = tuple(categories) if categories is not None else truthfulqa.default_categories()
    return truthfulqa.select(truthfulqa_rows(rows), chosen, f"{repo}/{config}:validation", rows_sha256(rows),
                             seed, importer=NAME)


def download_bioinstructqa() -> Path:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:  # pragma: no cover - installed with datasets
        raise ImportError("the hub path needs `huggingface_hub`: pip install huggingface_hub") from None
    repo, filename = BIOINSTRUCTQA
    return Path(hf_hub_download(repo_id=repo, filename=filename, repo_type="dataset"))


FETCHERS = {"medqa": fetch_medqa, "medmcqa": fetch_medmcqa, "pubmedqa": fetch_pubmedqa,
            "truthfulqa_med": fetch_truthfulqa}


def fetch(benchmark: str) -> list[Record]:
    """English records of `benchmark` from its hub dataset (medqa5 has none there: use BioInstructQA)."""
    bench = get_benchmark(benchmark)
    if bench.family == "mmlu":
        return fetch_mmlu(benchmark)
    if benchmark not in FETCHERS:
        raise KeyError(f"{benchmark} has no hub dataset of its own; it comes from {BIOINSTRUCTQA[0]}")
    return FETCHERS[benchmark]()
