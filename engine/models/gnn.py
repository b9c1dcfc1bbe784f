"""Signalling GNN of seeds 001/003: learns W, embeddings, update/edge functions and the input.

The model predicts the derivative of every neuron's activity::

    dx_i/dt ~ phi*(a_i, x_i [, I*_i(t)]) + Omega*_i(t) * sum_j W*_ij psi*(a_j, x_j)

* ``a_i`` : learned per-neuron embedding (``embedding_dim``, 2 as in the seed);
* ``phi*`` : update MLP; ``psi*`` : edge MLP, shifted so ``psi*(a, 0) = 0``
  (the truth has ``psi(0) = 0``; without it a constant offset could move
  between ``psi*`` and ``phi*``);
* ``W*`` : dense ``(n, n)`` weights with the diagonal masked (no self-edges);
* the input on the first ``grid**2`` neurons is a SIREN of ``(t, x, y)``:
  ``input="modulate"`` gives ``Omega* = 1 + SIREN`` gating the messages (seed
  001), ``input="additive"`` gives ``I* = SIREN`` added to the update,
  ``phi*(a_i, x_i) + I*_i`` (seed 003); ``"none"`` learns no input.

Seed 003 feeds ``I*`` to ``phi*`` as an extra MLP input instead
(``input_through_phi=True``).  That leaves more than the global scale/offset
degeneracy the seed discusses: ``phi*(a, x, I)`` can map ``I*`` to the drive
with a different scale *per embedding*, sign included, and runs were seen to
learn the stimulus with opposite signs for different cell types (per-type
corrected R² 0.3-0.98, global 0.0).  Added to the update, only a global
offset is left (``phi*``'s bias absorbs a constant), which the corrected R²
removes.

Message passing is plain torch, not torch-geometric: with a few thousand
neurons the edge sum is one dense ``(B, n) @ (n, n)`` matmul (16 MiB of weights
at n = 2048), faster than scatter/gather over an edge list and one dependency
less; the edge function depends on the sender only, so it is evaluated once per
neuron rather than once per edge.

Per-group learning rates.  :func:`engine.train.fit` builds one AdamW over all
parameters with one learning rate.  Adam's step is invariant to the scale of
the gradient, so a parameter stored as ``raw`` and used as ``k * raw`` moves
``k`` times faster in its used value.  :func:`set_lr_scale` applies that
re-parametrisation (``torch.nn.utils.parametrize``) to a group and can change
``k`` between training phases while keeping the used values unchanged; the
scale lives in a buffer, so checkpoints carry it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import cast

import torch
from torch import nn
from torch.nn.utils import parametrize

from engine.models.siren import Siren, SirenConfig

GROUPS = ("W", "embedding", "mlp", "siren")


@dataclass
class GNNConfig:
    n_neurons: int
    grid: int = 0
    input: str = "none"  # "none" | "modulate" | "additive"
    embedding_dim: int = 2
    hidden: int = 64
    mlp_layers: int = 3
    siren_hidden: int = 128
    siren_layers: int = 3
    omega0: float = 30.0
    input_through_phi: bool = False  # additive input as an input of phi* (seed 003 literal; see above)
    lr_scales: tuple = (1.0, 1.0, 1.0, 1.0)  # W, embedding, mlp, siren (see set_lr_scale)

    def __post_init__(self) -> None:
        if self.input not in ("none", "modulate", "additive"):
            raise ValueError(f"input must be 'none', 'modulate' or 'additive', got {self.input!r}")
        if self.n_neurons < 2 or self.grid**2 > self.n_neurons:
            raise ValueError(f"bad sizes: n_neurons={self.n_neurons}, grid={self.grid}")
        if self.input != "none" and self.grid < 1:
            raise ValueError("an input field needs grid >= 1")
        self.lr_scales = tuple(float(v) for v in self.lr_scales)
        if len(self.lr_scales) != len(GROUPS) or min(self.lr_scales) <= 0:
            raise ValueError(f"lr_scales needs {len(GROUPS)} positive numbers, got {self.lr_scales}")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["lr_scales"] = list(self.lr_scales)
        return out


def _mlp(n_in: int, hidden: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    width = n_in
    for _ in range(layers - 1):
        mods += [nn.Linear(width, hidden), nn.Tanh()]
        width = hidden
    mods.append(nn.Linear(width, 1))
    return nn.Sequential(*mods)


class _Scale(nn.Module):
    """Parametrisation ``value = k * raw`` (see the module docstring)."""

    k: torch.Tensor  # a buffer: declared for the type checker (nn.Module's attributes are dynamic)

    def __init__(self, k: float):
        super().__init__()
        self.register_buffer("k", torch.tensor(float(k)))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return raw * self.k

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        return value / self.k


def _parametrizations(mod: nn.Module) -> nn.ModuleDict:
    """The ``parametrizations`` ModuleDict that torch's parametrize adds to a module at run time."""
    return cast(nn.ModuleDict, mod.parametrizations)


def _slots(target) -> list[tuple[nn.Module, str]]:
    """(module, parameter name) pairs of a module tree, or the given pairs; parametrisation internals skipped."""
    if not isinstance(target, nn.Module):
        return list(target)
    out = []
    for mod in target.modules():
        if isinstance(mod, (parametrize.ParametrizationList, _Scale)):
            continue
        names = [n for n, _ in mod.named_parameters(recurse=False)]
        if parametrize.is_parametrized(mod):
            names += list(_parametrizations(mod).keys())
        out += [(mod, n) for n in names]
    return out


