"""`medeval submit`: lm-eval runs of one model -> one self-contained submission bundle a maintainer can verify.

    <bundle>/submission.json   what the bundle claims: model identity, versions, regime, every task with its
                               seeds, question counts and data checksum, and whether it is partial (and why)
    <bundle>/manifest.json     sha256 of every other file of the bundle
    <bundle>/runs/NN/          one lm-eval output folder per results file, byte for byte: results_<stamp>.json
                               and the samples_<task>_<stamp>.jsonl of its medeval tasks

A bundle is a folder, or that folder packed as one .tar.gz. It is an lm-eval output folder too, so every
`medeval` results command reads it. What the runs are (task, regime, seed, question counts, data checksum)
comes from results.load, which reads it from the runs themselves.

A complete submission covers whole suites (every task of a group: the ten tasks of a language, the native
exams of a language, ...), every few-shot seed of the spec (BioMistral's mean ± std over three runs), all the
questions (no --limit), in one regime (the one each task's benchmark defines). Anything else is refused with
the reason, unless `--partial`, which records the reasons in the bundle for verify and the site to show.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import tarfile
import tempfile
from collections import defaultdict
from pathlib import Path

from medtasks import spec
from medtasks.common import UsageError, sha256_file
from results.load import (
    ResultsError,
    find_result_files,
    read_results_json,
    rows_from_results,
)
from results.provenance import project_commit
from results.samples import UNKNOWN_DATA

SCHEMA = "medeval-submission/1"
SUBMISSION = "submission.json"
CONTAMINATION = "contamination.json"  # the `medeval contamination` report the clean scores come from
MANIFEST = "manifest.json"
RUNS = "runs"
ARCHIVE_SUFFIX = ".tar.gz"
REASONS = ("limit", "suite", "seeds", "regime")  # what --partial accepts (the keys of partial_reasons)


def task_runs(paths, hash_models: bool = True) -> list[dict]:
    """One record per (results file, medeval task): results.load's row of the task (provenance included),
    without the metric columns, plus the results file and its data."""
    runs = []
    for path in find_result_files(paths):
        data = read_results_json(path)
        seen = set()
        for row in rows_from_results(path, data, hash_models=hash_models):
            if row["task"] in seen:
                continue
            seen.add(row["task"])
            record = {k: v for k, v in row.items() if k not in ("metric", "value", "stderr")}
            runs.append({**record, "results": path, "config": data["config"],
                         "transformers_version": data.get("transformers_version") or "unknown"})
    if not runs:
        raise ResultsError(f"no medeval task in the results under {', '.join(map(str, paths))}")
    return runs


def _check_usable(runs: list[dict]) -> None:
    """What no submission may lack, --partial or not: one identified model, samples with a data checksum,
    one run per task and seed, one task version and one data version per task."""
    models = sorted({(r["model_path"], r["model_revision"]) for r in runs})
    if len(models) > 1:
        raise UsageError("RUN_DIRS: the runs are of several models (" + "; ".join(f"{p} {rev}" for p, rev in models)
                         + "): one submission is one model, submit each separately")
    if models[0][1] == "unknown":
        raise UsageError(f"RUN_DIRS: the model {models[0][0]} cannot be identified (lm-eval recorded no hub commit "
                         "and it is not a local folder here): submit on the machine that holds the model folder")
    seen: dict[tuple, Path] = {}
    for r in runs:
        if not r["samples"]:
            raise UsageError(f"{r['results']}: task {r['task']} has no samples file: rerun lm_eval with --log_samples "
                             "(a submission is verified question by question)")
        if r["data_sha256"] == UNKNOWN_DATA:
            raise UsageError(f"{r['samples']}: the questions carry no data checksum (doc.data_sha256): rerun with "
                             "this version of medeval so the data of the run can be checked")
        key = (r["task"], r["fewshot_seed"])
        if key in seen:
            raise UsageError(f"RUN_DIRS: {r['task']} with few-shot seed {r['fewshot_seed']} appears in {seen[key]} "
                             f"and {r['results']}: keep one")
        seen[key] = r["results"]
    for field, what in (("data_sha256", "data versions"), ("task_version", "task versions")):
        by_task = defaultdict(set)
        for r in runs:
            by_task[r["task"]].add(str(r[field]))
        mixed = {t: v for t, v in by_task.items() if len(v) > 1}
        if mixed:
            task, values = sorted(mixed.items())[0]
            raise UsageError(f"RUN_DIRS: {task} was run on different {what} ({', '.join(sorted(values))}): "
                             "submit runs of one")


def _leaf_groups() -> dict[str, tuple[str, ...]]:
    """{group: member tasks} of the groups whose members are tasks (medeval_<lang>, medeval_native_<lang>,
    ...), from the task generator's one group table."""
    from medtasks.tasks.generate import groups

    found = [*groups(True), *groups(False)]
    names = {g.name for g in found}
    return {g.name: tuple(g.members) for g in found if g.members and not names & set(g.members)}


