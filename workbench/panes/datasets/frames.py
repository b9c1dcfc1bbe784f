"""Frame browser: one frame of a (T, H, W) dataset in half blocks, stepped with keys.

The browser owns its state: the dataset, the frame count and ``frame_t`` (a
reactive clamped to the stack); setting ``frame_t`` reads that frame in a
thread worker.  It tells the pane only what to show in the status line.
"""

from __future__ import annotations

import numpy as np
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Static

from engine.data import h5tree
from workbench.widgets.halfblock import halfblock

from .files import NodeRef
from .notes import PaneNote

__all__ = ["FrameBrowser"]


class FrameBrowser(Vertical, can_focus=True):
    """The half-block picture of one frame and a "go to frame" box; holds the frame keys."""

    DEFAULT_CSS = """
    FrameBrowser { height: 1fr; }
    FrameBrowser:focus { background: $boost; }
    FrameBrowser #frame-pic { height: 1fr; }
    FrameBrowser #ds-goto { display: none; }
    FrameBrowser #ds-goto.visible { display: block; }
    """

    BINDINGS = [
        Binding("left", "step(-1)", "◀ frame", show=True),
        Binding("right", "step(1)", "frame ▶", show=True),
        Binding("pageup", "step(-10)", "-10", show=False),
        Binding("pagedown", "step(10)", "+10", show=False),
        Binding("home", "jump('start')", "first", show=False),
        Binding("end", "jump('end')", "last", show=False),
        Binding("g", "goto", "go to frame", show=True),
    ]

    frame_t: reactive[int] = reactive(0, init=False)

    class Loaded(Message):
        def __init__(self, ref: NodeRef, t: int, frame: np.ndarray | None, error: str | None):
            super().__init__()
            self.ref, self.t, self.frame, self.error = ref, t, frame, error

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.ref: NodeRef | None = None
        self.n_frames = 0
        self.frame: np.ndarray | None = None  # the frame shown (frame_t once it has been read)

    def compose(self) -> ComposeResult:
        yield Static("", id="frame-pic")
        yield Input(placeholder="frame number, enter to jump", id="ds-goto", type="integer")

    # ---- state ------------------------------------------------------------------------

    def open(self, ref: NodeRef, n_frames: int) -> None:
        """Show frame 0 of ``ref``, a stack of ``n_frames`` frames."""
        self.ref, self.n_frames, self.frame = ref, int(n_frames), None
        self.set_reactive(FrameBrowser.frame_t, 0)
        self._load(ref, 0)

    def validate_frame_t(self, t: int) -> int:
        return int(np.clip(t, 0, max(0, self.n_frames - 1)))

    def watch_frame_t(self, t: int) -> None:
        if self.ref is not None:
            self._load(self.ref, t)

    # ---- keys -------------------------------------------------------------------------

    def action_step(self, delta: int) -> None:
        self.frame_t += delta

    def action_jump(self, where: str) -> None:
        self.frame_t = 0 if where == "start" else self.n_frames - 1

    def action_goto(self) -> None:
        if self.n_frames:
            box = self.query_one("#ds-goto", Input)
            box.add_class("visible")
            box.value = ""
            box.focus()

    @on(Input.Submitted, "#ds-goto")
    def _goto_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#ds-goto", Input).remove_class("visible")
        self.focus()
        try:
            t = int(event.value)
        except ValueError:
            self.post_message(PaneNote(f"not a frame number: {event.value!r}", error=True))
            return
        if not 0 <= t < self.n_frames:
            self.post_message(PaneNote(f"frame {t} out of range 0..{self.n_frames - 1}", error=True))
            return
        self.frame_t = t

    # ---- reading and drawing -------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="frame")
    def _load(self, ref: NodeRef, t: int) -> None:
        try:
            self.post_message(self.Loaded(ref, t, h5tree.read_frame(ref.file, ref.name, t), None))
        except Exception as exc:  # never let a worker kill the app
            self.post_message(self.Loaded(ref, t, None, str(exc)))

    def on_frame_browser_loaded(self, msg: Loaded) -> None:
        msg.stop()
        if msg.ref != self.ref or not self.display:
            return  # another dataset was opened since, or the pane shows something else now
        if msg.error:
            self.post_message(PaneNote(msg.error, error=True))
            return
        if msg.t != self.frame_t:
            return  # a newer step is on its way
        self.frame = msg.frame
        self.draw()

    def draw(self) -> None:
        if self.frame is None:
            return
        pic = self.query_one("#frame-pic", Static)
        w, h = pic.content_size
        w, h = (w or 60), (h or 12)
        pic.update(halfblock(self.frame, w, max(1, h)))
        self.post_message(PaneNote(
            f"frame {self.frame_t} / {self.n_frames - 1}   ←/→ step · pgup/pgdn ±10 · home/end · g go to"))

    def on_resize(self) -> None:
        if self.frame is not None and self.display:
            self.call_after_refresh(self.draw)
