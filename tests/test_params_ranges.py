"""Every parameter has a range, and memory is estimated before large allocations (issue 22, item 14)."""

from __future__ import annotations

import math
import time

import h5py
import numpy as np
import pytest

from engine import analyses
from engine.analyses.base import ParamError, StepContext, parse_sets, validate_params
from engine.resources import ResourceError, fmt_bytes, memory_problem, require_memory
from tests.helpers.process import cli

BUILT_IN = ("demo", "lds", "mei", "retina", "connectome", "stimulus")


@pytest.fixture(autouse=True)
def eight_gib(monkeypatch):
    """The same ceiling on every machine (a laptop, CI, the 128 GB accelerator host)."""
    monkeypatch.setenv("WORKBENCH_MEMORY_LIMIT", str(8 << 30))


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_numeric_parameter_has_a_range(name):
    loose = [f"{k}={p.default!r}" for k, p in analyses.get(name).params().items()
             if isinstance(p.default, (int, float)) and not isinstance(p.default, bool)
             and p.choices is None and (p.lo is None or p.hi is None) and k != "degree"]  # degree: the library budget
    assert not loose, f"{name}: parameters without both bounds: {', '.join(loose)}"
    for k, p in analyses.get(name).params().items():  # every default is inside its own range
        assert p.check(p.default) == p.default, k


@pytest.mark.parametrize("pair, words", [
    ("dt=0", "dt: must be"), ("dt=-0.01", "dt: must be"), ("dt=1e308", "dt: must be"),
    ("test_fraction=1.5", "test_fraction: must be"), ("trajectories=0", "trajectories: must be"),
    ("alpha=nan", "alpha: expected a finite number"), ("alpha=inf", "alpha: expected a finite number"),
    ("timesteps=0", "timesteps: must be"), ("hidden=100000000", "hidden: must be"),
])
def test_bad_demo_values_are_refused_in_one_line(pair, words):
    spec = analyses.get("demo")
    with pytest.raises(ParamError) as err:
        parse_sets([pair], spec.params())
    assert words in str(err.value) and "\n" not in str(err.value)
    key, _, value = pair.partition("=")
    if not value.isalpha():  # a session or the TUI hands values, not strings: the same checks
        with pytest.raises(ParamError, match=f"^{key}: "):
            validate_params(spec, {key: float(value)})


def test_require_memory_names_the_parameters_and_the_need():
    require_memory(1 << 20, "a small thing", "x")  # fits
    with pytest.raises(ResourceError) as err:
        require_memory(596 * 2**30, "generate", {"trajectories": 10**8, "timesteps": 400})
    line = str(err.value)
    assert "596 GiB" in line and "trajectories=100000000" in line and "(8 GiB available)" in line
    assert "lower trajectories or timesteps" in line and "\n" not in line
    assert memory_problem(6 << 30, "x") is None and memory_problem(7 << 30, "x") is not None  # 80 % of 8 GiB
    assert fmt_bytes(4e16) == "36 PiB" and fmt_bytes(1536) == "1.5 KiB"


def _demo_step(tmp_path, step, **overrides):
    spec = analyses.get("demo")
    p = validate_params(spec, {**spec.defaults(), **overrides})
    return spec.step(step).load()(StepContext(workdir=tmp_path), p)