def _listing(items, most: int = 6) -> str:
    items = list(items)
    return ", ".join(items[:most]) + (f" and {len(items) - most} more" if len(items) > most else "")


def partial_reasons(entries: list[dict]) -> dict[str, str]:
    """Why runs are not a complete submission: {reason: one line}, reasons among REASONS; {} when complete.
    `entries` are task_runs() records (task, benchmark, regime, regime_version, fewshot_seed, n_questions,
    n_questions_full)."""
    reasons = {}
    limited = sorted({f"{e['task']} ({e['n_questions']} of {e['n_questions_full']} questions)" for e in entries
                      if e["n_questions"] < e["n_questions_full"]})
    if limited:
        reasons["limit"] = f"runs made with --limit: {_listing(limited)}"
    tasks = {e["task"] for e in entries}
    gaps = []
    for group, members in _leaf_groups().items():
        present = tasks & set(members)
        if present and present != set(members):
            gaps.append(f"{group} lacks {_listing(sorted(set(members) - present), 3)} "
                        f"({len(present)} of {len(members)} tasks)")
    if gaps:
        reasons["suite"] = "the tasks do not cover whole suites: " + "; ".join(gaps)
    seeds, benchmark = defaultdict(set), {}
    for e in entries:
        seeds[e["task"]].add(e["fewshot_seed"])
        benchmark[e["task"]] = e["benchmark"]
    short = sorted(t for t, s in seeds.items() if spec.regime_of(spec.get_benchmark(benchmark[t])).num_fewshot
                   and not set(spec.FEWSHOT_SEEDS) <= s)
    if short:
        reasons["seeds"] = (f"not every few-shot seed of {_seeds(spec.FEWSHOT_SEEDS)} was run (mean ± std over "
                            f"the three): {_listing(f'{t} (seeds {_seeds(seeds[t])})' for t in short)}")
    labels, off = defaultdict(set), set()
    for e in entries:
        label = regime_label(e["regime"], e["regime_version"])
        labels[label].add(e["task"])
        own = spec.regime_of(spec.get_benchmark(e["benchmark"]))
        if label != regime_label(own.name, own.version):
            off.add(f"{e['task']} ran in {label}, not its benchmark's {regime_label(own.name, own.version)}")
    mixed = "; ".join(f"{label}: {_listing(sorted(tasks), 3)}" for label, tasks in sorted(labels.items()))
    parts = [f"runs in different regimes ({mixed})"] if len(labels) > 1 else []
    if off:
        parts.append(_listing(sorted(off), 3))
    if parts:
        reasons["regime"] = "; ".join(parts)
    return reasons


def _seeds(seeds) -> str:
    return ", ".join(map(str, sorted(seeds)))


def regime_label(name: str, version) -> str:
    return f"{name} v{version}"


def _medeval_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("medeval")
    except PackageNotFoundError:
        return "unknown"