def set_lr_scale(target, k: float) -> None:
    """Make parameters learn ``k`` times faster under Adam, keeping their values.

    ``target`` is a module (all its parameters) or a list of ``(module, name)``.
    """
    if not k > 0:
        raise ValueError(f"lr scale must be > 0, got {k}")
    for mod, name in _slots(target):
        if parametrize.is_parametrized(mod, name):
            with torch.no_grad():
                value = getattr(mod, name).detach().clone()
                plist = cast(parametrize.ParametrizationList, _parametrizations(mod)[name])
                cast(_Scale, plist[0]).k.fill_(float(k))
                plist.original.copy_(value / k)
        else:
            parametrize.register_parametrization(mod, name, _Scale(k))


class _Graph(nn.Module):
    """W and the embeddings.  A child module: parametrising the root would change its class
    (and checkpoints record the class to rebuild it)."""

    embedding: torch.Tensor
    W: torch.Tensor

    def __init__(self, n: int, embedding_dim: int):
        super().__init__()
        self.embedding = nn.Parameter(0.5 * torch.ones(n, embedding_dim))
        self.W = nn.Parameter(torch.randn(n, n) * (0.1 / n**0.5))


class SignalGNN(nn.Module):
    """See the module docstring.  ``forward(x, t)`` with ``x`` (B, n), ``t`` (B,) in [-1, 1]."""

    # buffers, declared for the type checker (nn.Module's attributes are dynamic)
    offdiag: torch.Tensor
    pos: torch.Tensor  # only with an input field

    def __init__(self, config: GNNConfig):
        super().__init__()
        self.config = config
        c = config
        n = c.n_neurons
        self.graph = _Graph(n, c.embedding_dim)
        self.register_buffer("offdiag", 1.0 - torch.eye(n))
        extra = 1 if self.phi_takes_input else 0
        self.phi = _mlp(1 + c.embedding_dim + extra, c.hidden, c.mlp_layers)
        self.psi = _mlp(1 + c.embedding_dim, c.hidden, c.mlp_layers)
        self.siren: Siren | None = None
        if c.input != "none":
            from engine.lattice import grid_positions

            self.register_buffer("pos", torch.as_tensor(grid_positions(c.grid) * 2 - 1, dtype=torch.float32))
            self.siren = Siren(SirenConfig(in_features=3, hidden=c.siren_hidden, layers=c.siren_layers,
                                           omega0=c.omega0, out_scale=0.1))
        self.apply_lr_scales(c.lr_scales)

    @classmethod
    def from_config(cls, cfg: dict) -> "SignalGNN":
        return cls(GNNConfig(**cfg))

    def groups(self) -> dict[str, list]:
        """The parameter groups that can learn at their own rate."""
        out: dict = {"W": [(self.graph, "W")], "embedding": [(self.graph, "embedding")],
                     "mlp": [*_slots(self.phi), *_slots(self.psi)]}
        if self.siren is not None:
            out["siren"] = self.siren
        return out

    def apply_lr_scales(self, scales) -> None:
        """Set the learning-rate multiplier of each group (W, embedding, mlp, siren)."""
        self.config.lr_scales = tuple(float(s) for s in scales)
        groups = self.groups()
        for name, k in zip(GROUPS, self.config.lr_scales):
            if name in groups:
                set_lr_scale(groups[name], k)

    @property
    def phi_takes_input(self) -> bool:
        return self.config.input == "additive" and self.config.input_through_phi

    # ---- pieces (also used by the analyses to read out what was learned)

    @property
    def W(self) -> torch.Tensor:
        return self.graph.W

    @property
    def embedding(self) -> torch.Tensor:
        return self.graph.embedding

    def W_masked(self) -> torch.Tensor:
        return self.W * self.offdiag

    def input_field(self, t: torch.Tensor) -> torch.Tensor:
        """SIREN output at times ``t`` (B,) for the grid neurons -> (B, grid**2)."""
        if self.siren is None:
            raise ValueError("this model has no input field (input='none')")
        pos = self.pos
        coords = torch.cat([t[:, None, None].expand(-1, pos.shape[0], 1),
                            pos[None].expand(t.shape[0], -1, -1)], dim=-1)
        return self.siren(coords)[..., 0]

    def omega(self, t: torch.Tensor) -> torch.Tensor:
        """Learned Omega* (modulate) or I* (additive) of the grid neurons, (B, grid**2)."""
        f = self.input_field(t)
        return 1.0 + f if self.config.input == "modulate" else f

    def phi_of(self, x: torch.Tensor, a: torch.Tensor, inp: torch.Tensor | None = None) -> torch.Tensor:
        """``phi*(a, x[, I])`` with x (..., n), a (n, d) -> (..., n); ``I`` only with ``input_through_phi``."""
        parts = [x[..., None], a.expand(*x.shape, a.shape[-1])]
        if self.phi_takes_input:
            parts.append((inp if inp is not None else torch.zeros_like(x))[..., None])
        return self.phi(torch.cat(parts, -1))[..., 0]

    def psi_of(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """``psi*(a, x) - psi*(a, 0)`` with x (..., n), a (n, d) -> (..., n)."""
        ae = a.expand(*x.shape, a.shape[-1])
        # psi*(a, 0) depends on the neuron only: evaluated on n points, not B * n
        at_zero = self.psi(torch.cat([torch.zeros_like(a[:, :1]), a], -1))[..., 0]
        return self.psi(torch.cat([x[..., None], ae], -1))[..., 0] - at_zero

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        c = self.config
        a = self.embedding
        g = c.grid**2
        msg = self.psi_of(x, a) @ self.W_masked().T
        inp = None
        if c.input == "modulate":
            msg = torch.cat([msg[:, :g] * self.omega(t), msg[:, g:]], dim=1)
        elif c.input == "additive":
            inp = torch.cat([self.omega(t), torch.zeros_like(x[:, g:])], dim=1)
            if not self.phi_takes_input:
                return self.phi_of(x, a) + inp + msg
        return self.phi_of(x, a, inp) + msg
