"""The real retina layout in full: recording blocks (time jumps) and test repeats.

A file written here by hand in deep-retina's layout -- ``train`` as three blocks whose
``time`` jumps, ``test/repeats/cellNN`` of shape (repeats, T) -- is read, sampled without
crossing a block, scored with the FEV from its repeats, and run end to end.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from engine.analyses.retina.scoring import repeat_ceiling, score
from engine.analyses.retina.sequences import Sequences, run_blocks
from engine.data.errors import DataError
from engine.data.retina import inspect_retina, load_retina
from engine.data.retina_blocks import block_segments, find_blocks
from tests.helpers.process import cli

BLOCK, N_BLOCKS, T_TEST, REPS, CELLS, SIZE = 400, 3, 300, 4, 3, 20


def _rates(stim: np.ndarray, rng) -> np.ndarray:
    """Cells that fire a few frames after the mean luminance of a patch changes."""
    drive = np.stack([stim[:, 4 * c:4 * c + 6, 4:10].mean((1, 2)) for c in range(CELLS)]).astype(float)
    change = np.abs(np.diff(drive, axis=1, prepend=drive[:, :1]))
    lam = np.roll(change, 3, axis=1) / 40.0
    return lam + 0.01 * rng.random(lam.shape)


def write_real_layout(path, seed: int = 0):
    rng = np.random.default_rng(seed)
    steps = rng.integers(0, 2, size=(N_BLOCKS * BLOCK + T_TEST, 1, 1)) * rng.integers(0, 255, size=(1, SIZE, SIZE))
    stim = np.clip(np.cumsum(steps, axis=0) % 256, 0, 255).astype(np.uint8)
    lam = _rates(stim, rng)
    with h5py.File(path, "w") as fh:
        tr = fh.create_group("train")
        tr["stimulus"] = stim[: N_BLOCKS * BLOCK]
        # each block's clock runs on from where the last stopped, after a pause of 60 s
        tr["time"] = np.concatenate([b * (BLOCK * 0.01 + 60) + np.arange(BLOCK) * 0.01 for b in range(N_BLOCKS)])
        tr["response/firing_rate_10ms"] = rng.poisson(lam[:, : N_BLOCKS * BLOCK]).astype(np.float32)
        te = fh.create_group("test")
        te["stimulus"] = stim[N_BLOCKS * BLOCK:]
        te["time"] = np.arange(T_TEST) * 0.01
        trials = rng.poisson(lam[None, :, N_BLOCKS * BLOCK:].repeat(REPS, 0)).astype(np.float32)
        te["response/firing_rate_10ms"] = trials.mean(0)  # the trial average, as in the real files
        for c in range(CELLS):
            te[f"repeats/cell{c + 1:02d}"] = trials[:, c]
    return path


@pytest.fixture(scope="module")
def real_layout(tmp_path_factory):
    return write_real_layout(tmp_path_factory.mktemp("real") / "naturalscene.h5")


def test_the_loader_finds_the_blocks_from_time_jumps_and_the_repeats(real_layout):
    train = load_retina(real_layout, "train")
    assert train.blocks == [(0, 400), (400, 800), (800, 1200)] and train.repeats is None
    test = load_retina(real_layout, "test")
    assert test.blocks == [(0, T_TEST)] and test.repeats.shape == (REPS, CELLS, T_TEST)
    np.testing.assert_allclose(test.repeats.mean(0), test.responses, rtol=1e-6)
    assert inspect_retina(real_layout).splits["train"]["blocks"] == 3
    assert inspect_retina(real_layout).splits["test"]["repeats"] == REPS
    # a frame range keeps the blocks it cuts, in its own frame numbers
    assert load_retina(real_layout, "train", frames=(300, 900)).blocks == [(0, 100), (100, 500), (500, 600)]
    # deep-retina's rule when the file has no time: N equal blocks
    assert load_retina(real_layout, "train", n_blocks=4).blocks == [(0, 300), (300, 600), (600, 900), (900, 1200)]


def test_block_rules_time_restarts_and_skips():
    t = np.concatenate([np.arange(5) * 0.01, np.arange(5) * 0.01, 0.2 + np.arange(4) * 0.01])  # restart, then a jump
    assert find_blocks(t, 14) == [(0, 5), (5, 10), (10, 14)]
    assert find_blocks(np.arange(10) * 0.01, 10) == [(0, 10)] and find_blocks(None, 7) == [(0, 7)]
    # the first `skip` frames of every block go; a range cut at a split keeps its first frames
    assert block_segments([(0, 400), (400, 800)], 0, 700, skip=50) == [(50, 400), (450, 700)]
    assert block_segments([(0, 400), (400, 800)], 600, 800, skip=50) == [(600, 800)]
    with pytest.raises(DataError, match="blocks"):
        find_blocks(None, 3, n_blocks=5)


def test_no_training_sequence_crosses_a_block(real_layout):
    import torch

    data = load_retina(real_layout, "train")
    segs = block_segments(data.blocks, 0, 1100, skip=30)
    n, L = 6, 40
    seq = Sequences(torch.zeros(1200, SIZE, SIZE), torch.zeros(1200, CELLS), segs, n, L, batch=16, seed=1)
    starts = np.array([s for e in range(20) for b in seq.draw(e) for s in b])
    fixed = seq.start_of(np.linspace(0, seq.n_starts - 1, 64).astype(int))
    for s in np.concatenate([starts, fixed]):
        first, last = s - n + 1, s + L - 1  # every frame a sequence reads
        assert any(a <= first and last < b for a, b in segs), (s, segs)
    # the sampler does reach every block's edges (so the check above could fail)
    count = (400 - L) - (30 + n - 1) + 1
    assert seq.start_of([0, count - 1, count, seq.n_starts - 1]).tolist() == [30 + n - 1, 400 - L, 430 + n - 1, 1100 - L]
    assert starts.min() < 30 + n + 20 and starts.max() > 1100 - L - 20
    assert seq.ranges == [(30 + n - 1, 400 - L), (430 + n - 1, 800 - L), (830 + n - 1, 1100 - L)]


def test_the_cfc_state_restarts_at_each_block():
    import torch

    from engine.models.retina_cfc import RetinaCfC, RetinaCfCConfig

    torch.manual_seed(0)
    model = RetinaCfC(RetinaCfCConfig(n_cells=2, n_frames=3, frame_size=(16, 16), units=4)).eval()
    stim = torch.randn(60, 16, 16)
    times, _, states, rates = run_blocks(model, stim, 3, [(0, 30), (30, 60)])
    assert times.tolist() == list(range(2, 30)) + list(range(32, 60))
    alone = run_blocks(model, stim[30:], 3, [(0, 30)])[2]
    np.testing.assert_allclose(states[1], alone[0], atol=1e-6)  # block 2 did not see block 1's state
    carried = run_blocks(model, stim, 3, [(0, 60)])[2][0][30:]  # one block: the state carries over
    assert np.abs(carried - states[1]).max() > 1e-3


def test_fev_and_ceiling_from_repeats_by_hand():
    rng = np.random.default_rng(4)
    truth = np.maximum(rng.normal(0.2, 0.3, (500, 2)), 0)
    reps = rng.poisson(truth[None].repeat(5, 0)).astype(float)  # (reps, T, cells)
    target = reps.mean(0)
    pred = 0.8 * truth + 0.05
    rows = {"m": {"pred": pred, "role": "model"}, "zeros": {"pred": np.zeros_like(pred), "role": "baseline"}}
    table = score(rows, target, truth, target.mean(0), ["a", "b"], repeats=reps)
    noise = reps.var(axis=0, ddof=1).mean(axis=0)
    single = reps.reshape(-1, 2)
    mse = ((reps - pred[None]) ** 2).reshape(-1, 2).mean(0)
    fev = 1 - (mse - noise) / (single.var(0) - noise)
    assert table.loc["m", "fev:a"] == pytest.approx(fev[0]) and table.loc["m", "fev"] == pytest.approx(fev.mean())
    assert set(table["noise_from"]) == {"repeats"} and set(table["n_repeats"]) == {5}
    ceiling = np.sqrt((target.var(0) - noise / 5) / target.var(0))
    assert table.loc["m", "corr_ceiling:b"] == pytest.approx(ceiling[1])
    # the estimate is near the truth's own correlation with the trial mean
    true_ceiling = [np.corrcoef(truth[:, c], target[:, c])[0, 1] for c in range(2)]
    np.testing.assert_allclose(repeat_ceiling(target, reps), true_ceiling, atol=0.05)


def test_the_analysis_runs_on_the_real_layout_and_says_its_fev_came_from_repeats(real_layout, session_root):
    proc = cli("run", "retina", "--session", "real", "--headless", "--json",
               "--step", "generate,train,prune,sindy,evaluate", "--set", f"data={real_layout}",
               "--set", "iterations=4", "--set", "samples=500", "--set", "seq_len=10", "--set", "n_frames=4",
               "--set", "val_batches=1", "--set", "batch_size=4", "--set", "skip_after_block=20",
               "--set", "rollout_steps=5", "--set", "stability_steps=50", timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["noise_from"] == "repeats" and "noise-free rate" not in out["mae"]
    assert 0 < out["corr_ceiling"] <= 1 and out["test_frames_scored"] == T_TEST - 3
    assert all(v is None or np.isfinite(v) for v in out["fev"].values())