def describe(runs: list[dict], files: dict[Path, str], reasons: dict[str, str], name: str | None) -> dict:
    """The content of submission.json; `files` maps each copied file to its path in the bundle."""
    first = runs[0]
    config = first["config"]
    tasks = {}
    for r in sorted(runs, key=lambda r: (r["kind"], r["language"], r["task"], r["fewshot_seed"])):
        entry = tasks.setdefault(r["task"], {
            "benchmark": r["benchmark"], "language": r["language"], "kind": r["kind"], "answers": r["answers"],
            "regime": r["regime"], "regime_version": r["regime_version"], "n_shot": r["n_shot"],
            "task_version": r["task_version"], "data_sha256": r["data_sha256"], "questions": r["n_questions"],
            "questions_in_split": r["n_questions_full"], "limited": r["n_questions"] < r["n_questions_full"],
            "seeds": {}})
        entry["seeds"][str(r["fewshot_seed"])] = {"results": files[r["results"]], "samples": files[Path(r["samples"])],
                                                  "eval_date": r["eval_date"]}
    return {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "partial": bool(reasons),
        "partial_reasons": reasons,
        "model": {"name": name or Path(first["model_path"]).name or first["model_path"],
                  "path": first["model_path"], "revision": first["model_revision"],
                  "parameters": config.get("model_num_parameters"), "dtype": config.get("model_dtype")},
        "regimes": sorted({regime_label(r["regime"], r["regime_version"]) for r in runs}),
        "seeds": sorted({r["fewshot_seed"] for r in runs}),
        "versions": {"lm_eval": sorted({r["lm_eval_version"] for r in runs}),
                     "transformers": sorted({r["transformers_version"] for r in runs}),
                     "medeval": _medeval_version(), "eval_commits": sorted({r["project_commit"] for r in runs}),
                     "submit_commit": project_commit()},
        "tasks": tasks,
    }


def clean_scores(paths, report) -> list[dict]:
    """Per task, seed and metric: the score without the questions the report flags (results.clean)."""
    from results.clean import clean_records, with_clean_scores
    from results.load import load_table

    return clean_records(with_clean_scores(load_table(paths), report))


