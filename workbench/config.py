"""User settings: a TOML file in the platform's config folder.

    # ~/.config/workbench/config.toml  (or $WORKBENCH_CONFIG)
    theme = "nord"          # any Textual theme name
    bell = true             # ring the terminal bell when a job ends
    [keys]                  # binding id = key(s), comma-separated
    jobs = "j"
    quit = "ctrl+q"

Validation is strict (unknown settings are errors, as in harlequin), but a bad
file never stops the workbench: :func:`load` returns the defaults and one
warning line saying what is wrong and where.  No textual import here: the CLI
reads it too.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (requires-python's floor) has no tomllib
    import tomli as tomllib

ENV = "WORKBENCH_CONFIG"

# binding ids the [keys] table may remap, with what they do (the help screen and
# `workbench config` show the same list); ids are set on the bindings in app.py
# and screens/jobs.py.
KEY_ACTIONS: dict[str, str] = {
    "pane.datasets": "show the Datasets pane",
    "pane.training": "show the Training pane",
    "pane.equations": "show the Equations pane",
    "pane.results": "show the Results pane",
    "run": "run an analysis or step (command palette)",
    "jobs": "open the jobs screen",
    "screenshot": "save the screen as SVG and text",
    "report": "export the session report (Markdown)",
    "help": "show the keys",
    "quit": "quit (jobs keep running)",
    "jobs.cancel": "jobs screen: cancel the selected job",
    "jobs.resume": "jobs screen: resume the selected job",
    "jobs.delete": "jobs screen: delete the selected job",
    "jobs.start": "jobs screen: start a job (command palette)",
}


class ConfigError(ValueError):
    """The config file is unreadable or invalid; the message names the problem."""


@dataclass
class Config:
    theme: str | None = None
    bell: bool = False
    keys: dict[str, str] = field(default_factory=dict)
    path: Path | None = None  # where it was read from (None: defaults)


def config_path() -> Path:
    """$WORKBENCH_CONFIG, else ``config.toml`` in ``platformdirs.user_config_dir("workbench")``."""
    env = os.environ.get(ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("workbench")) / "config.toml"


def parse(text: str, path: Path | None = None) -> Config:
    """Parse and validate config text; raise :class:`ConfigError` on any problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}") from None
    cfg = Config(path=path)
    unknown = set(data) - {"theme", "bell", "keys"}
    if unknown:
        raise ConfigError(f"unknown setting(s) {sorted(unknown)} (known: theme, bell, keys)")
    if "theme" in data:
        if not isinstance(data["theme"], str) or not data["theme"]:
            raise ConfigError("theme must be a theme name in quotes, e.g. theme = \"nord\"")
        cfg.theme = data["theme"]
    if "bell" in data:
        if not isinstance(data["bell"], bool):
            raise ConfigError("bell must be true or false")
        cfg.bell = data["bell"]
    keys = data.get("keys", {})
    if not isinstance(keys, dict):
        raise ConfigError("keys must be a table: [keys] then lines like jobs = \"j\"")
    bad = sorted(set(keys) - set(KEY_ACTIONS))
    if bad:
        raise ConfigError(f"unknown key binding id(s) {bad} (known: {', '.join(KEY_ACTIONS)})")
    for name, value in keys.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"keys.{name} must be a key name in quotes, e.g. \"ctrl+j\"")
    cfg.keys = {k: v.replace(" ", "") for k, v in keys.items()}
    return cfg


def load(path: Path | None = None) -> tuple[Config, str | None]:
    """(config, warning): a missing file gives the defaults silently; a bad one gives the
    defaults and one line to show the user."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config(), None
    except (OSError, UnicodeDecodeError) as exc:
        return Config(), f"config {path}: cannot read it ({exc}); using defaults"
    try:
        return parse(text, path), None
    except ConfigError as exc:
        return Config(), f"config {path}: {exc}; using defaults"
