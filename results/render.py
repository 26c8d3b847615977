"""A leaderboard Grid as Markdown, CSV or LaTeX (a registry of formats). Pure string functions.

Markdown and LaTeX show x100 with one decimal and bold the best; CSV keeps raw fractions with
std, seed count and a best flag per column, for machines.
"""
from __future__ import annotations

import csv
import io
import math

from results.leaderboard import Cell, Grid

SCALE, DECIMALS = 100.0, 1


def _number(value: float) -> str:
    return f"{value * SCALE:.{DECIMALS}f}"


def _text(cell: Cell | None, show_std: bool, bold: tuple[str, str], pm: str) -> str:
    if cell is None or math.isnan(cell.mean):
        return "–"
    value = _number(cell.mean)
    if cell.best:
        value = f"{bold[0]}{value}{bold[1]}"
    if show_std and cell.seeds > 1:
        value += f"{pm}{_number(cell.std)}"
    return value


def to_markdown(grid: Grid) -> str:
    head = "| model | " + " | ".join(grid.columns) + " |" if grid.best_along == "column" \
        else "| task | " + " | ".join(grid.columns) + " |"
    lines = [f"**{grid.title}**", "", head, "|---|" + "---:|" * len(grid.columns)]
    for label, cells in grid.rows:
        texts = [_text(c, grid.show_std, ("**", "**"), " ± ") for c in cells]
        lines.append(f"| {label} | " + " | ".join(texts) + " |")
    lines += [""] + [f"_{note}_  " for note in grid.notes]
    return "\n".join(lines).rstrip() + "\n"


def to_csv(grid: Grid) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["model" if grid.best_along == "column" else "task"]
    for col in grid.columns:
        header += [col, f"{col}_std", f"{col}_seeds", f"{col}_best"]
    writer.writerow(header)
    for label, cells in grid.rows:
        line = [label]
        for c in cells:
            if c is None or math.isnan(c.mean):
                line += ["", "", "", ""]
            else:
                std = "" if math.isnan(c.std) else repr(c.std)
                line += [repr(c.mean), std, c.seeds, int(c.best)]
        writer.writerow(line)
    return out.getvalue()


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "±": r"$\pm$", "–": "--", "·": r"$\cdot$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(grid: Grid) -> str:
    """A booktabs table (needs \\usepackage{booktabs} in the document)."""
    first = "model" if grid.best_along == "column" else "task"
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             r"\begin{tabular}{l" + "r" * len(grid.columns) + "}", r"\toprule",
             " & ".join([first] + [latex_escape(c) for c in grid.columns]) + r" \\", r"\midrule"]
    for label, cells in grid.rows:
        texts = [_text(c, grid.show_std, (r"\textbf{", "}"), r"\,$\pm$\,").replace("–", "--") for c in cells]
        if label in grid.reference_rows:
            lines.append(r"\midrule")
        lines.append(" & ".join([latex_escape(label)] + texts) + r" \\")
    caption = latex_escape(grid.title + ". " + " ".join(n.rstrip(".") + "." for n in grid.notes))
    lines += [r"\bottomrule", r"\end{tabular}", r"\caption{" + caption + "}", r"\end{table}"]
    return "\n".join(lines) + "\n"


FORMATS = {"markdown": to_markdown, "csv": to_csv, "latex": to_latex}
EXTENSIONS = {"markdown": ".md", "csv": ".csv", "latex": ".tex"}


def render(grid: Grid, fmt: str) -> str:
    try:
        return FORMATS[fmt](grid)
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}") from None
