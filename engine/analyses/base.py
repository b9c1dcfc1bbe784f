"""What an analysis is: a name and an ordered list of named steps.

A step is a plain function ``fn(ctx: StepContext, params: dict) -> dict`` whose
returned dict is JSON-able (it becomes the job's result and feeds ``--json``).
The steps of one job share ``ctx.workdir`` (the job's own folder,
``artifacts/<analysis>/jobs/<job>/``) and pass work on through files there: a
later step, or a resumed one, finds what an earlier step wrote even if the
process that wrote it is long gone.  A job that starts part-way finds there the
files of an earlier job's steps (see ``engine.jobs.folders``).

Step functions import their heavy dependencies (torch, ncps...) inside the
function so that listing analyses stays instant.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from engine.errors import ParamError as ParamError  # re-exported: its old home
from engine.reporting import NullReporter, Reporter

if TYPE_CHECKING:  # pragma: no cover
    from engine.session import Session, TableMeta


@dataclass(frozen=True)
class Param:
    """One parameter's declaration: its default (whose type is the parameter's type), a help
    line, and what values it accepts. ``--set``, the TUI's parameter form and the README table
    read it; :meth:`check` is the one place a value is coerced and range-checked."""

    default: Any
    help: str = ""
    lo: float | None = None  # inclusive numeric bounds; None = unbounded
    hi: float | None = None
    choices: tuple[Any, ...] | None = None

    @property
    def kind(self) -> str:
        """The type's name as a user reads it: bool, int, float, str, list[int], ..."""
        d = self.default
        if isinstance(d, (list, tuple)):
            inner = type(d[0]).__name__ if d else "str"
            return f"list[{inner}]"
        if d is None:
            return "str"
        return type(d).__name__

    def describe(self) -> str:
        """What values are allowed, in a few words (for help and the parameter form)."""
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.lo is not None and self.hi is not None:
            return f"{_num(self.lo)} ≤ x ≤ {_num(self.hi)}"
        if self.lo is not None:
            return f"≥ {_num(self.lo)}"
        if self.hi is not None:
            return f"≤ {_num(self.hi)}"
        return ""

    def check(self, value: Any) -> Any:
        """Coerce ``value`` (a string from --set or a form, or a Python value) to this
        parameter's type and check its range; raise ParamError saying what is wrong."""
        if isinstance(value, str) and not isinstance(self.default, str) and self.default is not None:
            value = coerce(value, self.default)
        else:
            value = _coerce_value(value, self.default)
        items = value if isinstance(value, (list, tuple)) else (value,)
        for v in items:
            self._check_one(v)
        return value

    def _check_one(self, v: Any) -> None:
        if self.choices is not None and v not in self.choices:
            allowed = ", ".join(str(c) for c in self.choices)
            raise ParamError(f"must be one of {allowed}, got {v!r}")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return
        if self.lo is not None and v < self.lo:
            raise ParamError(f"must be {self.describe()}, got {v!r}")
        if self.hi is not None and v > self.hi:
            raise ParamError(f"must be {self.describe()}, got {v!r}")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def as_param(value: Any) -> Param:
    """A Step.defaults entry is a plain default or a Param; give the Param."""
    return value if isinstance(value, Param) else Param(value)


