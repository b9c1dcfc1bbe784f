"""A session report: one Markdown file with the jobs, every metric table, every set of
equations and PNG figures (metric curves drawn here, plus the PNGs the analyses wrote).

Headless like the rest of the engine: ``workbench report`` and the TUI's palette both
call :func:`write_report`.  Figures are grayscale PNGs from :mod:`engine.png` (no
matplotlib); each shows one metric of one job, so no colour legend is needed.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import write_text
from engine.session import Session
from engine.sindy.equation_set import EquationSet, EquationSetError, read_rows

MAX_CURVE_JOBS = 12  # metric figures for the newest jobs only: a 200-job session stays readable
FIG_W, FIG_H = 480, 200


@dataclass
class Report:
    path: Path
    tables: int = 0
    equation_sets: int = 0
    figures: list[Path] = field(default_factory=list)


def _stamp(ts: float | None) -> str:
    if not ts:
        return "-"
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(job) -> str:
    if not job.started:
        return "-"
    end = job.ended or job.heartbeat or job.started
    s = int(max(0.0, end - job.started))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else (f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")


def _md_escape(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in s).strip("_") or "x"


# -- figures ------------------------------------------------------------------------
def curve_image(x: np.ndarray, y: np.ndarray, width: int = FIG_W, height: int = FIG_H,
                log_y: bool | None = None) -> np.ndarray:
    """A line plot as a uint8 image (white ground, black line, grey frame).

    ``log_y=None`` picks a log axis when the values are positive and span over 20x
    (losses).  Non-finite values are skipped (a diverged run leaves a gap).
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"curve_image needs two 1-D arrays of one length, got {x.shape} and {y.shape}")
    img = np.full((height, width), 255, np.uint8)
    img[0, :] = img[-1, :] = img[:, 0] = img[:, -1] = 160
    ok = np.isfinite(x) & np.isfinite(y)
    if log_y is None:
        pos = y[ok]
        log_y = bool(len(pos) and (pos > 0).all() and pos.max() / pos.min() > 20)
    if log_y:
        ok &= y > 0
        y = np.where(ok, np.log10(np.where(y > 0, y, 1)), np.nan)
    if ok.sum() < 1:
        return img
    xs, ys = x[ok], y[ok]
    pad = 6

    def scale(v, lo, hi, n):
        return (v - lo) / (hi - lo) * (n - 1 - 2 * pad) + pad if hi > lo else np.full_like(v, n / 2)

    px = scale(xs, xs.min(), xs.max(), width)
    py = (height - 1) - scale(ys, ys.min(), ys.max(), height)
    # join consecutive points with dense samples along each segment (enough for a 1-px line)
    for i in range(len(px)):
        j = max(i - 1, 0)
        n = int(max(abs(px[i] - px[j]), abs(py[i] - py[j]))) + 2
        cx = np.linspace(px[j], px[i], n).round().astype(int)
        cy = np.linspace(py[j], py[i], n).round().astype(int)
        img[np.clip(cy, 0, height - 1), np.clip(cx, 0, width - 1)] = 0
    return img


def _metric_series(session: Session, job_id: str) -> dict[str, tuple[list[float], list[float]]]:
    out: dict[str, tuple[list[float], list[float]]] = {}
    for e in session.events(job_id, kinds=("metric",)):
        name, value = e.payload.get("name"), e.payload.get("value")
        if name is None or not isinstance(value, (int, float)):
            continue
        xs, ys = out.setdefault(str(name), ([], []))
        step = e.payload.get("step")  # None where a step records a metric outside a loop (retina)
        xs.append(float(step) if isinstance(step, (int, float)) and not isinstance(step, bool) else float(len(xs)))
        ys.append(float(value))
    return out


# -- equations ----------------------------------------------------------------------
def equation_lines(eqs: EquationSet, precision: int = 3) -> tuple[list[str], str | None]:
    """(text lines, LaTeX block or None) for one stored equation set."""
    from engine.sindy.export import to_latex

    try:
        model = eqs.model()
        return model.equations(precision), to_latex(model, precision=precision)
    except EquationSetError:  # the library can't be rebuilt: the plain coefficient table
        return eqs.equations(precision=precision), None  # maps and constants written as such


