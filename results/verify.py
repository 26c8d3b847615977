"""`medeval verify BUNDLE`: the maintainer's side of a submission, offline, against the maintainer's own store.

Every check, for every task of every run in the bundle:
  manifest  every file has the sha256 the manifest lists; none is missing, none was added
  data      the question ids are the maintainer's test questions, in the maintainer's order, all of them (or the
            first N of a --limit run), as many as the results file says; each doc equals the maintainer's (question,
            options, answer, context, ...) and carries the checksum of the maintainer's store file
  regime    the task ran in its benchmark's regime (name, version, shots; no chat template or system prompt)
  prompt    each request's context is what our task renders for that question with the maintainer's few-shot
            examples of the run's seed (medtasks.prompts.build_prompt), byte for byte, and its continuations are
            the task's choices: a doctored prompt or a swapped few-shot set shows here
  answers   the responses are well-formed: one (log-likelihood, is-greedy) per choice, finite and <= 0, flags
            True/False, filtered = raw; for single letters at most one greedy, which is the most likely letter,
            and letter probabilities summing to at most 1
  metrics   each per-question metric, recomputed from the responses with our task's own hook against the
            maintainer's gold answer, equals the sample's; each task's and group's reported metric equals the
            aggregate of the recomputed ones (|difference| <= TOLERANCE)
  claims    submission.json says what the files say: tasks, seeds, data checksums, limited, partial
Every discrepancy names the task (and seed), the question id (TASK_LEVEL for a task's aggregate) and the field.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from medtasks import spec
from medtasks.metrics import ece_aggregation, process_multi_results, process_results
from medtasks.prompts import (LETTERS, build_prompt, doc_options, doc_to_choice, doc_to_subset_choices,
                              doc_to_subset_target, doc_to_target, format_subset)
from results.load import read_results_json, run_regime, samples_path, task_of_config
from results.submission import (bundle_digest, manifest_problems, open_bundle, partial_reasons, read_submission,
                                regime_label)

SCHEMA = "medeval-verification/1"
TOLERANCE = 1e-9  # absolute, on every metric: lm-eval stores log-likelihoods with full float precision
LOGPROB_SLACK = 1e-6  # letter probabilities may sum to 1 + this (float rounding of the log-softmax)
TASK_LEVEL = "(task)"  # the question field of a discrepancy about a task as a whole
BUNDLE = "(bundle)"  # the task field of a discrepancy about the bundle's files


@dataclass(frozen=True)
class Discrepancy:
    task: str
    seed: int | None
    question: str
    field: str
    message: str

    def __str__(self) -> str:
        seed = "" if self.seed is None else f" [seed {self.seed}]"
        return f"{self.task}{seed} · question {self.question} · {self.field}: {self.message}"


@dataclass
class Report:
    bundle: str
    digest: str
    store: str
    submission: dict
    partial: dict[str, str]  # the reasons recomputed from the files ({} for a complete submission)
    discrepancies: list[Discrepancy] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"files": 0, "runs": 0, "questions": 0, "prompts": 0,
                                                            "metrics": 0})

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "verdict": "verified" if self.ok else "failed", "bundle": self.bundle,
                "bundle_sha256": self.digest, "store": self.store, "tolerance": TOLERANCE,
                "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "model": self.submission.get("model"), "partial": bool(self.partial),
                "partial_reasons": self.partial, "counts": self.counts,
                "discrepancies": [asdict(d) for d in self.discrepancies]}

    def text(self) -> str:
        model = self.submission.get("model") or {}
        tasks = sorted((self.submission.get("tasks") or {}))
        head = (f"{'VERIFIED' if self.ok else 'FAILED'}: {self.bundle} ({model.get('name')}, {model.get('revision')})"
                + (" — PARTIAL submission" if self.partial else ""))
        lines = [head]
        lines += [f"  partial: {reason}" for reason in self.partial.values()]
        c = self.counts
        lines.append(f"  {len(tasks)} tasks, {c['runs']} task runs, {c['questions']} questions, {c['prompts']} "
                     f"prompts, {c['metrics']} reported metrics recomputed (tolerance {TOLERANCE:g}); "
                     f"{c['files']} files checked against the manifest; data: the store {self.store}")
        if self.discrepancies:
            lines.append(f"  {len(self.discrepancies)} discrepancies:")
            lines += [f"  - {d}" for d in self.discrepancies]
        return "\n".join(lines) + "\n"


@contextlib.contextmanager
def maintainer_store(store: Path):
    """Our loader reads $MEDTASKS_STORE; verification is offline (the hub variables) and never falls back to
    the hub: the maintainer's data is the maintainer's store."""
    names = ("MEDTASKS_STORE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    saved = {n: os.environ.get(n) for n in names}
    os.environ.update({"MEDTASKS_STORE": str(store), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class Reference:
    """The maintainer's docs of a task (test split and few-shot examples per seed), loaded once each, through
    the same loader lm-eval calls (medtasks.loader.load_task_dataset)."""

    def __init__(self):
        self._cache: dict[tuple, tuple[list[dict], list[dict]]] = {}

    def docs(self, benchmark: str, language: str, seed: int) -> tuple[list[dict], list[dict]]:
        key = (benchmark, language, seed)
        if key not in self._cache:
            from medtasks.loader import load_task_dataset

            data = load_task_dataset(benchmark, language, fewshot_seed=seed)
            self._cache[key] = (data["test"].to_list(), data["fewshot"].to_list() if "fewshot" in data else [])
        return self._cache[key]


def render_prompt(doc: dict, shots: list[dict], multi: bool) -> str:
    """The context lm-eval scores for `doc`: build_prompt over items with {letter: text} options; the examples'
    answers are written as the task's target choice (a letter, or "A, C)" for a multi-answer exam)."""
    def item(d: dict) -> dict:
        return {**d, "options": doc_options(d), "answer": format_subset(d["answer"]) if multi else d["answer"]}

    return build_prompt(item(doc), [item(s) for s in shots])


