"""Scaling of a SINDy ensemble from 1 to 2 dask workers (``dask_sweep``).

Workload: ``engine.sindy.bagging.ensemble(method="samples")`` on the retina-sized case of
``bench_sindy`` (9 states, 20,000 samples, degree-3 library of 220 terms): each bag is a
bootstrap of samples, so each task builds its own weighted Gram (20,000 x 220) and solves
STLSQ; the library matrix travels to the cluster once (``engine.parallel`` scatters it).

Timed, best of ``repeats`` (after one warm-up run on the cluster): the same ensemble on one
worker (``n_jobs=1``, this process; joblib runs a one-core dask cluster's tasks in the
client anyway, so this *is* the 1-worker point) and on a ``LocalCluster`` of 2
single-threaded worker processes, BLAS at one thread everywhere.  ``ratio`` is the speed-up
from 1 to 2 workers (ideal 2.0), with the results checked identical.  Cluster start-up is
reported apart.  On a shared 2-core machine the
second worker competes with everything else running, so ``load_avg`` is printed too.

Prints one JSON line.  ``python -m benchmarks.bench_dask [--quick]``.
"""

from __future__ import annotations

import os

# before numpy: one BLAS thread in this process, as in the dask workers (fair anchor)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


from benchmarks._common import best_of as _best, machine as _env  # noqa: E402


def bench(n_models: int, repeats: int) -> dict:
    from benchmarks.bench_sindy import cfc_like_states
    from engine.parallel import parallel_backend
    from engine.sindy import Sindy
    from engine.sindy.bagging import ensemble

    xs, dt = cfc_like_states()
    model = Sindy(degree=3, threshold=0.1)

    def run(n_jobs=None):
        return ensemble(xs, dt, model=model, n_models=n_models, method="samples", random_state=0, n_jobs=n_jobs)

    t_local, ref = _best(lambda: run(1), repeats)
    t0 = time.perf_counter()
    with parallel_backend("dask", n_workers=2, start=True) as h:
        t_start = time.perf_counter() - t0
        got = len(h.client.scheduler_info()["workers"])
        if got != 2:
            raise RuntimeError(f"asked for 2 dask workers, got {got}")
        run()  # warm-up: imports in the workers, the library matrix scattered
        t_dask, res = _best(run, repeats)
    if not np.array_equal(res.coefs, ref.coefs):
        raise AssertionError("the 2-worker ensemble differs from the in-process one")
    return {
        "name": "dask_sweep",
        "workload": f"ensemble(method='samples'), {n_models} bags, 20000 x 220 library, 9 targets",
        "one_worker_s": round(t_local, 3),
        "dask_2_workers_s": round(t_dask, 3),
        "ratio": round(t_local / t_dask, 2),
        "ideal_ratio": 2.0,
        "efficiency": round(t_local / t_dask / 2, 2),
        "cluster_start_s": round(t_start, 2),
        "same_result": True,
        "repeats": repeats,
        "note": "one_worker_s runs in this process: joblib runs a one-core dask cluster's tasks "
                "in the client, so this is also the 1-worker dask time",
        **_env(),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer bags and repeats")
    ap.add_argument("--n-models", type=int, default=None)
    args = ap.parse_args(argv)
    n_models = args.n_models or (8 if args.quick else 24)
    try:
        import distributed  # noqa: F401
    except ImportError:  # an optional extra: say so in the one line, do not fail `make bench`
        print(json.dumps({"name": "dask_sweep", "skipped": 'needs pip install "neuro-workbench[dask]"'}))
        return 0
    print(json.dumps(bench(n_models, 2 if args.quick else 3)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
