"""Selection per equation: each state's equation taken at its own threshold.

One threshold for all equations keeps too much in some and too little in others (the
states of a trained network move on very different scales).  Here every equation of every
swept model is scored on its own by a *teacher-forced* held-out rollout: the state is
stepped with its equation while the other states (and the inputs) follow the recorded
trajectory, so the error belongs to that equation alone.  Errors are absolute (RMS in the
state's units): a state that barely moves cannot dominate the choice, as a division by
its std made it do.  Each equation is then picked at the knee of its own front of terms
against error (:func:`engine.sindy.pareto.knee_point`); a diverged rollout is an infinite
error, so supports that blow up are never chosen.
"""

from __future__ import annotations

import numpy as np

from .errors import check_cancel
from .pareto import knee_point

__all__ = ["equation_errors", "select_rows", "stabilise", "within_budget"]


def equation_errors(coefs: np.ndarray, library, ro: dict, *, method: str = "rk4", bound: float = np.inf,
                    cancel=None) -> tuple[np.ndarray, np.ndarray]:
    """Teacher-forced rollout error of every equation of every model.

    ``coefs`` (P, K, F); ``ro`` the held-out rollout set of the sweep (``x0``, ``truth``
    (S, T+1, n), ``grid`` (S, T+1), ``u`` (S, T+1, m) or None).  Returns ``(err (P, K),
    diverged (P, K))``: RMS error of the state over all starts and steps (``inf`` if any
    rollout of it diverged), and whether one did.
    """
    P, K, F = coefs.shape
    truth, grid = np.asarray(ro["truth"], float), np.asarray(ro["grid"], float)
    u = ro.get("u")
    S, T1, n = truth.shape
    z_truth = truth if u is None else np.concatenate([truth, np.asarray(u, float)], axis=2)  # (S, T+1, n+m)
    err = np.full((P, K), np.inf)
    div = np.zeros((P, K), dtype=bool)
    euler = method == "euler"
    for k in range(K):
        check_cancel(cancel)
        rows, inv = np.unique(coefs[:, k, :], axis=0, return_inverse=True)
        inv = inv.ravel()
        U = len(rows)
        C = np.repeat(rows, S, axis=0)  # (U*S, F): model a drives starts a*S .. a*S+S-1
        zt = np.tile(z_truth, (U, 1, 1))  # (B, T+1, n+m)
        h = np.tile(np.diff(grid, axis=1), (U, 1))  # (B, T)
        xk = zt[:, 0, k].copy()
        sq = np.zeros(U * S)
        alive = np.ones(U * S, dtype=bool)

        def f(z_other, xval, k=k, C=C):  # bound now: defined and used within this iteration
            z = z_other.copy()
            z[:, k] = xval
            return np.einsum("bf,bf->b", library.transform(z), C)

        with np.errstate(over="ignore", invalid="ignore"):
            for i in range(T1 - 1):
                a, b = zt[:, i], zt[:, i + 1]
                hi = h[:, i]
                k1 = f(a, xk)
                if euler:  # a map: exactly the step it was fitted on
                    xk = xk + hi * k1
                else:  # RK4 with the other states interpolated along the record
                    mid = 0.5 * (a + b)
                    k2 = f(mid, xk + 0.5 * hi * k1)
                    k3 = f(mid, xk + 0.5 * hi * k2)
                    k4 = f(b, xk + hi * k3)
                    xk = xk + hi / 6.0 * (k1 + 2 * (k2 + k3) + k4)
                bad = ~(np.abs(xk) <= bound)
                alive &= ~bad
                xk = np.where(bad, 0.0, xk)
                sq += np.where(alive, (xk - b[:, k]) ** 2, 0.0)
        per = np.sqrt(sq.reshape(U, S).sum(1) / max(S * (T1 - 1), 1))
        dead = ~np.all(alive.reshape(U, S), axis=1)
        per[dead] = np.inf
        err[:, k] = per[inv]
        div[:, k] = dead[inv]
    return err, div


def select_rows(coefs: np.ndarray, err: np.ndarray, loss_factor: float = 1.5) -> np.ndarray:
    """The sweep row chosen for each equation: the knee of its own front of terms against
    (teacher-forced) error.  ``-1`` where no row has a finite error."""
    P, K, _ = coefs.shape
    terms = np.count_nonzero(coefs, axis=2)  # (P, K)
    out = np.full(K, -1, dtype=np.int64)
    for k in range(K):
        out[k] = knee_point(terms[:, k], err[:, k], loss_factor=loss_factor)[0]
    return out


def stabilise(coefs: np.ndarray, rows: np.ndarray, score, max_rounds: int | None = None,
              cancel=None) -> tuple[np.ndarray, int]:
    """Make the combined model's held-out rollouts stay bounded.

    Each equation's choice was made with the other states held to the record; together they
    can still diverge.  While the combination does (``score(stack (M, K, F)) -> (err (M,),
    diverged_frac (M,))``), each equation is tried one step sparser (its next row with fewer
    terms) and the move that gives the smallest combined error (undiverged first) is kept.
    Returns ``(rows, number of moves)``.
    """
    P, K, F = coefs.shape
    rows = np.array(rows, dtype=np.int64)
    terms = np.count_nonzero(coefs, axis=2)  # (P, K)

    def combo(r):
        return np.stack([coefs[r[k], k] if r[k] >= 0 else np.zeros(F) for k in range(K)])

    _, div = score(combo(rows)[None])
    moves = 0
    limit = P * K if max_rounds is None else max_rounds
    while div[0] > 0 and moves < limit:
        check_cancel(cancel)
        cands = []
        for k in range(K):
            if rows[k] < 0:
                continue
            sparser = [r for r in range(P) if terms[r, k] < terms[rows[k], k]]
            if not sparser:
                continue
            nxt = max(sparser, key=lambda r: (terms[r, k], -r))  # the next simpler support
            r2 = rows.copy()
            r2[k] = nxt
            cands.append(r2)
        if not cands:
            break
        e, d = score(np.stack([combo(r) for r in cands]))
        best = int(np.lexsort((e, d))[0])
        rows, div = cands[best], d[best:best + 1]
        moves += 1
    return rows, moves


def within_budget(coefs: np.ndarray, err: np.ndarray, rows: np.ndarray, max_terms: int) -> np.ndarray:
    """Rows per equation with at most ``max_terms`` terms in all (a readable model).

    Greedy on the per-equation fronts: while over budget, the equation whose next sparser
    row costs the least error per term removed (``Δ log err / Δ terms``) gives up terms.
    """
    P, K, _ = coefs.shape
    terms = np.count_nonzero(coefs, axis=2)
    rows = np.array(rows, dtype=np.int64)
    tiny = np.finfo(float).tiny

    def total():
        return int(sum(terms[r, k] for k, r in enumerate(rows) if r >= 0))

    while total() > max_terms:
        best, best_cost = None, np.inf
        for k in range(K):
            if rows[k] < 0:
                continue
            cur_t, cur_e = terms[rows[k], k], max(err[rows[k], k], tiny)
            sparser = [r for r in range(P) if terms[r, k] < cur_t and np.isfinite(err[r, k])]
            if not sparser:
                continue
            r = min(sparser, key=lambda r: (err[r, k], -terms[r, k]))  # the best simpler row
            cost = (np.log(max(err[r, k], tiny)) - np.log(cur_e)) / (cur_t - terms[r, k])
            if cost < best_cost:
                best, best_cost = (k, r), cost
        if best is None:
            break
        rows[best[0]] = best[1]
    return rows
