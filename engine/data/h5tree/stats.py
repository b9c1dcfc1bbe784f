"""Summary statistics of a dataset on a bounded sample (a few contiguous blocks)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from engine.data.errors import DataError
from engine.data.h5tree.opening import _get_dataset, open_h5
from engine.data.h5tree.reads import _fits, _read_bounded
from engine.reporting import Cancelled
from engine.text import safe_line

@dataclass(frozen=True)
class SampleStats:
    """Summary statistics of a dataset, computed on a bounded sample.

    Attributes
    ----------
    n_sampled, n_total : int
        Elements read and elements in the dataset.
    exact : bool
        True when the sample is the whole dataset.
    min, max, mean, std : float
        Over finite sampled values (NaN when there are none).
    n_nan : int
        Non-finite values in the sample (NaN or ±inf).
    frac_zero : float
        Fraction of exact zeros in the sample.
    """

    n_sampled: int
    n_total: int
    exact: bool
    min: float
    max: float
    mean: float
    std: float
    n_nan: int
    frac_zero: float

    def as_rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs ready for a table."""
        sample = "all" if self.exact else f"{self.n_sampled:,} of {self.n_total:,}"
        return [
            ("sampled", sample),
            ("min", f"{self.min:.6g}"),
            ("max", f"{self.max:.6g}"),
            ("mean", f"{self.mean:.6g}"),
            ("std", f"{self.std:.6g}"),
            ("zeros", f"{100 * self.frac_zero:.1f} %"),
            ("non-finite", f"{self.n_nan:,}"),
        ]


def _check_numeric(ds: h5py.Dataset) -> None:
    name = safe_line(ds.name)
    if ds.dtype.kind not in "biuf":
        raise DataError(f"{ds.file.filename}: {name!r} has dtype {ds.dtype}; statistics and plots need numbers")
    if ds.shape is None:
        raise DataError(f"{ds.file.filename}: {name!r} is empty (no data, only a dtype)")
    if math.prod(ds.shape) == 0:
        raise DataError(f"{ds.file.filename}: {name!r} is empty")


def _sample_blocks(shape: tuple[int, ...], max_elems: int, n_blocks: int = 8) -> list[tuple]:
    """Selections (tuples of slices) whose union has at most ~max_elems elements.

    Contiguous blocks along axis 0 keep the number of chunks touched small (a
    strided pick along axis 0 would read every chunk of a chunked dataset);
    trailing axes are strided when even one row is too big.
    """
    if not shape:
        return [()]
    row = math.prod(shape[1:]) if len(shape) > 1 else 1
    # Trailing axes: stride them until one row fits in the budget / n_blocks.
    tail: list[slice] = []
    budget_row = max(1, max_elems // n_blocks)
    steps = [1] * (len(shape) - 1)
    row_eff = row
    for ax in range(len(shape) - 1):
        if row_eff <= budget_row:
            break
        n = shape[ax + 1]
        want = max(1, math.ceil(row_eff / budget_row))
        steps[ax] = min(n, want)
        row_eff = row_eff // n * math.ceil(n / steps[ax])
    tail = [slice(None, None, s) for s in steps]
    rows_total = max(1, max_elems // max(1, row_eff))
    n0 = shape[0]
    if rows_total >= n0:
        return [(slice(None),) + tuple(tail)]
    k = min(n_blocks, rows_total)
    block = max(1, rows_total // k)
    starts = np.linspace(0, n0 - block, k).astype(np.int64)
    return [(slice(int(s), int(s) + block),) + tuple(tail) for s in np.unique(starts)]


def sample_stats(path: str | Path, name: str, max_elems: int = 1_000_000, cancel: Any = None,
                 follow_external: bool = False) -> SampleStats:
    """Summary statistics of dataset ``name`` on at most about ``max_elems`` elements.

    The sample is a few contiguous blocks spread along the first axis (strided
    along the others when a single row is too large), so the cost is bounded
    whatever the dataset size; with large chunks the sample shrinks until it
    touches at most :data:`READ_BUDGET_BYTES` of chunk data.  ``cancel`` (an
    event) is checked between reads.  Data stored in other files (external raw
    storage, virtual datasets) is read only with ``follow_external=True``.
    """
    if max_elems < 1:
        raise DataError(f"max_elems must be positive, got {max_elems}")
    path = Path(path)
    with open_h5(path) as fh:
        ds = _get_dataset(fh, name, follow_external)
        _check_numeric(ds)
        shape = tuple(ds.shape)
        total = math.prod(shape)
        blocks = _sample_blocks(shape, max_elems)
        while max_elems > 1 and not all(_fits(ds, sel) for sel in blocks):
            max_elems //= 4
            blocks = _sample_blocks(shape, max_elems)
        count = nan = zeros = 0
        nf, mean, m2 = 0, 0.0, 0.0
        lo, hi = math.inf, -math.inf
        for sel in blocks:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            x = _read_bounded(ds, sel, cancel).ravel()
            count += x.size
            finite = np.isfinite(x)
            nan += int(x.size - finite.sum())
            xf = x[finite]
            zeros += int(np.count_nonzero(xf == 0))
            if xf.size:
                # Chan et al. merge of (n, mean, M2): stable for large offsets.
                bm = float(xf.mean())
                bm2 = float(np.square(xf - bm).sum())
                n = nf + xf.size
                delta = bm - mean
                mean += delta * xf.size / n
                m2 += bm2 + delta * delta * nf * xf.size / n
                nf = n
                lo = min(lo, float(xf.min()))
                hi = max(hi, float(xf.max()))
        var = m2 / nf if nf else math.nan
        mean = mean if nf else math.nan
        return SampleStats(
            n_sampled=count,
            n_total=total,
            exact=count >= total,
            min=lo if nf else math.nan,
            max=hi if nf else math.nan,
            mean=mean,
            std=math.sqrt(var) if nf else math.nan,
            n_nan=nan,
            frac_zero=zeros / count if count else math.nan,
        )
