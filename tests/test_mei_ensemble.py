"""mei with ensemble=2: the MEI climbs the mean of two CNNs, and the truth step judges that mean."""

import numpy as np
import pytest
import torch

from engine.analyses import StepContext
from engine.analyses.mei import ANALYSIS
from engine.analyses.mei.ensemble import Ensemble, load_members
from engine.analyses.mei.truth import true_response
from engine.data.allen import SyntheticV1Config
from engine.train.model_file import load_model


class _Tables:
    """Stands in for the session: keeps the tables a step saves."""

    def __init__(self):
        self.tables = {}

    def save_table(self, name, table, **where):
        self.tables[name] = table


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tables = _Tables()
    ctx = StepContext(workdir=tmp_path_factory.mktemp("mei_ens"), session=tables)
    p = ANALYSIS.defaults()
    p.update(n_neurons=6, n_images=40, repeats=5, size=16, train_steps=40, hidden_channels=4, layers=1,
             input_kernel=7, mei_steps=15, mei_starts=1, sort="pc1", min_val_corr=0.0, ensemble=2)
    out = {step.name: step.load()(ctx, dict(p)) for step in ANALYSIS.steps}
    return ctx, out, tables.tables


def test_two_members_are_trained_and_saved(run):
    ctx, out, _ = run
    assert out["train"]["n_models"] == 2
    model, info = load_members(ctx.workdir)
    assert isinstance(model, Ensemble) and len(model.members) == 2
    assert info["members"] == ["cnn_readout.pt", "cnn_readout_1.pt"] and len(info["test_images"]) == 6
    a, b = (load_model(ctx.workdir / name)[0] for name in info["members"])
    x = torch.rand(3, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(a(x), b(x))  # different seeds, different models
        torch.testing.assert_close(model(x), (a(x) + b(x)) / 2)


def test_the_mei_objective_is_the_members_mean_and_truth_reports_it(run):
    ctx, out, tables = run
    with np.load(ctx.workdir / "meis.npz") as f:
        meis, activation, units = f["meis"], f["activation"], f["unit_ids"]
    _, info = load_members(ctx.workdir)
    members = [load_model(ctx.workdir / name)[0] for name in info["members"]]
    with torch.no_grad():
        per_member = np.stack([m(torch.as_tensor(meis)).numpy() for m in members])  # (2, n MEIs, n neurons)
    n = len(meis)
    by_hand = (per_member[0, np.arange(n), np.arange(n)] + per_member[1, np.arange(n), np.arange(n)]) / 2
    np.testing.assert_allclose(activation, by_hand, rtol=1e-5)
    # the truth step: model_vs_true is that mean over the generator neuron's response to the MEI
    t = tables["mei truth"]
    with np.load(ctx.workdir / "allen" / "ground_truth.npz") as f:
        g = {k: f[k] for k in f.files}
    ids = list(g["unit_ids"])
    true = np.array([true_response(meis[i], g["rfs"][ids.index(u)], float(g["gabor_gain"][ids.index(u)]),
                                   float(g["drive_scale"][ids.index(u)]), SyntheticV1Config())[0]
                     for i, u in enumerate(units)])
    np.testing.assert_allclose(t.loc[units, "model_vs_true"].to_numpy(), by_hand / true, rtol=1e-5)
    assert out["truth"]["model_vs_true_median"] == pytest.approx(float(np.median(by_hand / true)), rel=1e-5)


def test_a_member_list_naming_other_files_is_refused(tmp_path):
    """The member names come from the file: one that points elsewhere is not followed."""
    from engine.analyses.mei.ensemble import MODEL, load_members
    from engine.errors import TrainingError
    from engine.models.cnn_readout import CnnReadout, CnnReadoutConfig
    from engine.train import save_model

    model = CnnReadout(CnnReadoutConfig(n_neurons=2, height=16, width=16, layers=1, hidden_channels=2))
    save_model(model, tmp_path / MODEL, extra={"members": [MODEL, "../elsewhere.pt"]})
    with pytest.raises(TrainingError, match="member list is not the ensemble's own files"):
        load_members(tmp_path)