def first_difference(expected: str, found: str) -> str:
    at = next((i for i, (a, b) in enumerate(zip(expected, found)) if a != b), min(len(expected), len(found)))
    return (f"differs from the prompt our task renders at character {at}: expected {expected[at:at + 40]!r}, "
            f"found {found[at:at + 40]!r}")


def parse_responses(sample: dict, n_choices: int) -> tuple[list[tuple[float, bool]] | None, str]:
    """[(log-likelihood, is_greedy)] per choice from `filtered_resps` (what lm-eval scored), or (None, problem)."""
    raw, filtered = sample.get("resps"), sample.get("filtered_resps")
    if not isinstance(raw, list) or not isinstance(filtered, list):
        return None, "resps / filtered_resps missing"
    if len(filtered) != n_choices or len(raw) != n_choices:
        return None, f"{len(filtered)} responses for {n_choices} choices"
    if [r[0] if isinstance(r, list) and len(r) == 1 else None for r in raw] != filtered:
        return None, "filtered_resps differ from resps (the 'none' filter keeps them as they are)"
    parsed = []
    for i, pair in enumerate(filtered):
        if not (isinstance(pair, list) and len(pair) == 2):
            return None, f"response {i} is not [log-likelihood, is_greedy]"
        try:
            loglik = float(pair[0])
        except (TypeError, ValueError):
            return None, f"response {i}: log-likelihood {pair[0]!r} is not a number"
        greedy = {"True": True, "False": False, True: True, False: False}.get(pair[1]) \
            if isinstance(pair[1], (str, bool)) else None
        if not math.isfinite(loglik) or loglik > LOGPROB_SLACK:
            return None, f"response {i}: log-likelihood {loglik} is not a finite number <= 0"
        if greedy is None:
            return None, f"response {i}: is_greedy {pair[1]!r} is not True or False"
        parsed.append((loglik, greedy))
    return parsed, ""


