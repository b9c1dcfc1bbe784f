"""The array operations of the batched RK4 loop, on numpy or on torch (one interface, two backends).

:func:`engine.sindy.simulation.simulate` steps every model and start at once with these; numpy
is the CPU default, torch is used when a device is given or ``backend="torch"``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NumpyOps", "TorchOps"]


class NumpyOps:
    """Array operations of the RK4 loop on numpy (the CPU default)."""

    def __init__(self, library):
        self.lib = library

    def asarray(self, a):
        return np.array(a, dtype=np.float64)

    def features(self, z):
        return self.lib.transform_T(z).T  # (B, F), built in cache-sized chunks

    def cat(self, a, b):
        return np.concatenate([a, b], axis=1)

    def take(self, a, idx):
        return a[idx]

    def bmm(self, C, phi):
        G = C.shape[0]
        k = phi.shape[0] // G
        return np.matmul(phi.reshape(G, k, -1), C.transpose(0, 2, 1)).reshape(phi.shape[0], -1)

    def repeat(self, C, k):
        return np.repeat(C, k, axis=0)

    def axpy(self, x, k, a):
        return x + a * k

    def absmax(self, x):
        return float(np.abs(x).max()) if x.size else 0.0

    def bad_rows(self, x, bound):
        return ~np.isfinite(x).all(-1) | (np.abs(x) > bound).any(-1)

    def numpy(self, a):
        return a

    def index(self, idx):
        return idx


class TorchOps:
    """The same operations on torch (used when a device is given or ``backend="torch"``)."""

    def __init__(self, library, device):
        import torch

        self.torch = torch
        self.lib = library
        self.dev = torch.device(device) if device is not None else torch.device("cpu")

    def asarray(self, a):
        return self.torch.as_tensor(np.asarray(a, dtype=np.float64), device=self.dev).clone()

    def features(self, z):
        return self.lib.transform(z)

    def cat(self, a, b):
        return self.torch.cat([a, b], dim=1)

    def take(self, a, idx):
        return a.index_select(0, idx)

    def bmm(self, C, phi):
        G = C.shape[0]
        k = phi.shape[0] // G
        return self.torch.bmm(phi.reshape(G, k, -1), C.transpose(1, 2)).reshape(phi.shape[0], -1)

    def repeat(self, C, k):
        return self.torch.repeat_interleave(C, k, dim=0)

    def axpy(self, x, k, a):
        return self.torch.add(x, k, alpha=a)

    def absmax(self, x):
        return float(x.abs().amax()) if x.numel() else 0.0

    def bad_rows(self, x, bound):
        return (~self.torch.isfinite(x).all(-1) | (x.abs() > bound).any(-1)).cpu().numpy()

    def numpy(self, a):
        return a.cpu().numpy()

    def index(self, idx):
        return self.torch.as_tensor(idx, device=self.dev)
