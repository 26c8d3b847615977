"""Regression check between two evaluations of the same tasks: BASE vs CANDIDATE, question by question.

Questions are paired by their id (from the samples), within each shared few-shot seed. Per task,
per language (macro over its tasks) and overall: the accuracy delta, a seeded paired-bootstrap
confidence interval (questions resampled; with several seeds a question keeps all its seeds
together) and an exact McNemar p-value. With several seeds McNemar counts one pair per
(question, seed), treating them as independent, which overstates significance: that is why a
regression needs BOTH tests to agree, and a drop larger than the threshold.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from medtasks import spec
from medtasks.tasks.generate import catalogue
from results.gate import Gate, is_regression
from results.leaderboard import LIMITED_MARK, UNIT
from results.load import ResultsError
from results.render import DECIMALS, number
from results.samples import samples_of
from results.stats import discordant, mcnemar_exact, stratified_bootstrap


@dataclass
class Row:
    scope: str  # "task", "language" or "overall"
    name: str
    language: str
    questions: int  # paired questions (summed over the tasks of a language or overall row)
    questions_full: int  # questions in the test split(s): more than `questions` after lm_eval --limit
    base: float
    candidate: float
    delta: float
    low: float
    high: float
    p_value: float
    regression: bool = False


@dataclass
class Comparison:
    base_model: str
    candidate_model: str
    regime: str
    seeds: list[int]
    gate: Gate
    rows: list[Row]
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.regression]


def _one_model(table, side: str) -> str:
    models = table[["model", "model_revision"]].drop_duplicates()
    if len(models) != 1:
        listed = ", ".join(f"{m} ({r})" for m, r in models.itertuples(index=False))
        raise ResultsError(f"{side} holds runs of several models ({listed}); point it at one model's folder")
    return models.iloc[0]["model"]


def _task_facts(table, side: str) -> dict[str, tuple]:
    """{task: (task_version, regime, regime_version, data_sha256)}; one of each per task, else refused."""
    facts = table[["task", "task_version", "regime", "regime_version", "data_sha256"]].drop_duplicates()
    several = facts[facts["task"].duplicated(keep=False)]
    if len(several):
        task = several.iloc[0]["task"]
        raise ResultsError(f"{side} holds {task} in several regimes, versions or data files; point it at one run")
    return {r[0]: tuple(r[1:]) for r in facts.itertuples(index=False)}


def _check_same(base: dict, cand: dict, tasks: list[str]) -> None:
    """Refuse tasks run in another regime, regime version, task version, or on other data (a task name means
    one dataset: the data checksum of the samples must agree)."""
    for task in tasks:
        (_, br, brv, bd), (_, cr, crv, cd) = base[task], cand[task]
        if bd != cd:
            raise ResultsError(f"{task} was run on different data (BASE {bd[:12]}, CANDIDATE {cd[:12]}); a task name "
                               "means one dataset: evaluate both on the same store")
        if (br, brv) != (cr, crv):
            raise ResultsError(f"{task}: BASE ran regime {br} v{brv}, CANDIDATE {cr} v{crv}: not comparable")
    clash = [f"{t} (v{base[t][0]} vs v{cand[t][0]})" for t in tasks if base[t][0] != cand[t][0]]
    if clash:
        raise ResultsError(f"task versions differ between BASE and CANDIDATE: {', '.join(clash)}")


def group_of(benchmark: str, language: str, members: dict | None = None) -> str | None:
    """The group whose macro average a language row shows: the suite's (medeval_<lang>), or the native
    single-answer exams' of that language (medeval_native_<lang>), as the task YAMLs define them
    (`members`: medtasks.tasks.generate.catalogue()); the others (TruthfulQA, HEAD-QA's English
    translation, multi-answer exams) have task rows only."""
    members = catalogue() if members is None else members
    for group in (spec.language_group(language), spec.native_group(language)):
        if (benchmark, language) in members.get(group, ()):
            return group
    return None


def _paired(base_runs: dict, cand_runs: dict, task: str, seeds: list[int], metric: str):
    """(base, candidate) arrays of shape (questions, seeds) over the ids both sides answered."""
    base = {s: base_runs[s] for s in seeds}
    cand = {s: cand_runs[s] for s in seeds}
    shared = set.intersection(*[set(x.ids) for x in list(base.values()) + list(cand.values())])
    if not shared:
        raise ResultsError(f"{task}: BASE and CANDIDATE share no question ids; were they run on the same data?")
    ids = sorted(shared)

    def matrix(runs):
        cols = []
        for s in seeds:
            index = {qid: i for i, qid in enumerate(runs[s].ids)}
            values = runs[s].metric(metric)
            cols.append(values[[index[q] for q in ids]])
        return np.stack(cols, axis=1)

    total = max(len(x.ids) for x in list(base.values()) + list(cand.values()))
    return matrix(base), matrix(cand), total


def _row(scope, name, language, pairs, gate: Gate, key: str, full: int) -> Row:
    delta, low, high = stratified_bootstrap([(b.mean(axis=1), c.mean(axis=1)) for b, c in pairs],
                                            gate.n_boot, gate.seed, 1.0 - gate.alpha, key)
    counts = [discordant(b.ravel(), c.ravel()) for b, c in pairs]
    p = mcnemar_exact(sum(b for b, _ in counts), sum(c for _, c in counts))
    base = float(np.mean([b.mean() for b, _ in pairs]))
    cand = float(np.mean([c.mean() for _, c in pairs]))
    row = Row(scope, name, language, sum(b.shape[0] for b, _ in pairs), full, base, cand, delta, low, high, p)
    row.regression = is_regression(row, gate)
    return row


def compare_tables(base_table, cand_table, gate: Gate = Gate(), progress: bool = False) -> Comparison:
    base_model, cand_model = _one_model(base_table, "BASE"), _one_model(cand_table, "CANDIDATE")
    facts = {"base": _task_facts(base_table, "BASE"), "cand": _task_facts(cand_table, "CANDIDATE")}
    tasks = sorted(set(facts["base"]) & set(facts["cand"]))
    if not tasks:
        raise ResultsError(f"BASE ({', '.join(sorted(facts['base']))}) and CANDIDATE "
                           f"({', '.join(sorted(facts['cand']))}) share no task")
    _check_same(facts["base"], facts["cand"], tasks)
    notes = []
    only = sorted(set(facts["base"]) ^ set(facts["cand"]))
    if only:
        notes.append(f"not compared (on one side only): {', '.join(only)}")
    answers = dict(base_table[["task", "answers"]].drop_duplicates().itertuples(index=False))
    scored = [t for t in tasks if gate.metric in spec.metrics_for(answers[t])]
    if len(scored) < len(tasks):
        notes.append(f"not compared (no per-question {gate.metric}: multi-answer exams): "
                     f"{', '.join(t for t in tasks if t not in scored)}")
    if not scored:
        raise ResultsError(f"BASE and CANDIDATE share no task scored with {gate.metric}")
    tasks = scored
    runs = {}
    for side, table in (("base", base_table), ("cand", cand_table)):
        by_task: dict = {}
        for (_m, task, _v, _r, seed), samples in samples_of(table[table["task"].isin(tasks)], progress).items():
            by_task.setdefault(task, {})[seed] = samples
        runs[side] = by_task
    pairs, all_seeds = {}, set()
    for task in tasks:
        seeds = sorted(set(runs["base"][task]) & set(runs["cand"][task]))
        if not seeds:
            raise ResultsError(f"{task}: BASE ran few-shot seeds {sorted(runs['base'][task])}, CANDIDATE "
                               f"{sorted(runs['cand'][task])}: no shared seed to pair on")
        base, cand, total = _paired(runs["base"][task], runs["cand"][task], task, seeds, gate.metric)
        if base.shape[0] < total:
            notes.append(f"{task}: {base.shape[0]} of {total} questions answered on both sides are compared")
        pairs[task] = (base, cand)
        all_seeds.update(seeds)
    full = {t: int(n) for t, n in base_table.groupby("task")["n_questions_full"].max().items()}
    where = dict(zip(base_table["task"], zip(base_table["benchmark"], base_table["language"])))
    rows, members = [], catalogue()
    for lang in spec.LANGUAGES:
        here = [t for t in tasks if where[t][1] == lang]
        groups = {t: group_of(*where[t], members) for t in here}
        for name in (spec.language_group(lang), spec.native_group(lang), None):  # suite, native exams, the rest
            group = [t for t in here if groups[t] == name]
            rows += [_row("task", t, lang, [pairs[t]], gate, t, full[t]) for t in group]
            if name and len(group) > 1:
                rows.append(_row("language", name, lang, [pairs[t] for t in group], gate, name,
                                 sum(full[t] for t in group)))
    if len({where[t][1] for t in tasks}) > 1:
        rows.append(_row("overall", "all tasks", "all", list(pairs.values()), gate, "all", sum(full[t] for t in tasks)))
    regimes = sorted({f"{facts['base'][t][1]} v{facts['base'][t][2]}" for t in tasks})
    notes.append("data (sha256 of the store file, first 12): "
                 + ", ".join(f"{t} {facts['base'][t][3][:12]}" for t in tasks))
    return Comparison(base_model, cand_model, ", ".join(regimes), sorted(all_seeds), gate, rows, notes)


def _signed(x: float) -> str:
    return f"{x:+.{DECIMALS}f}"


def to_markdown(result: Comparison) -> str:
    g = result.gate
    level = round((1 - g.alpha) * 100)
    verdict = (f"**REGRESSION** in {len(result.regressions)} of {len(result.rows)} rows"
               if result.regressions else "**no significant regression**")
    lines = [f"### medeval compare: `{result.candidate_model}` vs `{result.base_model}`", "",
             f"Verdict: {verdict} (a drop counts when it exceeds {g.threshold}, "
             f"McNemar p < {g.alpha} and the {level}% interval is below 0).", "",
             f"| task | lang | questions | base | candidate | delta | {level}% CI | McNemar p | |",
             "|---|---|---:|---:|---:|---:|---|---:|---|"]
    for r in result.rows:
        name = r.name if r.scope == "task" else f"**{r.name}**"
        flag = "REGRESSION" if r.regression else ("better" if r.low > 0 and r.p_value < g.alpha else "")
        questions = f"{r.questions} of {r.questions_full}{LIMITED_MARK}" if r.questions < r.questions_full else str(r.questions)
        lines.append(f"| {name} | {r.language} | {questions} | {number(r.base)} | {number(r.candidate)} | "
                     f"{_signed(r.delta)} | [{_signed(r.low)}, {_signed(r.high)}] | {_p(r.p_value)} | {flag} |")
    lines += ["", f"_metric {g.metric} ({UNIT}); regime {result.regime}; few-shot seeds "
              f"{', '.join(map(str, result.seeds))}; paired bootstrap {g.n_boot} resamples, seed {g.seed}; "
              "language rows are macro averages._"]
    if any(r.questions < r.questions_full for r in result.rows):
        lines.append(f"_{LIMITED_MARK} limited run (lm_eval --limit): compared on a subset of the test questions; "
                     "not comparable with full-split results._")
    lines += [f"_{n}_" for n in result.notes]
    return "\n".join(lines) + "\n"


def _p(p: float) -> str:
    return "<1e-4" if p < 1e-4 else f"{p:.4f}" if not math.isnan(p) else "–"


def to_json(result: Comparison) -> dict:
    return {"base": result.base_model, "candidate": result.candidate_model, "regime": result.regime,
            "seeds": result.seeds, "gate": vars(result.gate), "regression": bool(result.regressions),
            "rows": [vars(r) for r in result.rows], "notes": result.notes}
