"""The footer: the keys of the screen in front, with ``q Quit`` and ``? Help`` pinned to the
right edge so that no number of pane keys can push them off at any width.  Keys that do not
fit whole are left out rather than cut (``v Loss / predicted v``): ``?`` lists them all.

One widget drawing one line of text, not Textual's Footer (a widget per key, rebuilt and
restyled at every focus change and screen switch: most of what a key like ``j`` cost).
A click on a key presses it, as on Textual's footer.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.widget import Widget

PINNED = ("quit", "help")  # actions always shown, in this order, at the right edge


class WorkbenchFooter(Widget, can_focus=False):
    DEFAULT_CSS = """
    WorkbenchFooter { dock: bottom; height: 1; background: $footer-background;
        color: $footer-foreground; }
    WorkbenchFooter > .footer--key { color: $footer-key-foreground; background: $footer-key-background;
        text-style: bold; }
    WorkbenchFooter > .footer--description { color: $footer-description-foreground; }
    WorkbenchFooter > .footer--pin { color: $foreground 30%; }
    """
    COMPONENT_CLASSES = {"footer--key", "footer--description", "footer--pin"}

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._keys: list[tuple[int, int, str]] = []  # (x0, x1, key) of each drawn hint
        self._line: tuple | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen) -> None:
        if self.is_attached and screen is self.screen:
            self.refresh()

    def hints(self) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
        """(the pane's and screen's hints, the pinned ones): (key, shown key, description)."""
        main, pinned, seen = [], {}, set()
        for _node, binding, enabled, _tip in self.screen.active_bindings.values():
            if not binding.show or not enabled or binding.action in seen:
                continue
            seen.add(binding.action)
            hint = (binding.key, self.app.get_key_display(binding), binding.description)
            if binding.action in PINNED:
                pinned[binding.action] = hint
            else:
                main.append(hint)
        return main, [pinned[a] for a in PINNED if a in pinned]

    def render(self) -> Text:
        main, pinned = self.hints()
        width = self.size.width
        key_style = self.get_component_rich_style("footer--key", partial=True)
        desc_style = self.get_component_rich_style("footer--description", partial=True)
        right = Text()
        spans: list[tuple[int, int, str]] = []
        for _key, shown, desc in pinned:
            right.append(f" {shown} ", key_style)
            right.append(f"{desc} ", desc_style)
        room = width - right.cell_len - 1
        left = Text()
        for key, shown, desc in main:
            need = cell_len(shown) + cell_len(desc) + 3
            if left.cell_len + need > room:
                break  # the rest would be cut: help (?) lists them
            x0 = left.cell_len
            left.append(f" {shown} ", key_style)
            left.append(f"{desc} ", desc_style)
            spans.append((x0, left.cell_len, key))
        pad = max(0, width - left.cell_len - right.cell_len - 1)
        line = Text.assemble(left, " " * pad, ("▏", self.get_component_rich_style("footer--pin", partial=True)))
        x = line.cell_len
        for key, shown, desc in pinned:
            w = cell_len(shown) + cell_len(desc) + 3
            spans.append((x, x + w, key))
            x += w
        line.append_text(right)
        self._keys = spans
        line.no_wrap = True
        line.overflow = "crop"
        return line

    def on_click(self, event: events.Click) -> None:
        for x0, x1, key in self._keys:
            if x0 <= event.x < x1:
                self.app.simulate_key(key)
                return
