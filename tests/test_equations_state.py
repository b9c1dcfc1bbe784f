"""The Equations pane's decisions (workbench/panes/equations_state.py), without Textual."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.panes import equations_view as view
from workbench.panes.equations_state import STORED, EquationsState, Notice, Refit, load_sweep_of, nearest

FEATURES = ["1", "x0", "x1", "x0 x1"]
THRESHOLDS = np.array([0.01, 0.1, 1.0, 10.0])
COEFS = np.array([  # four rows, each sparser than the one before
    [[0.5, -3.0, 2.0, 0.2], [0.3, 1.5, -4.0, 0.05]],
    [[0.0, -3.0, 2.0, 0.2], [0.3, 1.5, -4.0, 0.0]],
    [[0.0, -3.0, 2.0, 0.0], [0.0, 1.5, -4.0, 0.0]],
    [[0.0, -3.0, 0.0, 0.0], [0.0, 0.0, -4.0, 0.0]],
])


class FakeSweep:
    """A StoredSweep's interface: rows of coefficients and a refit of hand edits (here: the
    switched-off terms zeroed, the others scaled by 10, a switched-on term set to 1)."""

    def __init__(self, gram: bool = True) -> None:
        self.thresholds, self.coefs, self.gram, self.calls = THRESHOLDS, COEFS, gram, []

    def __len__(self) -> int:
        return len(self.thresholds)

    def edited(self, row: int, flips) -> np.ndarray:
        self.calls.append((row, tuple(flips)))
        coef = self.coefs[row] * 10.0
        for i, j in flips:
            if self.coefs[row][i, j] != 0:
                coef[i, j] = 0.0
            elif not self.gram:
                raise ValueError("this sweep has no Gram: terms can only be removed")
            else:
                coef[i, j] = 1.0
        return coef


def _set(set_id: int, name: str, row: int = 2, coef=None, sweep: bool = True) -> dict:
    data = {"state_names": ["x0", "x1"], "feature_names": FEATURES, "threshold": float(THRESHOLDS[row]),
            "coef": (COEFS[row] if coef is None else coef).tolist(), "val_error": 0.004}
    if sweep:
        data["sweep"] = {"n_terms": [int(np.count_nonzero(c)) for c in COEFS], "knee": 1,
                         "deriv_err": [0.01, 0.02, 0.05, 0.3], "rollout_err": [0.02, 0.03, 0.1, 0.9]}
    return {"id": set_id, "name": name, "data": data}


def _state(*sets: dict, gram: bool = True, ui: dict | None = None) -> EquationsState:
    st = EquationsState()
    st.restore(ui or {})
    st.set_sets(list(sets), {s["id"]: FakeSweep(gram) if "sweep" in s["data"] else None for s in sets})
    return st


def test_the_newest_set_is_shown_and_a_remembered_one_stays():
    a, b = _set(1, "demo: SINDy"), _set(2, "demo: SINDy pruned")
    st = _state(a, b)
    assert st.current() is b  # newest first
    assert st.set_sets([a, b], {}) == [2, 1]
    st = _state(a, b, ui={"equations.set": 1})
    assert st.current() is a
    st.cursor = (1, 2)
    assert st.pick_set(2) and st.cursor is None  # another set: other equations
    assert not st.pick_set(2)


def test_a_stored_model_on_a_sweep_row_is_that_row_and_steps_move_through_the_sweep():
    st = _state(_set(1, "s", row=2))
    s = st.current()
    assert st.row(s) == 2 and st.threshold_of(s) == 1.0
    np.testing.assert_array_equal(st.coef_of(s), COEFS[2])
    assert st.step(+1) is None and st.row(s) == 3
    assert st.step(+1) is None and st.row(s) == 3  # the sparsest row is the end
    for _ in range(5):
        st.step(-1)
    assert st.row(s) == 0
    assert st.ui_index() == {"equations.index": {"1": 0}}
    assert view.title(st, s).facts[1] == "8 terms"  # the densest row's count
    assert st.knee() and st.row(s) == 1
    assert "◆ knee" in view.title(st, s).facts


def test_a_stored_model_that_is_no_sweep_row_is_shown_as_stored_until_a_step():
    coef = COEFS[2].copy()
    coef[0, 1] = 0.0  # one equation sparser than the row at its threshold
    st = _state(_set(1, "per-equation", row=2, coef=coef))
    s = st.current()
    assert st.row(s) is None and st.index[1] == STORED
    np.testing.assert_array_equal(st.coef_of(s), coef)
    facts = view.title(st, s).facts
    assert facts[0] == "threshold 1" and "3 terms · the stored model" in facts[1]
    assert view.plot(st, s) is None  # no sweep row to mark
    assert isinstance(st.editable(), Notice) and "+ or -" in st.editable().text
    assert st.step(-1) is None and st.row(s) == 1  # from the stored threshold's row, one step
    st.index[1] = STORED
    assert st.step(+1) is None and st.row(s) == 3


def test_a_set_without_a_sweep_shows_its_model_and_says_why_keys_do_nothing():
    st = _state(_set(1, "old", sweep=False))
    s = st.current()
    assert st.row(s) is None and not st.knee()
    assert st.step(+1) == Notice("this equation set has no threshold sweep", "warning")
    assert "re-run its sindy step" in st.editable().text
    assert "val err 0.004" in view.title(st, s).facts
    assert st.type_threshold("0.5") == (False, None)


@pytest.mark.parametrize("typed", ["abc", "-1", "nan", "inf", ""])
def test_a_typed_threshold_that_is_no_number_is_refused(typed):
    st = _state(_set(1, "s"))
    moved, notice = st.type_threshold(typed)
    assert not moved and notice.severity == "error" and repr(typed) in notice.text
    assert st.row(st.current()) == 2


def test_a_typed_threshold_goes_to_the_nearest_swept_one():
    st = _state(_set(1, "s"))
    assert st.type_threshold("0.1") == (True, None)  # exactly swept: nothing to say
    assert st.row(st.current()) == 1
    moved, notice = st.type_threshold("0.02")  # nearest on a log scale: 0.01
    assert moved and st.row(st.current()) == 0 and notice.text == "nearest swept threshold: 0.01"
    assert nearest(THRESHOLDS, 0.0) == 0 and nearest(THRESHOLDS, 1e9) == 3


def test_the_cursor_walks_terms_largest_first_then_equations():
    st = _state(_set(1, "s", row=1))
    assert st.pick_term(+1) is None and st.cursor == (0, 1)  # (x0)': -3 x0 is the largest
    st.pick_term(+1)
    assert st.cursor == (0, 2)
    st.pick_term(+1)
    st.pick_term(+1)
    assert st.cursor == (0, 1)  # round the end: 3 terms
    st.pick_term(-1)
    assert st.cursor == (0, 3)
    st.pick_equation(+1)
    assert st.cursor == (1, 2)  # (x1)': -4 x1
    st.pick_equation(+1)
    assert st.cursor == (0, 1)  # two equations: round to the first


def test_a_switched_off_term_is_refitted_in_a_worker_then_scored_once():
    st = _state(_set(1, "s", row=1))
    s = st.current()
    assert st.toggle() == Notice("pick a term first: [ ] choose the equation, left/right the term")
    st.pick_equation(+1)  # (0, 1): -3 x0
    refit = st.toggle()
    assert refit == Refit(1, 1, ((0, 1),), ())
    # pending: the row as swept, unmarked, and the title says so
    assert st.refitting(s) and st.sweeps[1].calls == []
    np.testing.assert_array_equal(st.coef_of(s), COEFS[1])
    assert "hand-edited from 6 terms: refitting…" in view.title(st, s).facts
    assert st.score_to_start(s) is None  # nothing to score before the refit
    assert st.refit_to_start(s) is None  # already handed to a worker
    st.refitted(refit, st.sweeps[1].edited(refit.row, refit.flips))
    coef = st.coef_of(s)
    assert coef[0, 1] == 0 and coef[0, 2] == 20.0
    assert "5 terms (hand-edited from 6; u undoes)" in view.title(st, s).facts
    assert "✗x0" in "".join(t for unit in view.body(st, s).parts[0] for t, _ in unit)
    assert st.score_to_start(s) == (1, 1, ((0, 1),)) and st.score_to_start(s) is None  # asked once
    assert "scoring…" in view.title(st, s).facts
    assert st.scored((1, 1, ((0, 1),)), {"deriv_err": 0.02, "rollout_err": 0.03},
                     {"deriv_err": 0.5, "rollout_err": 0.7})
    facts = view.title(st, s).facts
    assert "ẋ err 0.02 → 0.5" in facts and "rollout err 0.03 → 0.7" in facts
    assert view.plot(st, s).edit == (5, 0.7)  # the plot's column: rollout_err
    assert st.ui_edits() == {"equations.edits": {"1": {"1": [[0, 1]]}}}
    assert st.toggle() is None  # switched back: the row as swept, nothing to refit
    assert st.edits[1] == {} and st.ui_edits() == {"equations.edits": {}}
    np.testing.assert_array_equal(st.coef_of(s), COEFS[1])


def test_edits_restored_from_the_session_ask_for_their_refit_once():
    ui = {"equations.index": {"1": 1}, "equations.edits": {"1": {"1": [[1, 2]]}}}
    st = _state(_set(1, "s", row=1), ui=ui)
    s = st.current()
    assert st.row(s) == 1 and st.flips(s, 1) == ((1, 2),)
    refit = st.refit_to_start(s)
    assert refit == Refit(1, 1, ((1, 2),), ()) and st.refit_to_start(s) is None
    assert st.coef_of(s, refit=True)[1, 2] == 0  # a worker's call makes it at once
    assert not st.refitting(s)


def test_a_refit_that_fails_puts_the_edits_back():
    st = _state(_set(1, "s", row=2), gram=False)
    s = st.current()
    st.pick_equation(+1)
    first = st.toggle()  # remove (0, 1)
    st.refitted(first, st.sweeps[1].edited(first.row, first.flips))
    st.cursor = (0, 0)
    assert st.start_add_term() == "term to add to equation 0, e.g. x0 x1 (enter to add, escape to cancel)"
    add = st.add_term("x0 x1")
    assert add == Refit(1, 2, ((0, 1), (0, 3)), ((0, 1),))
    with pytest.raises(ValueError) as exc:
        st.sweeps[1].edited(add.row, add.flips)
    notice = st.refit_failed(add, str(exc.value))
    assert notice.severity == "error" and "no Gram" in notice.text
    assert st.flips(s, 2) == ((0, 1),)  # as before the add
    # a failure that arrives after the edits changed again leaves them alone
    st.cursor = (1, 1)
    late = st.toggle()
    st.refit_failed(add, "late")
    assert st.flips(s, 2) == late.flips == ((0, 1), (1, 1))


def test_adding_a_term_checks_the_library_and_the_equation():
    st = _state(_set(1, "s", row=2))
    st.cursor = (0, 1)
    notice = st.add_term("x1 x0")
    assert notice.severity == "error" and "no term 'x1 x0'" in notice.text
    assert "e.g. x1" in st.add_term("x1 ").text  # near names offered
    assert st.add_term("x1") == Notice("x1 is already in equation 0")
    assert st.add_term("") is None
    assert st.edits == {}
    refit = st.add_term("1")
    assert refit.flips == ((0, 0),) and st.cursor == (0, 0)


def test_u_undoes_the_edits_at_this_threshold_only():
    st = _state(_set(1, "s", row=1), ui={"equations.edits": {"1": {"1": [[0, 1]], "3": [[1, 2]]}}})
    assert st.reset_edits() and st.edits == {1: {3: [(1, 2)]}}
    assert not st.reset_edits()


def test_bodies_are_cached_and_comparing_adds_the_other_set():
    a, b, c = _set(1, "CfC: SINDy"), _set(2, "LDS: SINDy"), _set(3, "CfC-pruned: SINDy")
    st = _state(a, b, c, ui={"equations.set": 1})
    s = st.current()
    first = view.body(st, s)
    assert view.body(st, s) is first and len(first.parts) == 2
    st.comparing = True
    assert view.compared_with(st, s) is c  # same analysis prefix before the newest
    parts = view.body(st, s).parts
    assert len(parts) == 2 + 2 + 2 and "CfC-pruned: SINDy (threshold 1)" in parts[3][0][0][0]
    view.prefetch(st, [a], lambda: False)
    assert all((1, row, (), None, None) in st.bodies for row in range(4))


def test_a_missing_sweep_artifact_leaves_the_stored_model(tmp_path):
    assert load_sweep_of({}) is None
    assert load_sweep_of({"sweep_path": str(tmp_path / "gone.npz")}) is None
