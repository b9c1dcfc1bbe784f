"""Neurons whose embedding stopped between types, moved to the type whose functions fit them best.

Gradient descent moves an embedding continuously, and a neuron can stop where no type is:
on the CPU default's seed 1, neuron 25 (true type 2) ended at (1.59, 0.17), far from type
2's other seven (1.29, 1.23) and from every other type.  Its psi* then had another shape
than its type's, its column of W carried the largest error (5.8 against ~0.4 for the
others; W R² 0.898, 0.929 without that neuron), and silhouette made it a fifth type.

A move between types is a discrete step that gradient descent does not take, so it is
tried explicitly between the main and the refine phases (:func:`reassign`):

1. the embeddings are clustered by the best silhouette, one-neuron clusters allowed
   (the caller passes the labels): a stray then sits alone, and the clusters of two or
   more are the types;
2. for the neurons farthest from their cluster's median (in units of that cluster's
   median member distance, at most ``max_neurons`` of them), every *other* type's median
   is tried as the neuron's embedding, with its column of W refitted by least squares
   (the prediction is linear in ``W[:, j]``: two forward passes give the fit);
3. a neuron is moved (embedding and refitted column) when a candidate lowers the
   derivative loss on the training frames below the loss of staying (its own column
   refitted too, so both are judged alike).

Only training frames and the training loss are read, never the generator's truth.  A
neuron that stays is left exactly as it was, so a run with no move is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Move:
    """A neuron moved to another type's median: the loss on the training frames before and after."""

    neuron: int
    from_cluster: int
    to_cluster: int
    loss_stay: float
    loss_moved: float


def _loss_with(model, x, y, t, j: int, a_j):
    """Loss with neuron ``j``'s embedding ``a_j`` and its column of W refitted; ``(loss, column)``."""
    import torch

    saved = {k: v.clone() for k, v in model.graph.state_dict().items()}  # raw values: restored exactly
    a0, W0 = model.embedding.detach().clone(), model.W.detach().clone()
    try:
        with torch.no_grad():
            a = a0.clone()
            a[j] = a_j
            model.graph.embedding = a
            W = W0.clone()
            W[:, j] = 0.0
            model.graph.W = W
            p0 = model(x, t)
            W[:, j] = 1.0
            model.graph.W = W
            u = model(x, t) - p0             # each receiver's response to a unit weight from j
            r = y - p0
            col = (r * u).sum(0) / (u * u).sum(0).clamp_min(1e-12)
            col[j] = W0[j, j]                 # the diagonal is masked: keep what was there
            loss = float(((r - u * col) ** 2).mean())
    finally:
        model.graph.load_state_dict(saved)
    return loss, col


def far_neurons(emb: np.ndarray, labels: np.ndarray, max_neurons: int) -> list[int]:
    """Neurons ranked by distance to their cluster's median over the cluster's median member
    distance; a neuron alone in its cluster first."""
    emb = np.asarray(emb, float)
    score = np.zeros(len(emb))
    for c in np.unique(labels):
        sel = labels == c
        d = np.linalg.norm(emb[sel] - np.median(emb[sel], 0), axis=1)
        score[sel] = d / max(float(np.median(d)), 1e-12) if sel.sum() > 1 else np.inf
    return [int(i) for i in np.argsort(-score, kind="stable")[:max(0, int(max_neurons))]]


def reassign(model, x, t, y, labels: np.ndarray, max_neurons: int = 8) -> list[Move]:
    """Move stranded neurons to a better type (see the module docstring); the moves made.

    ``x``, ``t``, ``y``: training frames, their normalised times and derivative targets
    (torch tensors); ``labels`` (n,) the clusters of the embeddings (one-neuron clusters
    allowed).  ``model`` is changed in place (embedding rows, W columns).
    """
    import torch

    moves: list[Move] = []
    if max_neurons <= 0:
        return moves
    emb = model.embedding.detach().numpy().astype(float)
    labels = np.asarray(labels)
    # a type is a cluster of two or more: a lone neuron's cluster is not a place to move to
    medians = {int(c): torch.as_tensor(np.median(emb[labels == c], 0), dtype=model.embedding.dtype)
               for c in np.unique(labels) if (labels == c).sum() >= 2}
    for j in far_neurons(emb, labels, max_neurons):
        stay, _ = _loss_with(model, x, y, t, j, model.embedding.detach()[j].clone())
        best = None
        for c, m in medians.items():
            if c == labels[j]:  # a move within its own type is gradient descent's
                continue
            loss, col = _loss_with(model, x, y, t, j, m)
            if loss < stay and (best is None or loss < best[1]):
                best = (c, loss, col, m)
        if best is None:
            continue
        with torch.no_grad():
            a, W = model.embedding.detach().clone(), model.W.detach().clone()
            a[j], W[:, j] = best[3], best[2]
            model.graph.embedding, model.graph.W = a, W
        moves.append(Move(j, int(labels[j]), int(best[0]), stay, best[1]))
    return moves
