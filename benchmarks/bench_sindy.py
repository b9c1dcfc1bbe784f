"""Benchmarks of the SINDy engine against pysindy 2.x on the retina-sized case.

Data: a 9-state CfC-like network ``x' = -x + tanh(W x + b)`` (bounded, smooth, not polynomial,
so STLSQ iterates the way it does on hidden states), 10 trajectories x 2,000 samples = 20,000
samples; the degree-3 polynomial library has 220 terms; 9 targets.

``sindy_fit``: pysindy ``STLSQ(threshold=0.1).fit`` vs our ``stlsq`` on the *same* library
matrix (``ratio``, the issue's 100x anchor; ``ratio_ceiling_gram_only``: pysindy's time over that
of forming ``Θᵀ Θ`` and ``Θᵀ y`` alone, one ``syrk`` of 20,000 x 220 at ~90% of the FMA peak of
a core, which bounds ``ratio`` for any method that needs the Gram once), and the end-to-end fits
(``ratio_end_to_end``:
``SINDy(optimizer=STLSQ(), feature_library=PolynomialLibrary(3)).fit(x, t)`` vs
``Sindy(3).fit(x, t)``, derivatives and library included), with the agreement of the two
coefficient matrices.

``sindy_sweep``: ``threshold_sweep`` with 64 thresholds (one batched STLSQ, held-out derivative
errors, batched short rollouts, Pareto front, knee); anchor < 0.5 s on the CPU.  Also
``per_equation_sweep_s``: the same sweep with normalised columns, constants and each equation
chosen at its own threshold (teacher-forced rollouts, kept bounded together): no anchor.

``sindy_threshold_redraw``: keystroke (``+``/``-``) to redrawn screen in the Equations pane on a
retina-sized stored sweep (64 thresholds, 9 equations of up to ~200 terms), median and p95 in ms
from the key press to the end of the screen update that shows the new threshold, over a walk up
and down the sweep (``harness_*``: until the test pilot found the app idle again, with
``noop_key_median_ms`` its cost for a key the app ignores); anchor < 100 ms.

``sindy_simulate``: 100 initial states, 500 steps; our batched RK4 vs pysindy's ``simulate``
(LSODA, rtol=atol=1e-12, its defaults), which takes seconds per state: a few states are timed
and the time for 100 is extrapolated linearly (``pysindy_extrapolated: true``); anchor >= 50x.

Timings are the best of several repeats (``min``); the machine may be shared, so ``load_avg``
is reported.  Each benchmark prints one JSON line.  ``--quick`` uses fewer repeats.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import numpy as np


def cfc_like_states(n: int = 9, n_traj: int = 10, T: int = 2000, dt: float = 0.01, seed: int = 0):
    """Bounded smooth trajectories of a random tanh network (the retina case's stand-in)."""
    from engine.sindy.examples import tanh_network

    return tanh_network(n, n_traj, T, dt, seed, w_scale=1.6, b_scale=0.2, x0_range=0.8).x, dt


from benchmarks._common import best_of as _best, machine as _env  # noqa: E402


def bench_fit(xs, dt, repeats: int, py_repeats: int) -> dict:
    import pysindy as ps

    from engine.sindy import Sindy, stlsq
    from engine.sindy.derivatives import finite_difference
    from engine.sindy.design import library_matrix
    from engine.sindy.library import PolynomialLibrary

    lib = PolynomialLibrary(3).fit(9)
    X = np.concatenate(lib.transform(xs))
    Y = np.concatenate([finite_difference(x, dt) for x in xs])
    ref_lib = ps.PolynomialLibrary(degree=3)
    X_ref = np.concatenate([np.asarray(a) for a in ref_lib.fit_transform(xs)])
    same_matrix = bool(np.array_equal(X, X_ref))

    def py_stlsq():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ps.STLSQ(threshold=0.1).fit(X, Y).coef_

    def py_fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = ps.SINDy(optimizer=ps.STLSQ(threshold=0.1), feature_library=ps.PolynomialLibrary(degree=3))
            return m.fit(xs, t=dt).coefficients()

    ours_stlsq = lambda: stlsq(X, Y, 0.1, return_info=True)  # noqa: E731
    ours_fit = lambda: Sindy(degree=3, threshold=0.1).fit(xs, dt)  # noqa: E731
    ours_stlsq()
    ours_fit()  # warm (first calls import scipy.linalg etc.)
    # interleave so that a burst of load on a shared machine hits both sides
    t_py_stlsq, t_py_fit, t_ours_stlsq, t_ours_fit = [float("inf")] * 4
    ref = ref_fit = res = model = None
    for _ in range(py_repeats):
        t, ref = _best(py_stlsq, 1)
        t_py_stlsq = min(t_py_stlsq, t)
        t, res = _best(ours_stlsq, max(1, repeats // py_repeats))
        t_ours_stlsq = min(t_ours_stlsq, t)
        t, ref_fit = _best(py_fit, 1)
        t_py_fit = min(t_py_fit, t)
        t, model = _best(ours_fit, max(1, repeats // py_repeats))
        t_ours_fit = min(t_ours_fit, t)
    coef, info = res
    coef = coef[0]
    nz = ref != 0
    same_support = bool(np.array_equal(coef != 0, nz))
    rel = float(np.max(np.abs(coef[nz] - ref[nz]) / np.abs(ref[nz]))) if nz.any() else 0.0
    e2e_support = bool(np.array_equal(model.coef_ != 0, ref_fit != 0))
    e2e_rel = float(np.max(np.abs(model.coef_[ref_fit != 0] - ref_fit[ref_fit != 0]) / np.abs(ref_fit[ref_fit != 0])))
    # phases of our STLSQ
    from engine.sindy import GramStats

    t_gram, _ = _best(lambda: GramStats.from_data(X, Y), repeats)
    # both sides on one BLAS thread: the per-core ratio, which a loaded machine moves least
    # (with 2 threads each, pysindy's many small BLAS calls collapse when other jobs run and
    # the 2-thread ratio then swings from ~50 to ~180 between runs)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        t_py_1, _ = _best(py_stlsq, 1)
        t_ours_1, _ = _best(ours_stlsq, max(3, repeats // 2))
    t_lib, _ = _best(lambda: library_matrix(lib, xs, None), repeats)
    out = {
        "name": "sindy_fit",
        "n_samples": int(X.shape[0]),
        "n_states": 9,
        "n_features": int(X.shape[1]),
        "threshold": 0.1,
        "pysindy_stlsq_s": round(t_py_stlsq, 4),
        "ours_stlsq_s": round(t_ours_stlsq, 4),
        "ratio": round(t_py_stlsq / t_ours_stlsq, 1),
        "pysindy_fit_s": round(t_py_fit, 4),
        "ours_fit_s": round(t_ours_fit, 4),
        "ratio_end_to_end": round(t_py_fit / t_ours_fit, 1),
        "target_ratio": 100,
        "meets_target": bool(t_py_stlsq / t_ours_stlsq >= 100),
        "ours_gram_s": round(t_gram, 4),
        # the bound on `ratio` for any method that forms Θᵀ Θ and Θᵀ y once (ours does; the
        # rest of our STLSQ is the difference ours_stlsq_s - ours_gram_s)
        "ratio_ceiling_gram_only": round(t_py_stlsq / t_gram, 1),
        "pysindy_stlsq_1thread_s": round(t_py_1, 4),
        "ours_stlsq_1thread_s": round(t_ours_1, 4),
        "ratio_1thread": round(t_py_1 / t_ours_1, 1),
        "ours_library_s": round(t_lib, 4),
        "same_library_matrix": same_matrix,
        "same_support": same_support,
        "max_rel_coef_diff": rel,
        "end_to_end_same_support": e2e_support,
        "end_to_end_max_rel_coef_diff": e2e_rel,
        "n_terms": int(np.count_nonzero(coef)),
        "stlsq_iterations": int(info.n_iter.max()),
        "unbias_fallbacks": int(info.n_unbias_fallbacks),
        "device": "cpu",
        **_env(),
    }
    try:
        import torch

        if torch.cuda.is_available():
            Xt = torch.as_tensor(X, device="cuda")
            Yt = torch.as_tensor(Y, device="cuda")
            stlsq(Xt, Yt, 0.1)
            torch.cuda.synchronize()

            def gpu():
                r = stlsq(Xt, Yt, 0.1)
                torch.cuda.synchronize()
                return r

            t_gpu, cg = _best(gpu, repeats)
            out.update(ours_gpu_stlsq_s=round(t_gpu, 4), ratio_gpu=round(t_py_stlsq / t_gpu, 1),
                       gpu_same_support=bool(np.array_equal(cg[0] != 0, nz)),
                       gpu=torch.cuda.get_device_name(0))
    except ImportError:  # pragma: no cover
        pass
    return out


def bench_sweep(xs, dt, repeats: int, t_py_stlsq: float | None) -> dict:
    from engine.sindy import Sindy, stlsq, threshold_sweep
    from engine.sindy.derivatives import finite_difference
    from engine.sindy.library import PolynomialLibrary

    threshold_sweep(xs, dt, model=Sindy(degree=3), thresholds=8)  # warm-up
    t_sweep, res = _best(lambda: threshold_sweep(xs, dt, model=Sindy(degree=3), thresholds=64), repeats)
    lib = PolynomialLibrary(3).fit(9)
    X = np.concatenate(lib.transform(xs))
    Y = np.concatenate([finite_difference(x, dt) for x in xs])
    thr = res.thresholds
    t_batch, _ = _best(lambda: stlsq(X, Y, thr, exact=False, warn=False), repeats)
    t_batch_exact, _ = _best(lambda: stlsq(X, Y, thr, exact=True, warn=False), max(1, repeats // 2))
    knee = res.table.loc[res.knee] if res.knee >= 0 else None
    out = {
        "name": "sindy_sweep",
        "n_thresholds": int(len(thr)),
        "threshold_range": [float(thr[0]), float(thr[-1])],
        "sweep_s": round(t_sweep, 4),
        "target_s": 0.5,
        "meets_target": bool(t_sweep < 0.5),
        "phases_s": {k: round(v, 4) for k, v in res.timings.items()},
        "batched_stlsq_64_s": round(t_batch, 4),
        "batched_stlsq_64_exact_s": round(t_batch_exact, 4),
        "split": res.settings["split"],
        "n_front": int(res.table["on_front"].sum()),
        "knee_threshold": None if knee is None else float(knee["threshold"]),
        "knee_n_terms": None if knee is None else int(knee["n_terms"]),
        **_env(),
    }
    # the readable configuration: normalised columns, constants, each equation at its own
    # threshold by teacher-forced held-out rollouts, the combination kept bounded
    readable = Sindy(degree=3, alpha=1e-6, normalize_columns=True, constant_tol=1e-3)
    t_sel, sel = _best(lambda: threshold_sweep(xs, dt, model=readable, thresholds=64, select="per_equation"),
                       max(1, repeats // 2))
    out["per_equation_sweep_s"] = round(t_sel, 4)
    out["per_equation_phases_s"] = {k: round(v, 4) for k, v in sel.timings.items()}
    out["per_equation_n_terms"] = int(np.count_nonzero(sel.selected))
    if t_py_stlsq is not None:
        out["pysindy_64_estimated_s"] = round(64 * t_py_stlsq, 2)
        out["note"] = "pysindy_64_estimated_s = 64 x one pysindy STLSQ fit at threshold 0.1 (not run)"
    return out


def bench_simulate(xs, dt, repeats: int, n_py: int) -> dict:
    import pysindy as ps

    from engine.sindy import Sindy

    model = Sindy(degree=3, threshold=0.1).fit(xs, dt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ps.SINDy(optimizer=ps.STLSQ(threshold=0.1), feature_library=ps.PolynomialLibrary(degree=3)).fit(xs, t=dt)
    rng = np.random.default_rng(1)
    allx = np.concatenate(xs)
    X0 = allx[rng.choice(len(allx), 100, replace=False)]
    t = np.arange(500) * dt
    model.simulate(X0[:2], t[:10])  # warm-up
    t_ours, res = _best(lambda: model.simulate(X0, t), repeats)
    py_times, diffs = [], []
    for i in range(n_py):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            traj = ref.simulate(X0[i], t)
            py_times.append(time.perf_counter() - t0)
        if len(traj) == len(t) and not res.diverged[i]:
            diffs.append(float(np.abs(traj - res.x[i]).max()))
    per_state = float(np.mean(py_times))
    t_py = per_state * len(X0)
    return {
        "name": "sindy_simulate",
        "n_initial_states": int(len(X0)),
        "n_steps": int(len(t)),
        "ours_s": round(t_ours, 4),
        "ours_backend": res.info.get("backend"),
        "pysindy_s_per_state": round(per_state, 3),
        "pysindy_states_timed": n_py,
        "pysindy_s": round(t_py, 2),
        "pysindy_extrapolated": True,
        "ratio": round(t_py / t_ours, 1),
        "target_ratio": 50,
        "meets_target": bool(t_py / t_ours >= 50),
        "max_abs_diff_vs_pysindy": max(diffs) if diffs else None,
        "n_diverged": int(res.diverged.sum()),
        "note": f"pysindy time for 100 states extrapolated from {n_py} timed states (LSODA, rtol=atol=1e-12, its defaults)",
        **_env(),
    }


def retina_sized_session(root, n_traj: int = 10, T: int = 2000, n_thresholds: int = 64):
    """A session holding one retina-sized equation set (9 states, degree 3: 220 terms) with its
    stored ``n_thresholds``-row sweep, the way ``engine.analyses.sindy_fit`` stores it."""
    from pathlib import Path

    from engine.session import Session
    from engine.sindy import Sindy, threshold_sweep
    from engine.sindy.export import model_to_dict

    xs, dt = cfc_like_states(n_traj=n_traj, T=T)
    sweep = threshold_sweep(xs, dt, model=Sindy(degree=3), thresholds=n_thresholds)
    session = Session.open("redraw", Path(root))
    path = session.artifact_dir("sindy") / "sweep.npz"
    np.savez(path, **sweep.arrays())
    payload = model_to_dict(sweep.model())
    t = sweep.table
    clean = lambda c: [None if not np.isfinite(v) else float(v) for v in t[c]]  # noqa: E731
    payload["sweep_path"] = str(path)
    payload["sweep"] = {"threshold": t["threshold"].tolist(), "n_terms": t["n_terms"].astype(int).tolist(),
                        "deriv_err": clean("deriv_err"), "rollout_err": clean("rollout_err"),
                        "knee": int(sweep.knee), "error_column": sweep.error_column}
    session.save_equations("retina-sized: SINDy (9 states, 220 terms)", payload)
    return session


async def measure_threshold_redraw(session, n_keys: int = 40, size=(160, 50), n_noop: int = 10) -> dict:
    """Keystroke (``+``/``-``) to redrawn screen in the Equations pane, in ms per key.

    Starts at the densest model (the heaviest text: 9 equations of ~200 terms) and walks the
    sweep up and back down.  ``median_ms``/``p95_ms``: from the key press to the end of the
    first screen update after the pane redrew (the compositor has written the new lines).
    ``harness_*``: until the test pilot saw the app idle again, which adds the pilot's own
    waiting (``noop_key_median_ms``: the same for a key the app ignores).
    """
    import statistics

    from workbench.app import WorkbenchApp

    app = WorkbenchApp(session=session)
    to_screen: list[float] = []
    harness: list[float] = []
    async with app.run_test(size=size) as pilot:
        await pilot.press("3")
        await pilot.pause(0.5)
        await app.workers.wait_for_complete()
        await pilot.pause()
        pane = app.query_one("#equations-pane")
        s = pane.current()
        n = len(pane.sweeps[s["id"]])
        pane.index[s["id"]] = 0
        pane.redraw()
        await pilot.pause()
        dense = int(np.count_nonzero(pane.coef_of(s)))
        # time stamps of the pane's redraws and of the screen updates (instance attributes)
        marks = {"redraw": 0.0, "screen": []}
        screen, redraw = app.screen, pane.redraw
        refresh = screen._compositor_refresh

        def timed_redraw():
            redraw()
            marks["redraw"] = time.perf_counter()

        def timed_refresh():
            refresh()
            marks["screen"].append(time.perf_counter())

        pane.redraw, screen._compositor_refresh = timed_redraw, timed_refresh
        noop = []  # the harness's own cost of a key: one the app ignores
        for _ in range(n_noop):
            t0 = time.perf_counter()
            await pilot.press("x")
            await pilot.pause()
            noop.append(time.perf_counter() - t0)
        keys = (["plus"] * (n - 1) + ["minus"] * (n - 1))[:n_keys]
        for key in keys:
            marks["screen"].clear()
            t0 = time.perf_counter()
            await pilot.press(key)
            await pilot.pause()
            harness.append(time.perf_counter() - t0)
            done = [t for t in marks["screen"] if t >= marks["redraw"] >= t0]
            if done:
                to_screen.append(done[0] - t0)
        last = pane.index[s["id"]]
    ms = sorted(1e3 * t for t in to_screen)
    hs = sorted(1e3 * t for t in harness)
    p95 = lambda v: round(v[int(0.95 * (len(v) - 1))], 1)  # noqa: E731
    return {"median_ms": round(statistics.median(ms), 1), "p95_ms": p95(ms), "max_ms": round(ms[-1], 1),
            "harness_median_ms": round(statistics.median(hs), 1), "harness_p95_ms": p95(hs),
            "noop_key_median_ms": round(1e3 * statistics.median(noop), 1),
            "n_keys": len(hs), "n_timed": len(ms), "densest_terms": dense, "last_row": last}


def bench_redraw(n_keys: int) -> dict:
    import asyncio
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        session = retina_sized_session(root)
        res = asyncio.run(measure_threshold_redraw(session, n_keys))
    return {"name": "sindy_threshold_redraw", "n_states": 9, "n_features": 220, "n_thresholds": 64, **res,
            "target_ms": 100, "meets_target": bool(res["median_ms"] < 100), **_env()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--only", choices=["fit", "sweep", "simulate", "redraw"], action="append")
    args = ap.parse_args(argv)
    repeats, py_repeats, n_py = (3, 1, 1) if args.quick else (10, 3, 3)
    only = set(args.only or ["fit", "sweep", "simulate", "redraw"])
    xs, dt = cfc_like_states()
    t_py = None
    if "fit" in only:
        fit = bench_fit(xs, dt, repeats, py_repeats)
        t_py = fit["pysindy_stlsq_s"]
        print(json.dumps(fit), flush=True)
    if "sweep" in only:
        print(json.dumps(bench_sweep(xs, dt, max(3, repeats // 2), t_py)), flush=True)
    if "simulate" in only:
        print(json.dumps(bench_simulate(xs, dt, max(3, repeats // 2), n_py)), flush=True)
    if "redraw" in only:
        print(json.dumps(bench_redraw(40 if args.quick else 126)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
