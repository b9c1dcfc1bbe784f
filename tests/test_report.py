"""Session report: Markdown with the jobs, tables, equations and PNG figures."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pandas as pd
import pytest

from engine.session_report import curve_image, write_report
from tests.helpers.process import cli


def _png_pixels(path) -> np.ndarray:
    """Decode the 8-bit grayscale PNGs engine.png writes (filter type 0 rows)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    idat, pos = b"", 8
    while pos < len(data):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        if data[pos + 4:pos + 8] == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, w + 1)
    return raw[:, 1:]


def _fill(session):
    from engine.sindy.export import model_to_dict
    from engine.sindy.model import Sindy

    job = session.create_job("fake", ["count"], {}, job_id="t-0001")
    session.update_job(job, started=1_790_000_000.0, device="cpu")
    session.add_events(job, [("metric", {"name": "loss", "value": 10.0 ** -i, "step": i}) for i in range(5)])
    session.finish_job(job, "finished")
    session.save_table("retina MAE", pd.DataFrame(
        {"mae": [0.081, float("nan")]}, index=["CfC", "SINDy"]), job_id=job)
    session.save_equations("plain", {"state_names": ["x0", "x1"], "feature_names": ["1", "x0", "x1"],
                                     "coef": [[0.0, -0.5, 2.0], [0.0, -2.0, 0.0]], "threshold": 0.05},
                           job_id=job)
    # a full engine.sindy document: x' = -x^3 (degree-3 library on one state: 1, x, x^2, x^3)
    model = Sindy.from_coefficients([[0.0, 0.0, 0.0, -1.0]], degree=3, feature_names=["h0"])
    session.save_equations("model", model_to_dict(model), job_id=job)
    return job


def test_report_holds_tables_equations_and_figures(session, tmp_path):
    _fill(session)
    rep = write_report(session, tmp_path / "out" / "r.md")
    md = rep.path.read_text()
    assert rep.tables == 1 and rep.equation_sets == 2
    assert "| CfC | 0.081 |" in md and "| SINDy | diverged |" in md
    assert "(x0)' = -0.5 x0 + 2 x1" in md and "(x1)' = -2 x0" in md
    assert "(h0)' = -1 h0^3" in md and "1 term." in md
    assert r"\dot{h}_{0} &=" in md  # LaTeX for the full model document
    assert "| t-0001 | fake | count | finished | cpu |" in md
    # one figure: the loss curve, linked relative to the report
    assert len(rep.figures) == 1 and rep.figures[0].exists()
    assert "](r_figures/t-0001-loss.png)" in md
    img = _png_pixels(rep.figures[0])
    assert img.shape == (200, 480) and img.min() == 0


def test_curve_image_draws_a_falling_line():
    img = curve_image(np.arange(5.0), np.array([4.0, 3, 2, 1, 0]), width=50, height=40)
    dark = np.argwhere(img == 0)
    left, right = dark[dark[:, 1] == dark[:, 1].min()], dark[dark[:, 1] == dark[:, 1].max()]
    assert left[:, 0].mean() < 10 and right[:, 0].mean() > 30  # starts high, ends low
    # log axis for a loss spanning decades: equal ratios give equal steps (a straight line)
    log = curve_image(np.arange(5.0), 10.0 ** -np.arange(5.0), width=41, height=41)
    rows = [np.argwhere(log[:, c] == 0)[:, 0].mean() for c in (6, 20, 34)]
    assert rows[1] - rows[0] == pytest.approx(rows[2] - rows[1], abs=1.5)
    with pytest.raises(ValueError):
        curve_image(np.arange(3.0), np.arange(4.0))


def test_report_of_an_empty_session(session, tmp_path):
    md = write_report(session, tmp_path).path.read_text()  # a folder: report-<name>.md inside
    assert "No jobs." in md and "No tables." in md and "No figures." in md


def test_cli_report(session, session_root, tmp_path):
    _fill(session)
    out = tmp_path / "cli.md"
    proc = cli("report", "--session", "t", "-o", str(out), check=True)
    assert "1 tables, 2 equation sets, 1 figures" in proc.stdout
    assert "| CfC | 0.081 |" in out.read_text()
    bad = cli("report", "--session", "nope")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "nope" in bad.stderr


def test_serve_without_textual_serve_says_what_to_install(monkeypatch, capsys):
    import sys

    from workbench.cli import main

    monkeypatch.setitem(sys.modules, "textual_serve.server", None)  # import fails as if missing
    assert main(["serve", "--session", "t"]) == 2
    err = capsys.readouterr().err
    assert "pip install textual-serve" in err and "Traceback" not in err
