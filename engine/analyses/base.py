"""What an analysis is: a name and an ordered list of named steps.

A step is a plain function ``fn(ctx: StepContext, params: dict) -> dict`` whose
returned dict is JSON-able (it becomes the job's result and feeds ``--json``).
Steps of one analysis share ``ctx.workdir`` (``artifacts/<analysis>/``) and pass
work on through files there: a later step, or a resumed one, finds what an
earlier step wrote even if the process that wrote it is long gone.

Step functions import their heavy dependencies (torch, ncps...) inside the
function so that listing analyses stays instant.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from engine.reporting import NullReporter, Reporter

if TYPE_CHECKING:  # pragma: no cover
    from engine.session import Session


class ParamError(ValueError):
    """A parameter given with --set (or in the TUI) is unknown or has the wrong type."""


@dataclass(frozen=True)
class Step:
    name: str
    func: str  # "module:function", imported lazily when the step runs
    help: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Callable[["StepContext", dict], dict]:
        module, _, attr = self.func.partition(":")
        return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Analysis:
    name: str
    title: str
    steps: tuple[Step, ...]
    help: str = ""
    # figures drawn from the steps' artifacts (engine.views.View); the Results and
    # Training panes list the views whose ``pane`` is theirs
    views: tuple[Any, ...] = ()

    def views_for(self, pane: str) -> list[Any]:
        return [v for v in self.views if getattr(v, "pane", "results") == pane]

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        names = ", ".join(s.name for s in self.steps)
        raise ParamError(f"analysis {self.name!r} has no step {name!r} (steps: {names})")

    def defaults(self, steps: list[str] | None = None) -> dict[str, Any]:
        """Merged defaults of the given steps (all by default); later steps do not override."""
        merged: dict[str, Any] = {}
        for s in self.steps:
            if steps is None or s.name in steps:
                for k, v in s.defaults.items():
                    merged.setdefault(k, v)
        return merged


@dataclass
class StepContext:
    """Everything a step may touch: where to write, whom to tell, where results go."""

    workdir: Path
    reporter: Reporter = field(default_factory=NullReporter)
    session: "Session | None" = None
    job_id: str | None = None
    resuming: bool = False  # this job resumes an interrupted one: continue from checkpoints

    def fresh_dir(self, name: str) -> Path:
        """A step's checkpoint folder: kept when resuming, emptied for a fresh run (so a
        re-run with new parameters never silently continues an old one)."""
        import shutil

        d = self.workdir / name
        if not self.resuming and d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)

    @property
    def cancelled(self) -> bool:
        return self.reporter.cancelled

    def save_table(self, name: str, table: Any) -> None:
        """Store a metrics table (a pandas DataFrame) in the session, tagged with this job."""
        if self.session is not None:
            self.session.save_table(name, table, job_id=self.job_id)

    def save_equations(self, name: str, payload: dict) -> None:
        """Store a fitted equation set (JSON-able dict, see engine.sindy.export) in the session."""
        if self.session is not None:
            self.session.save_equations(name, payload, job_id=self.job_id)


def coerce(value: str, default: Any) -> Any:
    """Turn a ``--set key=value`` string into the type of the step's default."""
    if isinstance(default, bool):
        low = value.strip().lower()
        if low in {"1", "true", "yes", "on"}:
            return True
        if low in {"0", "false", "no", "off"}:
            return False
        raise ParamError(f"expected true/false, got {value!r}")
    if isinstance(default, int):
        try:
            return int(value)
        except ValueError:
            raise ParamError(f"expected an integer, got {value!r}") from None
    if isinstance(default, float):
        try:
            out = float(value)
        except ValueError:
            raise ParamError(f"expected a number, got {value!r}") from None
        if out != out or out in (float("inf"), float("-inf")):
            raise ParamError(f"expected a finite number, got {value!r}")
        return out
    if isinstance(default, (list, tuple)):
        parts = [p for p in value.split(",") if p.strip()]
        inner = default[0] if default else ""
        return type(default)(coerce(p.strip(), inner) for p in parts)
    if default is None or isinstance(default, str):
        return value
    raise ParamError(f"cannot set a parameter of type {type(default).__name__} from the command line")


def parse_sets(pairs: list[str], defaults: dict[str, Any]) -> dict[str, Any]:
    """Parse ``key=value`` strings against known defaults; unknown keys are errors."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParamError(f"--set expects key=value, got {pair!r}")
        if key not in defaults:
            known = ", ".join(sorted(defaults)) or "none"
            raise ParamError(f"unknown parameter {key!r} (known: {known})")
        try:
            out[key] = coerce(value, defaults[key])
        except ParamError as exc:
            raise ParamError(f"{key}: {exc}") from None
    return out
