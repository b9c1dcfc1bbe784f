"""Each job works in its own folder; a step reads what its own job, or a named earlier one, wrote.

A job's folder is ``artifacts/<analysis>/jobs/<job id>/`` (a resumed job continues in the
folder of the job it resumes).  Two jobs of one analysis never share files, so a second
run with other settings can neither wipe the first one's checkpoints nor feed it its data.

A job that starts part-way (``workbench run demo --step evaluate``) needs what earlier
steps made.  Its folder is seeded, before it starts, from one earlier job: the one named
with ``--from JOB``, else the newest ended job of the analysis whose folder holds the
output of the latest step this job needs.  Seeding hard-links that job's large files (no
copy, no extra disk; a copy where links are impossible) and copies the small ones.  Links
are safe because large files in a job folder (data, checkpoints, models) are replaced —
written beside and renamed (:mod:`engine.atomic`) — never rewritten in place, so the
earlier job's files never change; small files (JSON, CSV) are sometimes rewritten in place,
so they are copied.

Which step wrote which file is kept in the folder's manifest (``.steps.json``): the runner
compares the folder before and after each step that succeeds.  Only the files of the
steps this job needs and does not run itself are seeded, so a re-run of ``evaluate``
never shows the old job's evaluation as its own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.atomic import write_json

if TYPE_CHECKING:  # pragma: no cover
    from engine.session import Job, Session

MANIFEST = ".steps.json"
COPY_BELOW = 1 << 20  # smaller input files are copied, larger ones hard-linked
_TMP = re.compile(r"^\..+\.tmp$")  # engine.atomic's temp files: never part of a step's output


@dataclass(frozen=True)
class Inputs:
    """Where a job's inputs come from: an earlier job's folder and the steps taken from it."""

    job_id: str | None  # None: the shared folder of jobs from before per-job folders
    folder: Path
    steps: tuple[str, ...]
    files: tuple[str, ...] = field(default=(), repr=False)

    def describe(self) -> str:
        whose = f"job {self.job_id}" if self.job_id else f"the shared folder {self.folder.name}/ of older jobs"
        return f"inputs from {whose} (steps {', '.join(self.steps)})"


# -- the manifest ----------------------------------------------------------------------


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return {"steps": {}}
    if not isinstance(data, dict) or not isinstance(data.get("steps"), dict):
        return {"steps": {}}
    return data


def _write_manifest(folder: Path, data: dict[str, Any]) -> None:
    write_json(Path(folder) / MANIFEST, data)


def snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every file under ``folder`` (relative path -> inode, mtime, size), tmp files aside."""
    folder = Path(folder)
    out: dict[str, tuple[int, int, int]] = {}
    if not folder.is_dir():
        return out
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            if name == MANIFEST or _TMP.match(name):
                continue
            p = Path(dirpath) / name
            try:
                st = p.lstat()
            except OSError:
                continue
            out[str(p.relative_to(folder))] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


def record_step(folder: Path, step: str, job_id: str, before: dict[str, tuple[int, int, int]]) -> list[str]:
    """After ``step`` succeeded: note the files it made or changed as its output."""
    after = snapshot(folder)
    changed = {rel for rel, st in after.items() if before.get(rel) != st}
    data = read_manifest(folder)
    steps: dict[str, Any] = data["steps"]
    for name, entry in list(steps.items()):
        if name != step:  # a file rewritten by this step is now this step's
            entry["files"] = [f for f in entry.get("files", []) if f in after and f not in changed]
    kept = {f for f in steps.get(step, {}).get("files", []) if f in after}  # a resumed step's earlier part
    steps.pop(step, None)  # re-inserted last: the manifest lists steps in the order they ran
    steps[step] = {"job": job_id, "files": sorted(kept | changed)}
    _write_manifest(folder, data)
    return sorted(changed)


def producers(folder: Path) -> set[str]:
    """The jobs whose output this folder holds (its stored equations and tables are theirs)."""
    return {e.get("job") for e in read_manifest(folder)["steps"].values() if e.get("job")}


# -- choosing and seeding inputs -------------------------------------------------------


def needed_steps(order: list[str], steps: list[str]) -> list[str]:
    """The analysis's steps before the last one this job runs that it does not run itself."""
    if not steps:
        return []
    last = max(order.index(s) for s in steps)
    return [s for s in order[:last] if s not in steps]


def _from_job(session: "Session", job: "Job", needed: list[str]) -> Inputs | None:
    folder = session.job_dir(job)
    entries = read_manifest(folder)["steps"]
    take = tuple(s for s in needed if s in entries)
    if not take:
        return None
    files = tuple(f for s in take for f in entries[s].get("files", []))
    return Inputs(job.id, folder, take, files)


# settings that say where or how fast a step ran, not what it made
RUN_ONLY = frozenset({"device", "nproc", "log_every", "amp"})