def letter_problem(responses: list[tuple[float, bool]]) -> str:
    """Single-token letters share one next-token distribution: at most one is the greedy token, that one is the
    most likely letter, and their probabilities add up to at most 1."""
    greedy = [i for i, (_, g) in enumerate(responses) if g]
    logliks = [ll for ll, _ in responses]
    if len(greedy) > 1:
        return f"{len(greedy)} letters flagged as the greedy token (at most one can be)"
    if greedy and logliks[greedy[0]] < max(logliks):
        return f"letter {LETTERS[greedy[0]]} is flagged greedy but another letter is more likely"
    total = sum(math.exp(ll) for ll in logliks)
    if total > 1 + LOGPROB_SLACK:
        return f"the letter probabilities add up to {total:.6f} > 1"
    return ""


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= TOLERANCE
    return a == b


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class TaskCheck:
    """One task of one results file against the maintainer's data; adds to `report`."""

    def __init__(self, report: Report, reference: Reference, results: Path, data: dict, task: str, bench, language):
        self.report, self.results, self.data, self.task = report, results, data, task
        self.bench, self.language = bench, language
        self.config = data["configs"].get(task) or {}
        metadata = self.config.get("metadata") or {}
        self.seed = int(metadata.get("fewshot_seed", spec.DEFAULT_FEWSHOT_SEED))
        self.regime = spec.regime_of(bench)
        self.multi = bench.answers == "multi"
        self.test, shots = reference.docs(bench.key, language, self.seed)
        self.shots = shots[: self.regime.num_fewshot]
        self.metrics = spec.metrics_for(bench.answers)
        self.data_sha256 = None  # what the samples' docs carry (the first one's)

    def flag(self, question: str, field_name: str, message: str) -> None:
        self.report.discrepancies.append(Discrepancy(self.task, self.seed, question, field_name, message))

    def run(self) -> dict[str, float]:
        """Check everything; return the task's recomputed metrics (empty when a question could not be scored)."""
        self.check_regime()
        samples = self.read_samples()
        if samples is None:
            return {}
        self.check_ids(samples)
        by_id = {d["id"]: d for d in self.test}
        recomputed, complete = {m: [] for m in self.metrics}, True
        for sample in samples:
            qid = str((sample.get("doc") or {}).get("id"))
            if qid not in by_id:
                complete = False
                continue
            values = self.check_sample(sample, by_id[qid])
            if values is None:
                complete = False
                continue
            for m in self.metrics:
                recomputed[m].append(values[m])
        self.report.counts["runs"] += 1
        self.report.counts["questions"] += len(samples)
        return self.check_aggregates(recomputed) if complete and samples else {}

    def check_regime(self) -> None:
        n_shot = self.data["n-shot"].get(self.task)
        name, version = run_regime(self.config.get("metadata") or {}, self.bench.key, int(n_shot or 0))
        own = regime_label(self.regime.name, self.regime.version)
        if regime_label(name, version) != own:
            self.flag(TASK_LEVEL, "configs.metadata.regime", f"ran in {regime_label(name, version)}, "
                      f"the benchmark's regime is {own}")
        if n_shot != self.regime.num_fewshot:
            self.flag(TASK_LEVEL, "n-shot", f"{n_shot} examples, the regime shows {self.regime.num_fewshot}")
        for key in ("chat_template", "system_instruction"):
            if self.data.get(key):
                self.flag(TASK_LEVEL, key, "set: the regime uses the plain prompt (no chat template, no system prompt)")

    def read_samples(self) -> list[dict] | None:
        path = samples_path(self.results, self.task)
        if path is None:
            self.flag(TASK_LEVEL, "samples", f"no samples file beside {self.results.name}")
            return None
        samples = []
        with open(path, encoding="utf-8") as fh:
            for line_no, text in enumerate(fh, 1):
                if not text.strip():
                    continue
                try:
                    sample = json.loads(text)
                except json.JSONDecodeError as err:
                    self.flag(f"(line {line_no})", "samples", f"{path.name}: not valid JSON ({err.msg})")
                    continue
                if not isinstance(sample, dict) or not isinstance(sample.get("doc"), dict):
                    self.flag(f"(line {line_no})", "doc", f"{path.name}: not an lm-eval sample with a doc")
                    continue
                samples.append(sample)
        if samples:
            self.data_sha256 = samples[0]["doc"].get("data_sha256")
        return samples

    def entry(self) -> dict:
        """What partial_reasons and check_claims need of this task run."""
        counts = self.data["n-samples"].get(self.task) or {}
        regime, version = run_regime(self.config.get("metadata") or {}, self.bench.key,
                                     int(self.data["n-shot"].get(self.task) or 0))
        return {"task": self.task, "benchmark": self.bench.key, "language": self.language, "regime": regime,
                "regime_version": version, "fewshot_seed": self.seed, "n_questions": counts.get("effective", 0),
                "n_questions_full": counts.get("original", 0), "data_sha256": self.data_sha256}

    def check_ids(self, samples: list[dict]) -> None:
        counts = self.data["n-samples"].get(self.task) or {}
        original, effective = counts.get("original"), counts.get("effective")
        if original != len(self.test):
            self.flag(TASK_LEVEL, "n-samples.original", f"{original} questions in the split, the maintainer's has "
                      f"{len(self.test)}")
        if effective != len(samples):
            self.flag(TASK_LEVEL, "n-samples.effective", f"the results file says {effective} questions, the samples "
                      f"hold {len(samples)}")
        n = effective if isinstance(effective, int) and 0 < effective <= len(self.test) else len(self.test)
        expected = [d["id"] for d in self.test[:n]]
        position = {qid: i for i, qid in enumerate(expected)}
        all_ids = {d["id"] for d in self.test}
        found = [str(s["doc"].get("id")) for s in samples]
        seen = set()
        for sample, qid in zip(samples, found):
            if qid in seen:
                self.flag(qid, "doc.id", "appears twice in the samples")
            seen.add(qid)
            if qid not in all_ids:
                self.flag(qid, "doc.id", "not a question of the maintainer's data")
            elif qid not in position:
                self.flag(qid, "doc.id", f"not among the first {n} questions a --limit {n} run evaluates")
            elif sample.get("doc_id") != position[qid]:
                self.flag(qid, "doc_id", f"{sample.get('doc_id')!r}, the question's position is {position[qid]}")
        for qid in expected:
            if qid not in seen:
                self.flag(qid, "doc.id", "missing from the samples (the maintainer's data has it)")

    def check_sample(self, sample: dict, ref: dict) -> dict | None:
        """Doc, prompt, answers and per-question metrics of one question; its recomputed metrics, or None."""
        qid, doc = ref["id"], sample["doc"]
        for key, value in ref.items():
            if doc.get(key) != value:
                what = "data checksum" if key == "data_sha256" else "field"
                self.flag(qid, f"doc.{key}", f"{_short(doc.get(key))}: differs from the maintainer's {what} "
                          f"{_short(value)}")
        choices = doc_to_subset_choices(ref) if self.multi else doc_to_choice(ref)
        prompt = render_prompt(ref, self.shots, self.multi)
        requests = sample.get("arguments")
        requests = [requests.get(f"gen_args_{i}") for i in range(len(requests))] if isinstance(requests, dict) else []
        if len(requests) != len(choices):
            self.flag(qid, "arguments", f"{len(requests)} requests for the question's {len(choices)} choices")
        for i, (request, choice) in enumerate(zip(requests, choices)):
            request = request if isinstance(request, dict) else {}
            if request.get("arg_0") != prompt:
                self.flag(qid, f"arguments.gen_args_{i}.arg_0", first_difference(prompt, str(request.get("arg_0"))))
            if request.get("arg_1") != choice:
                self.flag(qid, f"arguments.gen_args_{i}.arg_1", f"continuation {request.get('arg_1')!r}, the "
                          f"task's choice {i} is {choice!r}")
        self.report.counts["prompts"] += 1
        responses, problem = parse_responses(sample, len(choices))
        if responses is not None and not self.multi:
            problem = letter_problem(responses)
            responses = None if problem else responses
        if responses is None:
            self.flag(qid, "resps", problem)
            return None
        target = doc_to_subset_target(ref) if self.multi else doc_to_target(ref)
        if str(sample.get("target")) != str(target):  # lm-eval logs the target as text (a letter, or an index)
            self.flag(qid, "target", f"{sample.get('target')!r}, the maintainer's gold answer is {target!r}")
        values = (process_multi_results if self.multi else process_results)(ref, responses)
        for metric in self.metrics:
            mine = list(values[metric]) if isinstance(values[metric], tuple) else values[metric]
            if metric not in sample or not _same(sample[metric], mine):
                self.flag(qid, metric, f"the sample says {_short(sample.get(metric))}, recomputed from its "
                          f"log-likelihoods and the gold answer: {_short(mine)}")
        return values

    def check_aggregates(self, recomputed: dict[str, list]) -> dict[str, float]:
        reported = self.data["results"].get(self.task) or {}
        out = {}
        for metric, values in recomputed.items():
            mine = ece_aggregation(values) if spec.METRICS[metric].aggregation == "ece" else sum(values) / len(values)
            out[metric] = mine
            theirs = reported.get(f"{metric},none")
            self.report.counts["metrics"] += 1
            if not isinstance(theirs, (int, float)) or isinstance(theirs, bool) or abs(theirs - mine) > TOLERANCE:
                self.flag(TASK_LEVEL, f"results.{metric}", f"reported {_short(theirs)}, recomputed from the samples "
                          f"{mine!r}")
        return out