def _coerce_value(value: Any, default: Any) -> Any:
    """A Python value (from a session or a caller) to the default's type; ints pass as floats."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise ParamError(f"expected true/false, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
            raise ParamError(f"expected an integer, got {value!r}")
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError(f"expected a number, got {value!r}")
        out = float(value)
        if out != out or out in (float("inf"), float("-inf")):
            raise ParamError(f"expected a finite number, got {value!r}")
        return out
    if isinstance(default, (list, tuple)):
        if isinstance(value, str):
            return coerce(value, default)
        if not isinstance(value, (list, tuple)):
            raise ParamError(f"expected a list, got {value!r}")
        inner = default[0] if default else None
        return type(default)(_coerce_value(v, inner) for v in value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ParamError(f"expected text, got {value!r}")
        return value
    return value


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

    def params(self, steps: list[str] | None = None) -> dict[str, Param]:
        """Merged parameter specs of the given steps (all by default); the first declaration wins."""
        merged: dict[str, Param] = {}
        for s in self.steps:
            if steps is None or s.name in steps:
                for k, v in s.defaults.items():
                    if k not in merged:
                        merged[k] = as_param(v)
        return merged

    def defaults(self) -> dict[str, Any]:
        """Merged plain default values of every step; later steps do not override."""
        return {k: p.default for k, p in self.params().items()}


@dataclass
class StepContext:
    """Everything a step may touch: where to write, whom to tell, where results go."""

    workdir: Path
    reporter: Reporter = field(default_factory=NullReporter)
    session: "Session | None" = None
    job_id: str | None = None
    resuming: bool = False  # this job resumes an interrupted one: continue from checkpoints
    # the jobs whose stored results (equations, tables) this step may read: its own, those
    # whose files its folder took as inputs, and the job it resumes
    inputs_from: tuple[str, ...] = ()

    def checkpoint_dir(self, name: str) -> Path:
        """A step's checkpoint folder inside this job's own folder: kept when resuming (the
        step continues from it), emptied otherwise (a job that took an earlier job's files
        never silently continues that job's training).  No other job shares it."""
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

    def save_table(self, name: str, table: Any, *, meta: TableMeta | None = None) -> None:
        """Store a metrics table (a pandas DataFrame) in the session, tagged with this job,
        with what it says about its scores (``meta``: which way is better, what NaN means)."""
        if self.session is not None:
            self.session.save_table(name, table, job_id=self.job_id, meta=meta)

    def recording_instead(self, p: dict[str, Any]) -> dict[str, Any] | None:
        """A generate step's result when ``data=`` names a recording (the other steps read
        it, so nothing is made); None when there is something to generate."""
        if not p.get("data"):
            return None
        self.reporter.log(f"data={p['data']}: nothing generated, the steps read that file")
        return {"data": str(p["data"]), "generated": False}

    def no_truth(self, what: str) -> dict[str, Any]:
        """A truth step's result on a recording: nothing to score against, and the analysis
        before it stands (the job finishes, saying why)."""
        why = f"a recording stores no {what}: nothing to score against (the truth step needs generated data)"
        self.reporter.log(why, level="warning")
        return {"truth": "skipped", "truth_skipped": why}

    def save_equations(self, name: str, payload: dict) -> None:
        """Store a fitted equation set (JSON-able dict, see engine.sindy.export) in the session."""
        if self.session is not None:
            self.session.save_equations(name, payload, job_id=self.job_id)

    def equations(self, name: str) -> dict | None:
        """The newest equation set ``name`` that this job, or a job it took its inputs from,
        stored; None if none did (never another job's that happens to be newer)."""
        if self.session is None:
            return None
        rows = self.session.equations(name)
        if self.job_id is not None:
            mine = {self.job_id, *self.inputs_from}
            rows = [r for r in rows if r["job_id"] in mine]
        return rows[-1]["data"] if rows else None


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


def parse_sets(pairs: list[str], specs: dict[str, Any]) -> dict[str, Any]:
    """Parse ``key=value`` strings against known parameters (``Analysis.params()`` or plain
    defaults); coerce each to its type and check its range; unknown keys are errors."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParamError(f"--set expects key=value, got {pair!r}")
        if key not in specs:
            known = ", ".join(sorted(specs)) or "none"
            raise ParamError(f"unknown parameter {key!r} (known: {known})")
        try:
            out[key] = as_param(specs[key]).check(value)
        except ParamError as exc:
            raise ParamError(f"{key}: {exc}") from None
    return out


def validate_params(analysis: Analysis, params: dict[str, Any],
                    steps: list[str] | None = None) -> dict[str, Any]:
    """Check a job's full parameters before any step runs: each declared one is coerced and
    range-checked (a ParamError names the user's key). Keys the analysis does not declare pass
    through unchanged (the runner rejects unknown overrides itself)."""
    specs = analysis.params(steps)
    out = dict(params)
    for key, value in params.items():
        spec = specs.get(key)
        if spec is None:
            continue
        try:
            out[key] = spec.check(value)
        except ParamError as exc:
            raise ParamError(f"{key}: {exc}") from None
    return out
