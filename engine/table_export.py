"""Metric tables as CSV, Markdown and LaTeX, with no optional dependency
(pandas' to_markdown needs tabulate and to_latex needs jinja2)."""

from __future__ import annotations

import math
from typing import Any


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return "diverged" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def _rows(frame) -> tuple[list[str], list[list[str]]]:
    header = ["model", *map(str, frame.columns)]
    return header, [[str(idx), *map(_cell, row)] for idx, row in zip(frame.index, frame.itertuples(index=False))]


def to_markdown(frame) -> str:
    header, rows = _rows(frame)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_latex(frame) -> str:
    def esc(s: str) -> str:
        for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
            s = s.replace(a, b)
        return s

    header, rows = _rows(frame)
    lines = [r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\hline",
             " & ".join(map(esc, header)) + r" \\", r"\hline"]
    lines += [" & ".join(map(esc, r)) + r" \\" for r in rows]
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