def _leaves(group: str, subtasks: dict) -> list[str]:
    out = []
    for member in subtasks.get(group, []):
        out += _leaves(member, subtasks) if member in subtasks else [member]
    return out


def check_groups(report: Report, data: dict, recomputed: dict[str, dict[str, float]]) -> None:
    """lm-eval's group rows: the mean of their leaf tasks (our groups: weight_by_size false)."""
    subtasks = data.get("group_subtasks") or {}
    for group in subtasks:
        leaves = _leaves(group, subtasks)
        reported = data["results"].get(group) or {}
        for metric in spec.METRICS:
            key = f"{metric},none"
            if key not in reported or not leaves or not all(metric in recomputed.get(t, {}) for t in leaves):
                continue
            mine = sum(recomputed[t][metric] for t in leaves) / len(leaves)
            report.counts["metrics"] += 1
            if not isinstance(reported[key], (int, float)) or abs(reported[key] - mine) > TOLERANCE:
                report.discrepancies.append(Discrepancy(group, None, TASK_LEVEL, f"results.{metric}",
                                                        f"reported {_short(reported[key])}, the mean of its "
                                                        f"{len(leaves)} tasks recomputed {mine!r}"))


def check_claims(report: Report, entries: list[dict]) -> None:
    """submission.json against the files: tasks and seeds, data checksums, limited, partial."""
    claimed = report.submission.get("tasks") or {}
    found: dict[str, dict] = {}
    for e in entries:
        found.setdefault(e["task"], {})[e["fewshot_seed"]] = e

    def flag(task, field_name, message):
        report.discrepancies.append(Discrepancy(task, None, TASK_LEVEL, field_name, message))

    for task in sorted(set(claimed) | set(found)):
        if task not in found:
            flag(task, "submission.tasks", "claimed by submission.json, but no results file of the bundle has it")
            continue
        if task not in claimed:
            flag(task, "submission.tasks", "in the results files, but not in submission.json")
            continue
        claim, runs = claimed[task], found[task]
        if sorted(map(int, claim.get("seeds", {}))) != sorted(runs):
            flag(task, "submission.tasks.seeds", f"claims seeds {sorted(map(int, claim.get('seeds', {})))}, the "
                 f"files hold {sorted(runs)}")
        for e in runs.values():
            if e["data_sha256"] != claim.get("data_sha256"):
                flag(task, "submission.tasks.data_sha256", f"claims {claim.get('data_sha256')}, seed "
                     f"{e['fewshot_seed']}'s samples carry {e['data_sha256']}")
            if bool(claim.get("limited")) != (e["n_questions"] < e["n_questions_full"]):
                flag(task, "submission.tasks.limited", f"claims limited={claim.get('limited')}, seed "
                     f"{e['fewshot_seed']} scored {e['n_questions']} of {e['n_questions_full']} questions")
    if report.partial and not report.submission.get("partial"):
        reasons = "; ".join(report.partial.values())
        report.discrepancies.append(Discrepancy(BUNDLE, None, TASK_LEVEL, "submission.partial",
                                                f"claims a complete submission, but {reasons}"))


