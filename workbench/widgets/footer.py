"""The footer: the keys of the screen in front, with ``q Quit`` and ``? Help`` pinned to the
right edge so that no number of pane keys can push them off at any width.  Keys that do not
fit whole are left out rather than cut (``v Loss / predicted v``): ``?`` lists them all."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import HorizontalGroup
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

PINNED = ("quit", "help")  # actions always shown, in this order


class PinnedKeys(HorizontalGroup):
    DEFAULT_CSS = """
    PinnedKeys { dock: right; width: auto; height: 1; background: $footer-background;
        border-left: vkey $foreground 20%; }
    PinnedKeys FooterKey { margin: 0; padding: 0 0 0 1; }
    """


class WorkbenchFooter(Footer):
    """Textual's Footer, less the command-palette key (``r`` shows it), with quit and help pinned."""

    def __init__(self, **kw) -> None:
        kw.setdefault("show_command_palette", False)
        super().__init__(**kw)

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        pinned = []
        for _node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.action in PINNED and binding.show:
                pinned.append((binding, enabled, tooltip))
        pinned.sort(key=lambda t: PINNED.index(t[0].action))
        seen = set()
        with PinnedKeys():
            for binding, enabled, tooltip in pinned:
                if binding.action in seen:
                    continue
                seen.add(binding.action)
                yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description,
                                binding.action, disabled=not enabled, tooltip=tooltip)
        room = self.size.width - sum(_cells(b.key, self.app.get_key_display(b), b.description)
                                     for b, _, _ in pinned) - 2
        for widget in super().compose():
            if isinstance(widget, FooterKey):
                if widget.action in PINNED:
                    continue
                need = _cells(widget.key, widget.key_display, widget.description)
                if need > room:
                    break  # the rest would be cut: help (?) lists them
                room -= need
            yield widget

    def on_resize(self) -> None:
        self.call_after_refresh(self.recompose)


def _cells(key: str, display: str, description: str) -> int:
    """Cells one FooterKey takes: ' key description ' and its margin."""
    from rich.cells import cell_len

    return cell_len(display or key) + cell_len(description) + 3
