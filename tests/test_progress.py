"""Truthful progress: an ETA from the recent rate, none before it means something, a fresh
line per step, a countdown that gives up when overdue, the device as soon as training says it."""

from __future__ import annotations

import pytest

from engine.jobs import reporter as reporter_mod
from engine.jobs.reporter import SessionReporter
from workbench.format import current_progress, fmt_eta


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(reporter_mod.time, "monotonic", c)
    return c


def _progress(session, job):
    return [e.payload for e in session.events(job, kinds=("progress",))]


def test_eta_comes_from_the_recent_rate_not_the_warm_up(session, clock):
    job = session.create_job("fake", ["count"], {})
    rep = SessionReporter(session, job, session.artifacts)
    rep.start_step("train")
    # warm-up: 10 of 2000 iterations in the first 20 s (its rate alone gives a 66-minute ETA)
    for i in range(1, 11):
        clock.t += 2.0
        rep.progress(i, 2000)
    # then 100 it/s for 10 s
    done = 10
    for _ in range(40):
        clock.t += 0.25
        done += 25
        rep.progress(done, 2000)
    last = _progress(session, job)[-1]
    assert last["step"] == "train" and last["done"] == done
    assert last["eta_s"] == pytest.approx((2000 - done) / 100, rel=0.05)  # 9.9 s, not 30 s


def test_no_eta_before_the_rate_window_spans_enough(session, clock):
    job = session.create_job("fake", ["count"], {})
    rep = SessionReporter(session, job, session.artifacts)
    rep.start_step("train")
    clock.t += 0.3
    rep.progress(1, 100)
    clock.t += 0.3
    rep.progress(2, 100)
    assert all(p["eta_s"] is None for p in _progress(session, job))


def test_a_new_step_starts_with_a_fresh_progress_line(session, clock):
    job = session.create_job("fake", ["count"], {})
    rep = SessionReporter(session, job, session.artifacts)
    rep.start_step("generate")
    clock.t += 1
    rep.progress(2, 2)
    rep.start_step("train")
    latest = session.latest_progress(job)
    assert latest["step"] == "train" and latest["total"] == 0 and latest["eta_s"] is None
    # a reader holding the previous step's line sees that it is not this step's
    assert current_progress({"done": 2, "total": 2, "step": "generate"}, "train") is None
    assert current_progress(latest, "train") is latest


def test_the_device_shows_as_soon_as_training_announces_it(session, clock):
    job = session.create_job("fake", ["count"], {})
    rep = SessionReporter(session, job, session.artifacts)
    rep.log("training on cpu (x86_64), 1500 steps")
    assert session.job(job).device == "cpu"


def test_eta_counts_down_and_gives_up_when_overdue():
    p = {"eta_s": 30.0, "ts": 100.0, "total": 10, "done": 1}
    assert fmt_eta(p, 100.0) == "30s"
    assert fmt_eta(p, 110.0) == "20s"
    assert fmt_eta(p, 131.0) == "0s"     # just past: zero, not negative
    assert fmt_eta(p, 150.0) == "?"      # long past (validating, stalled): no false promise
    assert fmt_eta({"eta_s": 1.0, "ts": 0.0}, 11.0) == "?"  # "ETA 1s" does not stay for 10 s
    assert fmt_eta({"eta_s": None}, 0.0) == "?"
