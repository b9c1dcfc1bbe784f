"""Neural Latents Benchmark exchange: NLB-style NWB files in, nlb_tools-scored submissions out."""

from __future__ import annotations

import numpy as np
import pytest

pynwb = pytest.importorskip("pynwb")

from engine import metrics as M  # noqa: E402
from engine.data import nlb  # noqa: E402
from engine.data.errors import DataError  # noqa: E402
from engine.data.lds_gen import LDSConfig, simulate  # noqa: E402

N_TRAIN, N_VAL = 14, 6


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """The seed's LDS (small) as an NLB file: 10 of 30 neurons held out, 14 train and 6 val trials."""
    d = simulate(LDSConfig(seed=1, trials=N_TRAIN + N_VAL, neurons=30, steps=40, latents=3))
    heldout = np.zeros(30, bool)
    heldout[[0, 3, 6, 9, 12, 15, 18, 21, 24, 27]] = True
    path = nlb.write_nlb_nwb(tmp_path_factory.mktemp("nlb") / "lds_nlb.nwb", d.spikes, heldout,
                             ["train"] * N_TRAIN + ["val"] * N_VAL, behavior=d.latents[:, :, :2])
    return d, heldout, path


def test_read_gives_back_the_binned_spikes_and_behaviour(dataset):
    d, heldout, path = dataset
    x = nlb.read_nlb(path, behavior="hand_vel")
    s = d.spikes.transpose(1, 0, 2)  # (trials, bins, neurons)
    np.testing.assert_array_equal(x.train_heldin, s[:N_TRAIN][:, :, ~heldout])
    np.testing.assert_array_equal(x.train_heldout, s[:N_TRAIN][:, :, heldout])
    np.testing.assert_array_equal(x.eval_heldin, s[N_TRAIN:][:, :, ~heldout])
    np.testing.assert_array_equal(x.eval_heldout, s[N_TRAIN:][:, :, heldout])
    np.testing.assert_allclose(x.train_behavior, d.latents.transpose(1, 0, 2)[:N_TRAIN, :, :2])
    assert list(x.heldout_ids) == list(np.flatnonzero(heldout)) and x.window_ms == (0.0, 200.0)
    assert list(x.train_trials) == list(range(N_TRAIN)) and list(x.eval_trials) == list(range(N_TRAIN, 20))
    hi, ho = x.time_major("eval")
    assert hi.shape == (40, N_VAL, 20) and ho.shape == (40, N_VAL, 10)
    # 20 ms bins from 10 ms into each trial: sums of the 5 ms counts
    y = nlb.read_nlb(path, bin_ms=20, window_ms=(10, 190))
    assert y.n_bins == 9
    want = s[:N_TRAIN, 2:38][:, :, ~heldout].reshape(N_TRAIN, 9, 4, -1).sum(2)
    np.testing.assert_array_equal(y.train_heldin, want)


def test_the_dataset_browses_as_nwb(dataset):
    from engine.data import nwb as N

    d, heldout, path = dataset
    s = N.summarize(path)
    assert s.units.n_rows == 30 and {"heldout", "obs_intervals", "spike_times"} <= set(s.units.columns)
    assert s.trials.n_rows == 20 and "split" in s.trials.columns
    assert [x.path for x in s.series] == ["processing/behavior/hand_vel"]
    assert s.n_spikes == int(d.spikes.sum())
    assert list(N.table_head(path, "trials")["split"]) == ["train"] * N_TRAIN + ["val"] * N_VAL


def test_nlb_tools_own_reader_bins_the_file_the_same_way(dataset):
    """nlb_tools' NWBDataset (1 ms bins) summed to 5 ms equals read_nlb's counts: the layout is NLB's."""
    pytest.importorskip("nlb_tools")
    import warnings

    from nlb_tools.nwb_interface import NWBDataset

    d, heldout, path = dataset
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = NWBDataset(str(path), skip_fields=["hand_vel"])
    ms = np.round(ds.data.index.total_seconds().to_numpy() * 1000).astype(int)
    start = np.round(ds.trial_info["start_time"].dt.total_seconds().to_numpy() * 1000).astype(int)
    x = nlb.read_nlb(path)
    for field, mine in (("spikes", np.concatenate([x.train_heldin, x.eval_heldin])),
                        ("heldout_spikes", np.concatenate([x.train_heldout, x.eval_heldout]))):
        dense = np.zeros((ms.max() + 1, mine.shape[2]))
        dense[ms] = ds.data[field].to_numpy(float)
        theirs = np.stack([dense[s:s + 200] for s in start]).reshape(len(start), 40, 5, -1).sum(2)
        np.testing.assert_array_equal(theirs, mine)