def test_demo_memory_bombs_are_refused_before_allocating(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(ResourceError, match=r"trajectories=10000000, timesteps=100000000"):
        _demo_step(tmp_path, "generate", trajectories=10**7, timesteps=10**8)
    _demo_step(tmp_path, "generate", trajectories=4, timesteps=20)  # a small one still runs
    with pytest.raises(ResourceError, match=r"MLP needs about 64.1 GiB of memory \(hidden=65536"):
        _demo_step(tmp_path, "train", hidden=65536)
    assert time.perf_counter() - t0 < 20


def test_cli_refuses_a_memory_bomb_in_one_line(session_root):
    out = cli("--session", "bomb", "run", "demo", "--step", "generate", "--set", "trajectories=10000000",
              "--set", "timesteps=10000000")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "trajectories=10000000" in out.stderr and "of memory" in out.stderr, out.stderr
    bad = cli("--session", "bomb", "run", "demo", "--step", "generate", "--set", "dt=0")
    assert bad.returncode == 2 and "dt: must be" in bad.stderr and "Traceback" not in bad.stderr


def test_retina_file_declaring_3e9_frames_is_refused(tmp_path):
    from engine.data.errors import DataError
    from engine.data.retina import load_retina

    path = tmp_path / "huge.h5"
    T = 3 * 10**9
    with h5py.File(path, "w") as fh:  # a few KB on disk: nothing is allocated
        fh.create_dataset("train/stimulus", shape=(T, 50, 50), dtype="u1", chunks=(1, 50, 50))
        fh.create_dataset("train/response/firing_rate_10ms", shape=(9, T), dtype="f4", chunks=(9, 4096))
    assert path.stat().st_size < 100_000
    with pytest.raises(DataError, match=r"needs about 34.3 TiB of memory \(frames=3000000000\)"):
        load_retina(path)


def test_lds_sizes_are_refused_before_allocating(tmp_path):
    spec = analyses.get("lds")
    p = validate_params(spec, {**spec.defaults(), "trials": 10**6, "steps": 10**5})
    with pytest.raises(ResourceError, match=r"trials=1000000, steps=100000"):
        spec.step("generate").load()(StepContext(workdir=tmp_path), p)


def test_simulate_refuses_nan_times_and_huge_batches():
    from engine.sindy import Sindy

    t = np.linspace(0, 1, 50)
    x = np.stack([np.exp(-t), np.exp(-2 * t)], axis=1)
    model = Sindy(degree=1, threshold=0.01).fit([x], t=t)
    bad_t = t.copy()
    bad_t[10] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        model.simulate(x[0], bad_t)
    with pytest.raises(ResourceError, match=r"initial states=10000, time points=1000000"):
        model.simulate(np.ones((10**4, 2)), np.arange(10**6) * 0.01)


def test_retina_eda_refuses_a_file_declaring_3e9_frames(tmp_path):
    from engine.data.eda import retina_eda
    from engine.data.errors import DataError

    path = tmp_path / "huge.h5"
    T = 3 * 10**9
    with h5py.File(path, "w") as fh:
        fh.create_dataset("train/stimulus", shape=(T, 50, 50), dtype="u1", chunks=(1, 50, 50))
        fh.create_dataset("train/response/firing_rate_10ms", shape=(9, T), dtype="f4", chunks=(9, 4096))
    t0 = time.perf_counter()
    with pytest.raises(DataError, match=r"EDA of /train needs about .* of memory \(frames=3000000000, cells=9\)"):
        retina_eda(path)
    assert time.perf_counter() - t0 < 5


def test_lds_rnn_too_big_for_the_machine_is_refused(tmp_path):
    spec = analyses.get("lds")
    small = {**spec.defaults(), "trials": 6, "steps": 20, "neurons": 8, "latents": 2, "heldout_trials": 2}
    ctx = StepContext(workdir=tmp_path)
    spec.step("generate").load()(ctx, validate_params(spec, small))
    with pytest.raises(ResourceError, match=r"bidirectional RNN needs about .* \(hidden=65536"):
        spec.step("train").load()(ctx, validate_params(spec, {**small, "hidden": 65536}))


def test_synthetic_retina_too_big_is_refused_before_simulating(tmp_path):
    from engine.data.errors import DataError
    from engine.data.retina_gen import generate_retina

    with pytest.raises(DataError, match=r"synthetic retina needs about .* \(frames=100000000, test_frames=100, cells=9\)"):
        generate_retina(tmp_path / "r.h5", frames=10**8, test_frames=100)
    assert not (tmp_path / "r.h5").exists()


def test_mei_population_too_big_is_refused(tmp_path):
    spec = analyses.get("mei")
    p = validate_params(spec, {**spec.defaults(), "n_neurons": 10**5, "n_images": 10**5, "repeats": 100})
    with pytest.raises(ResourceError, match=r"synthetic V1 population needs about .* \(n_neurons=100000"):
        spec.step("generate").load()(StepContext(workdir=tmp_path), p)
