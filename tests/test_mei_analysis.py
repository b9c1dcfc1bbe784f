"""The mei analysis end to end on a tiny synthetic population (steps, files, results)."""

import json

import numpy as np
import pytest

from engine.analyses import StepContext
from engine.analyses.mei import ANALYSIS


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    ctx = StepContext(workdir=tmp_path_factory.mktemp("mei"))
    p = ANALYSIS.defaults()
    p.update(n_neurons=8, n_images=40, repeats=5, size=16, train_steps=60, hidden_channels=4, layers=1,
             input_kernel=7, mei_steps=20, mei_starts=1, sort="pc1", min_val_corr=0.0, ensemble=1)
    out = {}
    for step in ANALYSIS.steps:
        out[step.name] = step.load()(ctx, dict(p))
    return ctx, out


def test_steps_write_everything(run):
    ctx, out = run
    assert out["reliability"]["n_images"] == 40 and out["reliability"]["repeats"] == 5
    assert out["reliability"]["sort_method"] == "pc1"
    assert out["train"]["n_neurons"] == out["reliability"]["n_kept"] > 0
    assert out["train"]["n_test_images"] == 6 and -1 <= out["train"]["median_test_corr"] <= 1
    res = out["mei"]
    assert set(res) >= {"n_neurons", "median_val_corr", "mei_activation_ratio"}
    json.dumps(res)
    # MEIs excite the model more than any natural image
    assert res["mei_activation_ratio_min"] > 1.0
    with np.load(ctx.workdir / "meis.npz") as f:
        assert f["meis"].shape == (res["n_neurons"], 16, 16) and f["gabors"].shape == f["meis"].shape
        assert f["top3_mean"].shape == f["meis"].shape
    for name in ("meis", "gabors", "top3", "true_rfs"):
        assert (ctx.workdir / "png" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert "mei_rf_corr_median" in res  # ground truth found beside the generated tables
    truth = out["truth"]  # the true neurons at the MEI's contrast: ratios to the true optimum
    assert 0 < truth["mei_vs_optimum_min"] <= truth["mei_vs_optimum_median"] <= 1.0 + 1e-9
    assert 0 < truth["best_natural_vs_optimum_median"] <= 1.0 + 1e-9 and truth["model_vs_true_median"] > 0


def test_missing_inputs_are_clear(tmp_path):
    ctx = StepContext(workdir=tmp_path)
    p = ANALYSIS.defaults()
    with pytest.raises(FileNotFoundError, match="generate"):
        ANALYSIS.step("reliability").load()(ctx, p)
    with pytest.raises(FileNotFoundError, match="reliability"):
        ANALYSIS.step("train").load()(ctx, p)


def test_views_show_each_neurons_mei_and_the_correlation_matrix(run):
    from engine.views import load_figure

    ctx, out = run
    views = {v.name: v for v in ANALYSIS.views}
    n = out["mei"]["n_neurons"]
    fig = load_figure(views["mei"], ctx.workdir, index=n + 5)  # clamped to the last neuron
    assert fig.index == n - 1 and fig.n_index == n
    assert [p.label for p in fig.panels] == ["MEI", "Gabor fit", "top-3 images", "true RF"]
    with np.load(ctx.workdir / "meis.npz") as f:
        np.testing.assert_array_equal(fig.panels[0].image, f["meis"][n - 1])
        ratio = f["activation"][n - 1] / f["best_image_activation"][n - 1]
    assert f"({ratio:.2f}x)" in fig.caption and "|corr| with RF" in fig.caption
    corr = load_figure(views["correlations"], ctx.workdir)
    c = corr.panels[0].image
    assert c.shape[0] == c.shape[1] and np.allclose(np.diag(c), 1.0)
