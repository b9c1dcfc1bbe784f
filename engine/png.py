"""A tiny PNG writer (numpy + zlib): grayscale images and tiled grids of them.

The workbench does not depend on Pillow or matplotlib; viewing an MEI only
needs an 8-bit grayscale PNG, which is a few lines of the format.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from engine.atomic import write_bytes

__all__ = ["encode_gray", "write_gray", "tile", "to_uint8"]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def to_uint8(img: np.ndarray, vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """Scale to 0..255 between ``vmin`` and ``vmax`` (default: the image's own min and max)."""
    if np.asarray(img).dtype == np.uint8:
        return np.asarray(img)
    a = np.asarray(img, float)
    lo = np.nanmin(a) if vmin is None else vmin
    hi = np.nanmax(a) if vmax is None else vmax
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return np.clip(np.nan_to_num((a - lo) * scale), 0, 255).round().astype(np.uint8)


def encode_gray(img: np.ndarray, vmin: float | None = None, vmax: float | None = None) -> bytes:
    """PNG bytes of a 2-D array (8-bit grayscale, rows filtered with filter type 0)."""
    a = np.asarray(img)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"encode_gray needs a non-empty 2-D array, got shape {a.shape}")
    u8 = a if a.dtype == np.uint8 else to_uint8(a, vmin, vmax)
    h, w = u8.shape
    raw = np.hstack([np.zeros((h, 1), np.uint8), u8]).tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b"")


def write_gray(path: str | Path, img: np.ndarray, vmin: float | None = None, vmax: float | None = None,
               scale: int = 1) -> Path:
    """Write a grayscale PNG atomically; ``scale`` enlarges pixels by repetition."""
    a = to_uint8(img, vmin, vmax)
    if scale > 1:
        a = np.kron(a, np.ones((scale, scale), np.uint8))
    return write_bytes(path, encode_gray(a))


def tile(images: np.ndarray, cols: int | None = None, pad: int = 1, normalize: str = "each") -> np.ndarray:
    """Arrange (n, h, w) images in a grid (uint8); ``normalize`` "each" or "all" sets the contrast."""
    imgs = np.asarray(images, float)
    if imgs.ndim != 3 or len(imgs) == 0:
        raise ValueError(f"tile needs (n, h, w) images, got shape {imgs.shape}")
    n, h, w = imgs.shape
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), 128, np.uint8)
    lo, hi = (np.nanmin(imgs), np.nanmax(imgs)) if normalize == "all" else (None, None)
    for i, img in enumerate(imgs):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = to_uint8(img, lo, hi)
    return out
