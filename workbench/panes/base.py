"""What every pane shares: it is redrawn from the session store's updates."""

from __future__ import annotations

from textual.containers import Container

from workbench.messages import StoreUpdate


class StorePane(Container):
    """A pane fed by the app's poll of the session store."""

    HELP = ""  # shown by the help screen, one line per key

    def store_update(self, msg: StoreUpdate) -> None:  # pragma: no cover - overridden
        pass

    def focus_default(self) -> None:
        """Put the keyboard focus on the pane's first focusable widget (its keys then work)."""
        for w in self.query("*"):
            if w.focusable:
                w.focus()
                return

    def _bindings_list(self):
        """This pane's own bindings as Binding objects (tuples normalised)."""
        from textual.binding import Binding

        return [b if isinstance(b, Binding) else Binding(*b) for b in self.BINDINGS]

    @property
    def wb(self):
        """The WorkbenchApp (typed loosely to keep panes testable in small apps)."""
        return self.app