def differences(made: dict[str, Any], expect: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The settings an earlier job made its files with that differ from ``expect``
    (a key the job did not record, from before it was a parameter, is no difference)."""
    return {k: (made[k], v) for k, v in expect.items() if k not in RUN_ONLY and k in made and made[k] != v}


def _had(diff: dict[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{k}={a!r}" for k, (a, _) in diff.items())


def _asked(diff: dict[str, tuple[Any, Any]]) -> str:
    return " ".join(f"{k}={b}" for k, (_, b) in diff.items())


def choose(session: "Session", analysis: str, order: list[str], steps: list[str],
           from_job: str | None = None, expect: dict[str, Any] | None = None) -> Inputs | None:
    """The earlier job a new job of ``steps`` takes its inputs from (None: it needs none,
    or no earlier job made them — the step then says what to run first).

    ``expect``: the settings of the steps it needs, as this job has them (``seed=1``,
    ``frames=…``); only a job that made its files with the same settings is taken, so a
    ``--step train --set seed=1`` never trains on seed 0's data.  ``--from`` overrides."""
    from engine.analyses.base import ParamError

    needed = needed_steps(order, steps)
    if from_job is not None:
        job = session.job(from_job)  # SessionError: no such job
        if job.analysis != analysis:
            raise ParamError(f"--from {from_job}: that job ran {job.analysis!r}, not {analysis!r}")
        if not needed:
            raise ParamError(f"--from {from_job}: the steps {', '.join(steps)} take no earlier step's output")
        diff = differences(job.params or {}, expect or {})
        if diff:
            raise ParamError(f"--from {from_job}: that job made its files with {_had(diff)}, not {_asked(diff)}")
        found = _from_job(session, job, needed)
        if found is None:
            raise ParamError(f"--from {from_job}: that job finished none of the steps this one needs "
                             f"({', '.join(needed)})")
        return found
    if not needed:
        return None
    ended = [j for j in reversed(session.jobs()) if j.analysis == analysis and not j.active and j.workdir]
    made: dict[str, dict] = {}  # each folder's manifest read once, and only as far as the search goes
    mismatch: tuple[Job, dict] | None = None
    for step in reversed(needed):  # the newest job that made the latest step needed
        for job in ended:
            if job.id not in made:
                made[job.id] = read_manifest(session.job_dir(job))["steps"]
            if step in made[job.id]:
                diff = differences(job.params or {}, expect or {})
                if not diff:
                    return _from_job(session, job, needed)
                mismatch = mismatch or (job, diff)
    if mismatch is not None:
        job, diff = mismatch
        raise ParamError(f"no earlier job made {', '.join(needed)} with {_asked(diff)} (the newest, {job.id}, had "
                         f"{_had(diff)}): run those steps with these settings first, or pass --from JOB")
    return _legacy(session, analysis, needed)


def _legacy(session: "Session", analysis: str, needed: list[str]) -> Inputs | None:
    """Sessions from before per-job folders kept every job's files in artifacts/<analysis>/."""
    folder = session.artifacts / analysis
    files = tuple(rel for rel in snapshot(folder) if not rel.startswith("jobs" + os.sep))
    if not files:
        return None
    return Inputs(None, folder, tuple(needed), files)


def seed(dest: Path, inputs: Inputs) -> None:
    """Put the input files into a new job's folder (hard links) and note their steps."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for rel in inputs.files:
        src, dst = inputs.folder / rel, dest / rel
        if not src.is_file():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.stat().st_size < COPY_BELOW:  # small files (JSON, CSV) may be rewritten in place
            shutil.copy2(src, dst)
            continue
        try:
            os.link(src, dst)
        except OSError:  # another filesystem, or links not allowed: copy
            shutil.copy2(src, dst)
    entries = read_manifest(inputs.folder)["steps"]
    steps = {s: {"job": entries.get(s, {}).get("job", inputs.job_id),
                 "files": list(entries[s]["files"]) if s in entries else list(inputs.files)}
             for s in inputs.steps}
    _write_manifest(dest, {"steps": steps, "inputs": {"job": inputs.job_id, "steps": list(inputs.steps),
                                                       "line": inputs.describe()}})


def note_missing(dest: Path, analysis: str, needed: list[str]) -> None:
    """No earlier job made what this one needs: say so in its manifest (the runner logs it)."""
    if not needed:
        return
    line = (f"no earlier {analysis} job has run {', '.join(needed)}: this job starts from an empty "
            "folder (run those steps first, or name a job with --from)")
    dest.mkdir(parents=True, exist_ok=True)
    _write_manifest(dest, {"steps": {}, "inputs": {"job": None, "steps": [], "line": line}})


def inputs_line(folder: Path) -> tuple[str, str] | None:
    """(level, line) saying where a job's inputs came from, for its log."""
    info = read_manifest(folder).get("inputs")
    if not isinstance(info, dict) or not info.get("line"):
        return None
    return ("info" if info.get("job") or info.get("steps") else "warning"), str(info["line"])
