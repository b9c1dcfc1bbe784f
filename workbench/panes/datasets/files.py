"""Which files the Datasets pane lists, how they are labelled, and what a tree node points at."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from engine.data import h5tree

__all__ = ["H5_SUFFIXES", "NodeRef", "find_hdf5", "file_labels", "fmt_bytes", "heatmap_axes"]

H5_SUFFIXES = {".h5", ".hdf5", ".hdf", ".he5", ".nc", ".nwb"}  # NWB 2 files are HDF5


def _identity(p: Path) -> tuple[int, int] | Path:
    """(st_dev, st_ino): hard links to one file (each job folder links its inputs) share it."""
    try:
        st = os.stat(p)
    except OSError:
        return p  # missing or unreadable: told apart by its path
    return (st.st_dev, st.st_ino)


def find_hdf5(paths: list[Path], limit: int = 500) -> list[Path]:
    """HDF5 files among ``paths``: files as given, folders searched (recursively) by suffix.

    A file reached by several hard links (or named twice) is listed once, at the
    first path found.
    """
    found: list[Path] = []
    seen: set = set()

    def add(p: Path) -> None:
        key = _identity(p)
        if key not in seen:
            seen.add(key)
            found.append(p)

    for p in paths:
        p = Path(p)
        if p.is_dir():
            for q in sorted(q for q in p.rglob("*") if q.suffix.lower() in H5_SUFFIXES and q.is_file()):
                add(q)
        else:
            add(p)  # a named file is shown even if it does not exist (error on expand)
        if len(found) >= limit:
            break
    return found[:limit]


def file_labels(files: list[Path]) -> list[str]:
    """Tree labels: the file name, with its folder when several files share a name (each job
    writes its own ``demo.h5``); a job folder is shown by its id's last part."""
    counts = Counter(f.name for f in files)
    out = []
    for f in files:
        if counts[f.name] == 1:
            out.append(f.name)
        else:
            parent = f.parent.name
            out.append(f"{f.name}  {parent.rsplit('-', 1)[-1] if parent.count('-') >= 2 else parent}")
    return out


def heatmap_axes(shape: tuple[int, ...]) -> tuple[int, int]:
    """The two longest axes, in their order (ties: the later axes, as before)."""
    order = sorted(range(len(shape)), key=lambda a: (shape[a], a), reverse=True)[:2]
    return tuple(sorted(order))  # type: ignore[return-value]


@dataclass(frozen=True)
class NodeRef:
    """What a tree node points at."""

    file: Path
    name: str  # path inside the file, "/" for the file itself
    kind: str  # "file", "group", "dataset", "eda", "more"
    info: h5tree.NodeInfo | None = None


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