def test_nlb_tools_evaluation_scores_our_submission_as_we_do(dataset, tmp_path):
    pytest.importorskip("nlb_tools")
    d, heldout, path = dataset
    x = nlb.read_nlb(path, behavior="hand_vel")
    r = np.maximum(d.rates.transpose(1, 0, 2), 1e-3)  # the truth's rates: a predictor with known co-bps > 0
    rng = np.random.default_rng(0)
    noisy = r * rng.lognormal(0, 0.3, size=r.shape)  # and a worse one
    for rates in (r, noisy):
        sub = nlb.write_submission(tmp_path / "submission.h5", "mc_maze", x.bin_ms,
                                   train_rates_heldin=rates[:N_TRAIN][:, :, ~heldout],
                                   train_rates_heldout=rates[:N_TRAIN][:, :, heldout],
                                   eval_rates_heldin=rates[N_TRAIN:][:, :, ~heldout],
                                   eval_rates_heldout=rates[N_TRAIN:][:, :, heldout])
        target = nlb.write_eval_target(tmp_path / "target.h5", "mc_maze", x)
        theirs = nlb.evaluate(target, sub)
        ours = M.co_bps(x.eval_heldout, rates[N_TRAIN:][:, :, heldout])
        assert abs(theirs["co-bps"] - ours) < 1e-9
        assert theirs["vel R2"] > 0.5  # the latents are decodable from the true rates
    assert M.co_bps(x.eval_heldout, r[N_TRAIN:][:, :, heldout]) > ours > -1  # truth beats the noisy one


def test_bad_inputs_get_one_line(dataset, tmp_path):
    d, heldout, path = dataset
    with pytest.raises(DataError, match="no trial in split test"):
        nlb.read_nlb(path, eval_splits=("test",))
    with pytest.raises(DataError, match="no 'go_cue_time' column to align on"):
        nlb.read_nlb(path, align="go_cue_time")
    with pytest.raises(DataError, match="no single time series|no table or series 'cursor'"):
        nlb.read_nlb(path, behavior="cursor")
    with pytest.raises(DataError, match="must be one of mc_maze"):
        nlb.submission_name("my_lab", 5)
    with pytest.raises(DataError, match="5 or 20 ms"):
        nlb.submission_name("mc_rtt", 10)
    with pytest.raises(DataError, match="negative"):
        z = np.zeros((2, 3, 4))
        nlb.write_submission(tmp_path / "s.h5", "mc_rtt", 5, train_rates_heldin=z - 1, train_rates_heldout=z,
                             eval_rates_heldin=z, eval_rates_heldout=z)
    f = pynwb.NWBFile(session_description="x", identifier="x",
                      session_start_time=__import__("datetime").datetime(2020, 1, 1).astimezone())
    f.add_unit(spike_times=[0.1, 0.2])
    f.add_trial(start_time=0.0, stop_time=1.0)
    with pynwb.NWBHDF5IO(str(tmp_path / "plain.nwb"), "w") as io:
        io.write(f)
    with pytest.raises(DataError, match="no 'heldout' column: not an NLB-style file"):
        nlb.read_nlb(tmp_path / "plain.nwb")


def test_a_test_file_has_no_heldout_eval_spikes(tmp_path):
    d = simulate(LDSConfig(seed=2, trials=6, neurons=8, steps=20, latents=2))
    spikes = d.spikes.copy()
    heldout = np.array([True, True, False, False, False, False, False, False])
    spikes[:, 4:, :2] = 0  # NLB's test trials carry no held-out spikes
    path = nlb.write_nlb_nwb(tmp_path / "test.nwb", spikes, heldout, ["train"] * 4 + ["test"] * 2)
    x = nlb.read_nlb(path, eval_splits=("test",))
    assert x.eval_heldout is None and x.eval_heldin.shape == (2, 20, 6)
    with pytest.raises(DataError, match="only NLB's server can score them"):
        nlb.write_eval_target(tmp_path / "t.h5", "mc_maze", x)


def test_lds_view_orders_heldout_first_and_eval_trials_last(dataset, tmp_path):
    d, heldout, path = dataset
    v = nlb.for_lds(path, {"bin_ms": 5.0})
    assert v.spikes.shape == (40, 20, 30) and v.n_heldout == 10 and v.n_eval == N_VAL
    heldin_sl, heldout_sl = v.neuron_split()
    train_sl, eval_sl = v.trial_split()
    np.testing.assert_array_equal(v.spikes[:, eval_sl, heldout_sl], d.spikes[:, N_TRAIN:][:, :, heldout])
    np.testing.assert_array_equal(v.spikes[:, train_sl, heldin_sl], d.spikes[:, :N_TRAIN][:, :, ~heldout])
    assert v.as_attrs()["shape"] == [40, 20, 30] and v.rates is None
    rates = np.maximum(d.rates, 1e-3)  # (bins, trials, neurons) in the file's order
    out = nlb.write_lds_submission(v, rates[:, :, heldout], rates[:, :, ~heldout], tmp_path)
    assert (tmp_path / "nlb_submission.h5").exists() and (tmp_path / "nlb_eval_target.h5").exists()
    if "nlb_co_bps" in out:  # nlb_tools installed
        want = M.co_bps(v.spikes[:, eval_sl, heldout_sl], rates[:, N_TRAIN:][:, :, heldout])
        assert abs(out["nlb_co_bps"] - want) < 1e-9
