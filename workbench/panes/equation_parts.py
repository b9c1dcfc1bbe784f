"""The equations as plain data: per equation a list of units (a left-hand side, one unit per
term, the hand-removed terms, the term count), each unit ``(text, style)`` pieces that are
never split across lines, and a greedy wrap of them into lines of a given width.

No Textual here: the pane's state (:mod:`.equations_state`) builds these off the UI thread
and the widget (:mod:`.equation_text`) draws them.
"""

from __future__ import annotations

import math

from rich.text import Span, Text

SCALE = ("grey50", "cyan", "green", "yellow", "bold red")


def equation_parts(payload: dict, coef=None, precision: int = 3, cursor=None, removed=(), added=()) -> list:
    """The equations as units that are never split across lines: per equation, the left-hand
    side, one unit per term (largest |coefficient| first, coloured by its decade relative to
    the largest coefficient), the hand-removed terms struck through, and the term count.  A unit
    is a list of ``(text, style)`` pieces; ``cursor`` ``(state, term)`` is reversed, ``added``
    terms are underlined.  A set with control inputs ends with one more line saying what they
    are (the analysis's ``control`` description), so the pane and a copy both carry it."""
    import numpy as np

    coef = payload.get("coef") if coef is None else coef
    coef = np.asarray(coef if coef is not None else [], dtype=float)
    features = payload.get("feature_names") or []
    states = payload.get("state_names") or [f"x{i}" for i in range(len(coef))]
    biggest = float(np.abs(coef).max()) if coef.size else 0.0
    biggest = biggest or 1.0
    top = len(SCALE) - 1
    removed, added = set(map(tuple, removed)), set(map(tuple, added))
    from engine.sindy.equation_set import written  # a map's h0[k+1] = h0[k] + ..., constants

    form = written(payload)
    if form is not None and form.display_scale != 1.0:  # a map: what one step adds
        coef, biggest = coef * form.display_scale, biggest * form.display_scale
    out = []
    for k, (name, row) in enumerate(zip(states, coef)):
        order = term_order(row)
        if form is not None and name in form.constants:
            out.append([[(form.equations()[k], "bold")], [("   [not fitted]", "dim")]])
            continue
        lhs = form.lhs(name) if form is not None else f"({name})' = "
        cont = lhs.endswith(" + ")  # a map: "h0[k+1] = h0[k]", then every term with its sign
        units: list[list[tuple[str, str | None]]] = [[(lhs[:-3] if cont else lhs, "bold")]]
        if not len(order) and not cont:
            units.append([("0", "dim")])
        for i, j in enumerate(order):
            c = float(row[j])
            sign = (" - " if c < 0 else " + ") if i or cont else ("-" if c < 0 else "")
            decade = math.floor(math.log10(abs(c) / biggest))
            unit = [(sign, None)] if sign else []
            unit.append((f"{abs(c):.{precision}g}", SCALE[max(0, min(top, top + decade))]))
            if features[j] != "1":
                unit.append((f" {features[j]}", None))
            extra = ("underline" if (k, j) in added else "") + (" reverse" if cursor == (k, j) else "")
            if extra:
                unit = [(t, f"{st or ''} {extra}".strip()) for t, st in unit]
            units.append(unit)
        for j in sorted(j for i, j in removed if i == k):
            # marked by a sign as well as the strike, which plain text (NO_COLOR, a copy) loses
            units.append([(f"  ✗{features[j]}", "strike dim reverse" if cursor == (k, j) else "strike dim")])
        units.append([(f"   [{len(order)} term{'s' * (len(order) != 1)}]", "dim")])
        out.append(units)
    control = payload.get("control")
    if isinstance(control, str) and control and payload.get("control_names"):
        # what u0, u1, ... stand for (e.g. each state's drive: the CfC's own step from its mean state)
        from engine.text import safe_text

        words = safe_text(control, newlines=False).split()
        out.append([[("u: ", "dim bold")]] + [[(w + " ", "dim")] for w in words])
    return out


def parts_to_text(parts: list) -> Text:
    """One Rich Text, an equation per line (built as one string plus spans: appending ~2,000
    terms one by one to a Text is what made a dense (220-term) model slow to draw)."""
    chunks: list[str] = []
    spans: list[Span] = []
    pos = 0
    for units in parts:
        for unit in units:
            for text, style in unit:
                chunks.append(text)
                if style:
                    spans.append(Span(pos, pos + len(text), style))
                pos += len(text)
        chunks.append("\n")
        pos += 1
    return Text("".join(chunks), spans=spans)


def render_equations(payload: dict, coef=None, precision: int = 3, cursor=None, removed=(), added=()) -> Text:
    """The equations as a Rich Text (see :func:`equation_parts`)."""
    return parts_to_text(equation_parts(payload, coef, precision, cursor, removed, added))



def layout_parts(parts: list, width: int) -> tuple[list, dict]:
    """Wrap the units into lines of ``width`` cells, continuations indented under the
    right-hand side: ``(lines, where)`` with ``lines[i] = (equation, first unit, end unit)`` and
    ``where[(equation, unit)]`` the line of a unit.

    Our own greedy wrap over whole terms, on widths alone: Rich's general-purpose wrap of a
    220-term model took ~100 ms on a loaded CPU; the Strips of a line are made only when it
    is drawn (:func:`line_strip`).  A unit wider than a line gets a line of its own, cut.
    """
    width = max(width, 20)
    lines: list[tuple[int, int, int]] = []
    where: dict[tuple[int, int], int] = {}
    for k, units in enumerate(parts):
        widths = [sum(len(t) for t, _ in unit) for unit in units]
        indent = min(widths[0], width // 3) if widths else 0
        first, x = 0, 0
        for u, w in enumerate(widths):
            if u > first:
                if x + w > width:  # this unit starts the next line
                    lines.append((k, first, u))
                    first = u
                    x = indent + w - (len(units[u][0][0]) - len(units[u][0][0].lstrip()))
                else:
                    x += w
            else:
                x += w
            where[(k, u)] = len(lines)
        lines.append((k, first, len(widths)))
    return lines, where


def term_order(row):
    """The nonzero terms of one equation, largest |coefficient| first (as drawn)."""
    import numpy as np

    nz = np.flatnonzero(row)
    return nz[np.argsort(-np.abs(row[nz]), kind="stable")]