# -- the report ---------------------------------------------------------------------
def build_report(session: Session, out: Path, *, figures: bool = True) -> Report:
    """Write the Markdown report to ``out`` and its figures beside it; return what was written."""
    from engine import png
    from engine.table_export import to_markdown

    out = Path(out)
    fig_dir = out.parent / f"{out.stem}_figures"
    rep = Report(path=out)
    jobs = session.jobs()
    lines = [f"# Session report: {session.name}", "",
             f"Written {_stamp(_now())} from `{session.path}`.", ""]

    lines += ["## Jobs", ""]
    if not jobs:
        lines += ["No jobs.", ""]
    else:
        lines += ["| job | analysis | steps | state | device | started | took | error |",
                  "|---|---|---|---|---|---|---|---|"]
        for j in jobs:
            lines.append("| " + " | ".join(_md_escape(v) for v in (
                j.id, j.analysis, ", ".join(j.steps), j.state, j.device or "-", _stamp(j.started),
                _duration(j), j.error or "")) + " |")
        lines.append("")

    tables = session.tables()
    lines += ["## Tables", ""]
    if not tables:
        lines += ["No tables.", ""]
    for t in tables:
        lines += [f"### {t['name']}", "",
                  f"job `{t['job_id'] or '-'}`, {_stamp(t['created'])}; `diverged` marks a NaN.", "",
                  to_markdown(t["frame"]), ""]
        rep.tables += 1

    good, bad = read_rows(session.equations())
    lines += ["## Equations", ""]
    if not good and not bad:
        lines += ["No equations.", ""]
    lines += [f"*{_md_escape(b)}*" for b in bad] + ([""] if bad else [])
    for e, d in good:
        text, latex = equation_lines(d)
        facts = [f"job `{e['job_id'] or '-'}`", f"threshold {d.threshold:.4g}"]
        val_error = d.extra.get("val_error")
        if isinstance(val_error, (int, float)) and not isinstance(val_error, bool):
            facts.append(f"validation error {val_error:.4g}")
        facts.append(f"{d.n_terms} term{'s' * (d.n_terms != 1)}")
        lines += [f"### {e['name']}", "", ", ".join(facts) + ".", "", "```", *text, "```", ""]
        if latex:
            lines += ["$$", latex.strip(), "$$", ""]
        rep.equation_sets += 1

    lines += ["## Figures", ""]
    if figures:
        with_metrics = [j for j in jobs if _metric_series(session, j.id)][-MAX_CURVE_JOBS:]
        for j in with_metrics:
            for name, (xs, ys) in sorted(_metric_series(session, j.id).items()):
                if len(xs) < 2:
                    continue
                path = fig_dir / f"{_slug(j.id)}-{_slug(name)}.png"
                img = curve_image(np.array(xs), np.array(ys))
                png.write_gray(path, img)
                rep.figures.append(path)
                lines += [f"![{j.id} {name}]({os.path.relpath(path, out.parent)})", "",
                          f"*{name} of {j.id} ({j.analysis}) against step; "
                          f"last {ys[-1]:.4g}, best {_best(name, ys):.4g}.*", ""]
        # PNGs the analyses wrote themselves (MEIs, stimulus reconstructions)
        for path in sorted(session.artifacts.glob("**/*.png")):
            if fig_dir in path.parents:
                continue
            rep.figures.append(path)
            lines += [f"![{path.stem}]({os.path.relpath(path, out.parent)})", "",
                      f"*{path.relative_to(session.artifacts)}*", ""]
    if not rep.figures:
        lines += ["No figures.", ""]
    write_text(out, "\n".join(lines).rstrip() + "\n")
    return rep


def _best(name: str, ys: list[float]) -> float:
    finite = [y for y in ys if math.isfinite(y)]
    if not finite:
        return float("nan")
    higher = any(k in name.lower() for k in ("corr", "r2", "acc", "bps", "fev"))
    return max(finite) if higher else min(finite)


def _now() -> float:
    import time

    return time.time()


def default_path(session: Session) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return session.artifacts / "exports" / f"report-{stamp}.md"


def write_report(session: Session, out: Path | str | None = None, *, figures: bool = True) -> Report:
    """The one entry point: ``out`` defaults to ``artifacts/exports/report-<time>.md``."""
    out = Path(out).expanduser() if out else default_path(session)
    if out.suffix.lower() != ".md":
        out = out / f"report-{session.name}.md" if out.is_dir() else out.with_suffix(".md")
    out.parent.mkdir(parents=True, exist_ok=True)
    return build_report(session, out, figures=figures)
