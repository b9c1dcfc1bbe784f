"""The square lattice the connectome's neurons sit on.

Shared by the simulator (``engine.data.pde_n4``) and the model's input field
(``engine.models.gnn``), which must place a neuron at the same point; neither package
may import the other (pyproject.toml's layers), so the one definition lives here.
"""

from __future__ import annotations

import numpy as np


def grid_positions(grid: int) -> np.ndarray:
    """``(grid**2, 2)`` lattice coordinates in [0, 1]^2, row-major."""
    if grid == 0:
        return np.zeros((0, 2))
    u = (np.arange(grid) + 0.5) / grid
    yy, xx = np.meshgrid(u, u, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], axis=1)
