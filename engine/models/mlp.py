"""A plain tanh MLP (the demo's vector field), rebuilt from its config like every model."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn


@dataclass(frozen=True)
class MLPConfig:
    """``n_in -> hidden (tanh) -> ... -> n_out`` with ``layers`` hidden layers."""

    n_in: int = 2
    hidden: int = 64
    n_out: int = 2
    layers: int = 2

    def __post_init__(self) -> None:
        for name in ("n_in", "hidden", "n_out", "layers"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"MLPConfig.{name} must be a positive integer, got {v!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class MLP(nn.Sequential):
    """A ``Sequential`` of Linear/Tanh layers that knows its own sizes.

    A ``Sequential`` subclass, so its weights keep the keys (``0.weight``, ...) and the
    initialisation order of the ``nn.Sequential`` the demo built before it had a config.
    """

    def __init__(self, config: MLPConfig):
        width, mods = config.n_in, []
        for _ in range(config.layers):
            mods += [nn.Linear(width, config.hidden), nn.Tanh()]
            width = config.hidden
        super().__init__(*mods, nn.Linear(width, config.n_out))
        self.config = config

    @classmethod
    def from_config(cls, cfg: dict | MLPConfig) -> "MLP":
        return cls(cfg if isinstance(cfg, MLPConfig) else MLPConfig(**cfg))