def verify_bundle(bundle, store=None, progress: bool = False) -> Report:
    """Check a bundle (folder or .tar.gz) against the maintainer's store (default: $MEDTASKS_STORE or the user
    cache). Unusable input (not a bundle, data missing from the store) raises UsageError; every discrepancy
    found is in the report."""
    from medtasks.store import default_store

    store = Path(store) if store is not None else default_store()
    with open_bundle(bundle) as folder:
        submission = read_submission(folder)
        report = Report(str(bundle), bundle_digest(folder), str(store), submission, {})
        report.counts["files"], problems = manifest_problems(folder)
        report.discrepancies += [Discrepancy(BUNDLE, None, TASK_LEVEL, name, problem) for name, problem in problems]
        files = sorted(folder.rglob("results_*.json"))
        if progress:
            from tqdm import tqdm

            files = tqdm(files, desc="results files", unit="file")
        entries = []
        reference = Reference()
        with maintainer_store(store):
            for path in files:
                entries += _check_results_file(report, reference, path)
        report.partial = partial_reasons(entries) if entries else {"suite": "the bundle holds no medeval task"}
        check_claims(report, entries)
    return report


def _check_results_file(report: Report, reference: Reference, path: Path) -> list[dict]:
    rel = path.name
    try:
        data = read_results_json(path)
    except Exception as err:  # noqa: BLE001 -- any unreadable file is a discrepancy of the bundle, not a crash
        report.discrepancies.append(Discrepancy(BUNDLE, None, TASK_LEVEL, rel, str(err)))
        return []
    groups = set(data.get("group_subtasks") or {}) | set(data.get("groups") or {})
    recomputed, entries = {}, []
    for task in data["results"]:
        if task in groups:
            continue
        name = task_of_config(task, data["configs"].get(task) or {})
        if name is None:
            report.discrepancies.append(Discrepancy(task, None, TASK_LEVEL, "task", f"{rel}: not a task of the "
                                                    "maintainer's spec; a bundle holds medeval tasks only"))
            continue
        bench = spec.get_benchmark(name.benchmark)
        check = TaskCheck(report, reference, path, data, task, bench, name.language)
        recomputed[task] = check.run()
        entries.append(check.entry())
    check_groups(report, data, recomputed)
    return entries


def write_report(report: Report, path: Path) -> None:
    tmp = Path(path).with_name(f".{Path(path).name}.tmp")
    tmp.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
