"""Allen natural-scene tables: generator, loader, counting, NWB reader, bad input."""

import numpy as np
import pandas as pd
import pytest

from engine.data import allen
from engine.data.errors import DataError
from engine.metrics import oracle_correlation

CFG = allen.SyntheticV1Config(seed=1, n_neurons=40, n_images=118, repeats=10, size=16, noise=0.3)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("allen")
    allen.generate(out, CFG)
    return out


def test_tables_roundtrip_and_counts(folder):
    t = allen.load_tables(folder)
    assert len(t.presentations) == 118 * 10 and len(t.units) == 40
    assert t.images.shape == (118, 16, 16) and 0 <= t.images.min() and t.images.max() <= 1
    counts = allen.spike_counts(t)
    # every generated spike lies inside its presentation's 0.25 s window
    assert counts.to_numpy().sum() == len(t.spikes)
    trials, ids = allen.trial_responses(counts, t.presentations["frame"])
    assert trials.shape == (10, 118, 40) and list(ids) == list(range(118))
    # a half window counts about half the spikes (uniform spike times)
    half = allen.spike_counts(t, (0.0, 0.125)).to_numpy().sum()
    assert 0.45 < half / len(t.spikes) < 0.55
    mean = allen.mean_responses(counts, t.presentations["frame"])
    np.testing.assert_allclose(mean.to_numpy(), trials.mean(0), rtol=1e-6)


def test_oracle_matches_generator_noise(folder):
    """The measured oracle correlation matches the one the noise level implies."""
    t = allen.load_tables(folder)
    trials, _ = allen.trial_responses(allen.spike_counts(t), t.presentations["frame"])
    truth = np.load(folder / allen.TRUTH)
    measured = oracle_correlation(trials, per_cell=True)
    expected = truth["expected_oracle"]
    assert abs(measured.mean() - expected.mean()) < 0.03
    assert np.abs(measured - expected).mean() < 0.05
    # more noise -> lower oracle: the formula orders noise levels correctly
    rates = truth["rates"]
    assert allen.expected_oracle(rates, 1.0, 10).mean() < expected.mean() < allen.expected_oracle(rates, 0.0, 10).mean()


def test_plain_spike_table_and_nwb(folder, tmp_path):
    import h5py

    t = allen.load_tables(folder)
    # a plain (unit_id, spike_time) table in place of the presentationwise one
    plain = tmp_path / "plain"
    plain.mkdir()
    t.spikes.to_csv(plain / "spike_times.csv", index=False)
    t.presentations.reset_index().to_csv(plain / "stimulus_presentations.csv", index=False)
    t2 = allen.load_tables(plain)
    assert allen.spike_counts(t2).to_numpy().sum() == len(t.spikes)
    # the same session as an NWB-style HDF5 file
    nwb = tmp_path / "s.nwb"
    sp = t.spikes.sort_values(["unit_id", "spike_time"])
    ids, n = np.unique(sp["unit_id"], return_counts=True)
    with h5py.File(nwb, "w") as f:
        f["units/spike_times"] = sp["spike_time"].to_numpy()
        f["units/spike_times_index"] = np.cumsum(n)
        f["units/id"] = ids
        g = f.create_group("intervals/natural_scenes_presentations")
        for c in ("start_time", "stop_time", "frame"):
            g[c] = t.presentations[c].to_numpy()
        g["id"] = t.presentations.index.to_numpy()
    t3 = allen.read_nwb(nwb)
    np.testing.assert_array_equal(allen.spike_counts(t3).to_numpy(), allen.spike_counts(t).to_numpy())


def test_bad_input(tmp_path, folder):
    with pytest.raises(DataError, match="not a folder"):
        allen.load_tables(tmp_path / "nope")
    with pytest.raises(DataError, match="stimulus_presentations"):
        allen.load_tables(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    pd.DataFrame({"stimulus_presentation_id": [1], "start_time": [0.0], "stop_time": [0.25]}).to_csv(
        bad / "stimulus_presentations.csv", index=False)
    with pytest.raises(DataError, match="missing column"):
        allen.load_tables(bad)
    t = allen.load_tables(folder)
    with pytest.raises(ValueError, match="window"):
        allen.spike_counts(t, (0.2, 0.1))
    with pytest.raises(DataError, match="repeats"):
        allen.trial_responses(allen.spike_counts(t), t.presentations["frame"], repeats=11)
    with pytest.raises(DataError, match="NWB"):
        allen.read_nwb(folder / "units.csv")
    with pytest.raises(ValueError, match="noise"):
        allen.generate(tmp_path / "g", allen.SyntheticV1Config(noise=-1))
