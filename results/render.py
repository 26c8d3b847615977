"""A leaderboard Grid as Markdown, CSV or LaTeX (a registry of formats). Pure string functions.

Every format shows the values as lm-eval reports them (fractions 0..1): Markdown and LaTeX with
lm-eval's four decimals, the best in bold and LIMITED_MARK on cells scored on a subset of the
questions (the grid's notes explain it); CSV keeps the raw values with std, seed count, best flag,
question count and a `limited` flag per column, for machines.
"""
from __future__ import annotations

import csv
import io
import math

from results.leaderboard import LIMITED_MARK, Cell, Grid
from results.load import ResultsError

DECIMALS = 4  # as lm-eval's score table prints them, so the numbers can be matched


def number(value: float) -> str:
    return f"{value:.{DECIMALS}f}"


def _text(cell: Cell | None, show_std: bool, bold: tuple[str, str], pm: str, mark: str) -> str:
    if cell is None or math.isnan(cell.mean):
        return "–"
    value = number(cell.mean)
    if cell.best:
        value = f"{bold[0]}{value}{bold[1]}"
    if show_std and cell.seeds > 1:
        value += f"{pm}{number(cell.std)}"
    return value + (mark if cell.limited else "")


def to_markdown(grid: Grid) -> str:
    head = "| model | " + " | ".join(grid.columns) + " |" if grid.best_along == "column" \
        else "| task | " + " | ".join(grid.columns) + " |"
    lines = [f"**{grid.title}**", "", head, "|---|" + "---:|" * len(grid.columns)]
    for label, cells in grid.rows:
        texts = [_text(c, grid.show_std, ("**", "**"), " ± ", LIMITED_MARK) for c in cells]
        lines.append(f"| {label} | " + " | ".join(texts) + " |")
    lines += [""] + [f"_{note}_  " for note in grid.notes]
    return "\n".join(lines).rstrip() + "\n"


def to_csv(grid: Grid) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["model" if grid.best_along == "column" else "task"]
    for col in grid.columns:
        header += [col] + [f"{col}_{key}" for key in ("std", "seeds", "best", "questions", "questions_full", "limited")]
    writer.writerow(header)
    for label, cells in grid.rows:
        line = [label]
        for c in cells:
            if c is None or math.isnan(c.mean):
                line += [""] * 7
            else:
                std = "" if math.isnan(c.std) else repr(c.std)
                counts = [c.questions, c.questions_full] if c.questions_full else ["", ""]
                line += [repr(c.mean), std, c.seeds, int(c.best), *counts, int(c.limited)]
        writer.writerow(line)
    return out.getvalue()


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "±": r"$\pm$", "–": "--", "−": r"$-$", "·": r"$\cdot$",
                  LIMITED_MARK: r"\textsuperscript{\dag}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(grid: Grid) -> str:
    """A booktabs table (needs \\usepackage{booktabs} in the document)."""
    first = "model" if grid.best_along == "column" else "task"
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             r"\begin{tabular}{l" + "r" * len(grid.columns) + "}", r"\toprule",
             " & ".join([first] + [latex_escape(c) for c in grid.columns]) + r" \\", r"\midrule"]
    for label, cells in grid.rows:
        texts = [_text(c, grid.show_std, (r"\textbf{", "}"), r"\,$\pm$\,", _LATEX_SPECIAL[LIMITED_MARK])
                 .replace("–", "--") for c in cells]
        if label in grid.reference_rows:
            lines.append(r"\midrule")
        lines.append(" & ".join([latex_escape(label)] + texts) + r" \\")
    caption = latex_escape(grid.title + ". " + " ".join(n.rstrip(".") + "." for n in grid.notes))
    lines += [r"\bottomrule", r"\end{tabular}", r"\caption{" + caption + "}", r"\end{table}"]
    return "\n".join(lines) + "\n"


FORMATS = {"markdown": to_markdown, "csv": to_csv, "latex": to_latex}
EXTENSIONS = {"markdown": ".md", "csv": ".csv", "latex": ".tex"}


def get_format(fmt: str):
    try:
        return FORMATS[fmt]
    except KeyError:
        raise ResultsError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}") from None


def render(grid: Grid | list[Grid], fmt: str) -> str:
    """One grid, or several in order (the native view), each as its own table, separated by a blank line."""
    write = get_format(fmt)
    return "\n".join(write(g) for g in (grid if isinstance(grid, list) else [grid]))
