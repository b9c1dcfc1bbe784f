"""Copy over OSC 52: no "[13 terms]" in the copied text; tmux's default is detected."""

from __future__ import annotations

import subprocess

from workbench.clipboard import strip_term_counts, tmux_blocks_osc52


def test_copied_equations_carry_no_term_counts():
    text = "(x0)' = -0.1 x0^3 + 2 x1^3   [2 terms]\n(x1)' = 0   [0 terms]\n(x2)' = 1 x2   [1 term]\n"
    assert strip_term_counts(text) == "(x0)' = -0.1 x0^3 + 2 x1^3\n(x1)' = 0\n(x2)' = 1 x2\n"


def _tmux_says(value):
    def run(cmd, **kw):
        assert cmd[:3] == ["tmux", "show-options", "-gv"] and cmd[3] == "set-clipboard"
        return subprocess.CompletedProcess(cmd, 0, stdout=value + "\n", stderr="")
    return run


def test_tmux_default_blocks_copies_and_says_how_to_fix():
    assert tmux_blocks_osc52({}, run=_tmux_says("external")) is None  # not in tmux
    line = tmux_blocks_osc52({"TMUX": "/tmp/t,1,0"}, run=_tmux_says("external"))
    assert "set-clipboard external" in line and "set -g set-clipboard on" in line
    assert tmux_blocks_osc52({"TMUX": "/tmp/t,1,0"}, run=_tmux_says("on")) is None
    assert "set-clipboard off" in tmux_blocks_osc52({"TMUX": "x"}, run=_tmux_says("off"))
