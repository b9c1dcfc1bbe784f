"""Figures of the ``retina`` analysis (see :mod:`engine.views`).

* ``validation`` (Training pane): the trained CfC's predicted firing rate against
  the recorded one for a chosen cell on the validation split (``val_predictions.npz``,
  written by the train step).
* ``traces`` (Results pane): the seed's figure, one model's prediction with the
  target behind it for a chosen cell on the test split (``predictions.npz``,
  written by the evaluate step).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.views import Figure, Panel, Series, clamp, need, pick

MODEL_KEYS = {"CfC": "CfC", "CfC-pruned": "CfC_pruned", "SINDy": "SINDy", "SINDy-pruned": "SINDy_pruned"}
WINDOW = 600  # frames shown (6 s at 10 ms): long enough for several bursts, short enough to read


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def _trace_panel(target: np.ndarray, pred: np.ndarray, label: str, t0: int = 0) -> Panel:
    n = min(WINDOW, len(target))
    x = np.arange(t0, t0 + n) * 0.01
    return Panel(label, [Series("target", x, target[:n], role="background"),
                         Series(label, x, pred[:n])], xlabel="s", ylabel="spikes / 10 ms")


def validation(workdir: Path, index: int, option: str | None) -> Figure:
    data = np.load(need(workdir / "val_predictions.npz", "train"))
    target, pred = data["target"], data["pred"]
    cell = clamp(index, target.shape[1])
    c = _corr(pred[:, cell], target[:, cell])
    every = np.nanmean([_corr(pred[:, i], target[:, i]) for i in range(target.shape[1])])
    caption = f"cell {cell}: corr {c:.3f} · all cells {every:.3f}"
    if "expected" in data.files:  # synthetic data: how close to the best possible
        ceiling = _corr(data["expected"][:, cell], target[:, cell])
        caption += f" · ceiling {ceiling:.3f}"
    return Figure(f"Validation: predicted vs recorded, cell {cell}",
                  [_trace_panel(target[:, cell], pred[:, cell], "CfC", int(data["start"]))],
                  n_index=target.shape[1], index=cell, caption=caption)


def traces(workdir: Path, index: int, option: str | None) -> Figure:
    data = np.load(need(workdir / "predictions.npz", "evaluate"))
    target = data["target"]
    models = [m for m, k in MODEL_KEYS.items() if k in data.files]
    model = pick(models, option)
    pred = data[MODEL_KEYS[model]]
    cell = clamp(index, target.shape[1])
    p, y = pred[:, cell], target[:, cell]
    ok = np.isfinite(p)
    mae = float(np.mean(np.abs(p[ok] - y[ok]))) if ok.any() else float("nan")
    caption = f"{model}, cell {cell}: MAE {mae:.4f} · corr {_corr(p, y):.3f}"
    if not ok.all():
        caption += f" · {1 - ok.mean():.0%} diverged (gaps)"
    return Figure(f"{model} vs target, cell {cell} (test split)", [_trace_panel(y, p, model)],
                  n_index=target.shape[1], index=cell, options=models, option=model, caption=caption)


def pruning(workdir: Path, index: int, option: str | None) -> Figure:
    """Test correlation against sparsity (without and with fine-tuning), and the number of
    SINDy terms each pruned model's states gave (``prune_sweep.json``, the prune_sweep step)."""
    import json

    rows = json.loads(need(workdir / "prune_sweep.json", "prune_sweep").read_text())["rows"]
    panels = []
    for key, label in (("test_corr", "test corr"), ("sindy_terms", "SINDy terms")):
        series = []
        for ft, name in ((False, "pruned"), (True, "pruned + fine-tuned")):
            pts = sorted((r["sparsity"], r[key]) for r in rows
                         if r[key] is not None and (r["amount"] == 0 or bool(r["finetune"]) == ft))
            if len(pts) > 1 or (pts and key == "test_corr"):
                series.append(Series(name, np.array([p[0] for p in pts]), np.array([p[1] for p in pts], float),
                                     role="line"))
        panels.append(Panel(label, series, xlabel="share of CfC weights at zero", ylabel=label))
    dense = next((r for r in rows if r["amount"] == 0), None)
    caption = f"dense CfC corr {dense['test_corr']:.3f}" if dense else ""
    worst = min(rows, key=lambda r: r["test_corr"])
    caption += f" · lowest {worst['test_corr']:.3f} at {worst['sparsity']:.0%} ({worst['model']})"
    return Figure("Pruning sweep: error and equations vs sparsity", panels, caption=caption)
