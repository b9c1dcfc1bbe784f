"""Draw a 2-D array in the terminal with half blocks: two pixels per character cell.

Each cell is '▀' with the upper pixel as foreground colour and the lower pixel as
background, so a W x H character area shows W x 2H square-ish pixels.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from rich.style import Style
from rich.text import Text

__all__ = ["halfblock", "fit_size", "COLORMAPS"]

# Anchor colours of small colormaps, interpolated linearly (values in 0..1).
COLORMAPS: dict[str, np.ndarray] = {
    "gray": np.array([[0, 0, 0], [255, 255, 255]], float),
    "viridis": np.array(
        [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], float
    ),
    "magma": np.array([[0, 0, 4], [81, 18, 124], [183, 55, 121], [252, 137, 97], [252, 253, 191]], float),
    "coolwarm": np.array([[59, 76, 192], [221, 221, 221], [180, 4, 38]], float),
}


def fit_size(shape: tuple[int, int], width: int, height: int) -> tuple[int, int]:
    """(cols, pixel_rows) to draw an image of ``shape`` in ``width`` x ``height`` cells, aspect kept."""
    h, w = shape
    width, height = max(1, width), max(1, height)
    scale = min(width / w, 2 * height / h)
    cols = max(1, min(width, int(round(w * scale))))
    rows = max(1, min(2 * height, int(round(h * scale))))
    return cols, rows


def _colours(values: np.ndarray, cmap: str) -> np.ndarray:
    anchors = COLORMAPS.get(cmap)
    if anchors is None:
        raise ValueError(f"unknown colormap {cmap!r}; choose from {', '.join(COLORMAPS)}")
    pos = values * (len(anchors) - 1)
    lo = np.clip(np.floor(pos).astype(int), 0, len(anchors) - 2)
    frac = (pos - lo)[..., None]
    return np.round(anchors[lo] * (1 - frac) + anchors[lo + 1] * frac).astype(int)


@lru_cache(maxsize=8192)
def _style(top: tuple[int, int, int], bottom: tuple[int, int, int] | None) -> Style:
    fg = "rgb({},{},{})".format(*top)
    return Style.parse(fg if bottom is None else f"{fg} on rgb({bottom[0]},{bottom[1]},{bottom[2]})")


def halfblock(
    image: np.ndarray,
    width: int,
    height: int,
    cmap: str = "gray",
    vmin: float | None = None,
    vmax: float | None = None,
    keep_aspect: bool = True,
) -> Text:
    """Render ``image`` (H, W) into at most ``width`` x ``height`` character cells.

    Parameters
    ----------
    image : array, shape (H, W)
        Any numeric values; NaN is drawn as the low end.
    width, height : int
        Space available in character cells.
    cmap : str
        "gray" (default), "viridis", "magma" or "coolwarm".
    vmin, vmax : float, optional
        Colour range; default the image's finite min and max.
    keep_aspect : bool
        False stretches the image over the whole area (a neurons x time heatmap).
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2 or img.size == 0:
        raise ValueError(f"halfblock needs a non-empty 2-D array, got shape {img.shape}")
    cols, rows = fit_size(img.shape, width, height) if keep_aspect else (max(1, width), max(1, 2 * height))
    # Nearest-neighbour resampling: cheap and keeps single bright pixels visible.
    ri = np.minimum((np.arange(rows) + 0.5) * img.shape[0] / rows, img.shape[0] - 1).astype(int)
    ci = np.minimum((np.arange(cols) + 0.5) * img.shape[1] / cols, img.shape[1] - 1).astype(int)
    small = img[np.ix_(ri, ci)]
    finite = np.isfinite(small)
    lo = vmin if vmin is not None else (float(small[finite].min()) if finite.any() else 0.0)
    hi = vmax if vmax is not None else (float(small[finite].max()) if finite.any() else 1.0)
    span = hi - lo if hi > lo else 1.0
    norm = np.clip(np.where(finite, (small - lo) / span, 0.0), 0.0, 1.0)
    rgb = _colours(norm, cmap)
    text = Text(no_wrap=True, overflow="crop")
    for r in range(0, rows, 2):
        top = rgb[r]
        bottom = rgb[r + 1] if r + 1 < rows else None
        for c in range(cols):
            t = tuple(int(v) for v in top[c])
            b = tuple(int(v) for v in bottom[c]) if bottom is not None else None
            text.append("▀", _style(t, b))
        if r + 2 < rows:
            text.append("\n")
    return text
