"""A parallel setting as typed data: the backend's name, a cluster address, local workers;
and whether the backend's package is installed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.errors import ParallelError

BACKENDS = ("loky", "dask", "ray")
MAX_WORKERS = 1024  # local worker processes; a session cannot ask this machine for more


@dataclass(frozen=True)
class ParallelConfig:
    backend: str = "loky"
    address: str | None = None  # dask scheduler / ray cluster; None: start one locally
    n_workers: int | None = None  # local workers (LocalCluster, loky); None: all cores

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ParallelError(f"unknown parallel backend {self.backend!r} (known: {', '.join(BACKENDS)})")
        if self.n_workers is not None and (isinstance(self.n_workers, bool)
                                           or not isinstance(self.n_workers, int) or self.n_workers < 1):
            raise ParallelError(f"n_workers must be a positive integer, got {self.n_workers!r}")
        if self.n_workers is not None and self.n_workers > MAX_WORKERS:
            raise ParallelError(f"n_workers must be at most {MAX_WORKERS}, got {self.n_workers}")
        if self.address is not None and (not isinstance(self.address, str) or not self.address.strip()):
            raise ParallelError(f"address must be a non-empty string, got {self.address!r}")
        if self.address is not None and self.backend == "loky":
            raise ParallelError("an address needs the dask or ray backend (loky runs on this machine)")


def backend_from_config(values: dict[str, Any] | None) -> ParallelConfig:
    """A :class:`ParallelConfig` from stored or typed values (strings are parsed)."""
    values = dict(values or {})
    unknown = set(values) - {"backend", "address", "n_workers"}
    if unknown:
        raise ParallelError(f"unknown parallel setting(s) {sorted(unknown)} (known: backend, address, n_workers)")
    n = values.get("n_workers")
    if isinstance(n, str):
        n = n.strip()
        if n.lower() in ("", "none", "auto"):
            n = None
        else:
            try:
                n = int(n)
            except ValueError:
                raise ParallelError(f"n_workers must be a positive integer, got {n!r}") from None
    addr = values.get("address")
    if isinstance(addr, str) and addr.strip().lower() in ("", "none", "local"):
        addr = None
    return ParallelConfig(backend=str(values.get("backend", "loky")).strip().lower(), address=addr, n_workers=n)


_EXTRA = {"dask": ("distributed", "dask"), "ray": ("ray", "ray")}


def check_installed(backend: str) -> None:
    """Raise :class:`ParallelError` with the pip line if the backend's package is missing."""
    import importlib.util

    if backend in _EXTRA:
        module, extra = _EXTRA[backend]
        if importlib.util.find_spec(module) is None:
            raise ParallelError(f'the {backend} backend needs {module}: pip install "neuro-workbench[{extra}]"')