def write_manifest(folder: Path) -> dict:
    """sha256 of every file under `folder` but the manifest itself, written as MANIFEST."""
    files = {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*"))
             if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST}
    manifest = {"schema": SCHEMA, "algorithm": "sha256", "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def check_output(output: Path) -> None:
    if output.exists():
        raise UsageError(f"-o {output}: already exists; choose another path or remove it")
    if not output.parent.is_dir():
        raise UsageError(f"-o {output}: the folder {output.parent} does not exist")


def make_bundle(paths, output, partial: bool = False, name: str | None = None, contamination=None) -> dict:
    """Write the bundle of the runs under `paths` to `output` (a folder, or a .tar.gz archive) and return its
    submission.json. Refused runs raise UsageError before anything is written; the bundle appears whole
    (built in a temporary folder beside it and renamed) or not at all. With a contamination report
    (`medeval contamination`), the report travels in the bundle and each task records its clean-subset
    scores (results.clean) beside the full ones."""
    output = Path(output)
    check_output(output)
    runs = task_runs(paths)
    _check_usable(runs)
    reasons = partial_reasons(runs)
    if reasons and not partial:
        raise UsageError("refused (--partial accepts it and marks the bundle partial): " + "; ".join(reasons.values()))
    clean = clean_scores(paths, contamination) if contamination else None
    with tempfile.TemporaryDirectory(prefix=f".{output.name}.", dir=output.parent) as tmp:
        folder = Path(tmp) / "bundle"
        files: dict[Path, str] = {}
        by_file = defaultdict(list)
        for r in runs:
            by_file[r["results"]].append(r)
        ordered = sorted(by_file, key=lambda p: (min(r["fewshot_seed"] for r in by_file[p]), str(p)))
        for index, results in enumerate(ordered, 1):
            target = folder / RUNS / f"{index:02d}"
            target.mkdir(parents=True)
            for source in [results] + [Path(r["samples"]) for r in by_file[results]]:
                shutil.copyfile(source, target / source.name)
                files[source] = (target / source.name).relative_to(folder).as_posix()
        submission = describe(runs, files, reasons, name)
        if clean is not None:
            shutil.copyfile(contamination, folder / CONTAMINATION)
            submission["contamination"] = {"report": CONTAMINATION, "sha256": sha256_file(contamination)}
            for record in clean:
                scores = submission["tasks"][record["task"]].setdefault("clean", {})
                scores.setdefault(str(record["fewshot_seed"]), {})[record["metric"]] = {
                    "value": record["clean_value"], "questions": record["n_questions_clean"]}
        (folder / SUBMISSION).write_text(json.dumps(submission, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        write_manifest(folder)
        if output.name.endswith(ARCHIVE_SUFFIX):
            packed = Path(tmp) / "bundle.tar.gz"
            with tarfile.open(packed, "w:gz") as archive:
                archive.add(folder, arcname=output.name[: -len(ARCHIVE_SUFFIX)])
            os.replace(packed, output)
        else:
            os.replace(folder, output)
    return submission


@contextlib.contextmanager
def open_bundle(path):
    """The bundle's folder: the folder itself, or a .tar.gz unpacked into a temporary folder (members that would
    land outside it, links and devices refused by tarfile's data filter)."""
    path = Path(path)
    if path.is_dir():
        if not (path / SUBMISSION).is_file():
            raise UsageError(f"{path}: not a submission bundle (no {SUBMISSION}); make one with medeval submit")
        yield path
        return
    if not path.is_file() or not path.name.endswith(ARCHIVE_SUFFIX):
        raise UsageError(f"{path}: not a submission bundle (a folder or a {ARCHIVE_SUFFIX} made by medeval submit)")
    with tempfile.TemporaryDirectory(prefix="medeval-bundle-") as tmp:
        try:
            with tarfile.open(path, "r:gz") as archive:
                archive.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError) as err:
            raise UsageError(f"{path}: cannot unpack the bundle ({err})") from None
        found = [p.parent for p in Path(tmp).glob(f"*/{SUBMISSION}")] + [p.parent for p in Path(tmp).glob(SUBMISSION)]
        if len(found) != 1:
            raise UsageError(f"{path}: not a submission bundle (expected one {SUBMISSION} in the archive)")
        yield found[0]


def is_bundle(path) -> bool:
    path = Path(path)
    return (path / SUBMISSION).is_file() if path.is_dir() else path.name.endswith(ARCHIVE_SUFFIX)


def read_submission(folder: Path) -> dict:
    try:
        data = json.loads((Path(folder) / SUBMISSION).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UsageError(f"{Path(folder) / SUBMISSION}: unreadable ({err})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UsageError(f"{Path(folder) / SUBMISSION}: not a {SCHEMA} submission")
    return data


def manifest_problems(folder: Path) -> tuple[int, list[tuple[str, str]]]:
    """(files listed, [(file, problem)]) for every file that differs from the manifest, is missing, or is not
    listed in it."""
    folder = Path(folder)
    try:
        listed = dict(json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        return 0, [(MANIFEST, f"missing or unreadable ({err})")]
    present = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    problems = []
    for name, digest in sorted(listed.items()):
        if name not in present:
            problems.append((name, "listed in the manifest but missing"))
        elif sha256_file(present[name]) != digest:
            problems.append((name, "sha256 differs from the manifest (the file was changed)"))
    problems += [(name, "not listed in the manifest") for name in sorted(set(present) - set(listed) - {MANIFEST})]
    return len(listed), problems


def bundle_digest(folder: Path) -> str:
    """The identity of a bundle: the sha256 of its manifest (which pins every other file)."""
    return sha256_file(Path(folder) / MANIFEST)
