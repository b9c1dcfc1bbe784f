"""The Allen Brain Observatory NWB layout through pynwb: unit quality, brain area, templates, the mei step."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pynwb")

from engine.data import allen  # noqa: E402
from engine.data import allen_nwb as A  # noqa: E402
from engine.data.errors import DataError  # noqa: E402
from tests.helpers.nwb_files import allen_session  # noqa: E402

N_UNITS = 12


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """A synthetic V1 written as an Allen session: even units in VISam, odd in VISp; four bad units."""
    return allen_session(tmp_path_factory.mktemp("allen"), N_UNITS)


def test_allensdk_default_filters_and_area_selection(session):
    tables, path, _, ids = session
    got, sel = A.load(path)  # defaults: AllenSDK's cut-offs, VISam
    assert list(got.units.index) == [ids[8], ids[10]]  # VISam units 0, 2, 4, 6 fail one test each
    assert sel.counts == {"all units": 12, "amplitude_cutoff <= 0.1": 11, "presence_ratio >= 0.95": 10,
                          "isi_violations <= 0.5": 9, 'quality == "good"': 8, "area == VISam": 2}
    assert sel.areas_available == {"VISam": 6, "VISp": 6}
    assert set(got.units["ecephys_structure_acronym"]) == {"VISam"}
    loose, _ = A.load(path, area="VISam", quality=A.UnitFilter(presence_ratio_min=0.85, good_only=False))
    assert list(loose.units.index) == [ids[2], ids[6], ids[8], ids[10]]
    every, _ = A.load(path, area="", quality=A.UnitFilter.off())
    assert len(every.units) == N_UNITS
    off_by_negative, _ = A.load(path, area="", quality=A.UnitFilter(-1, -1, -1, False))
    assert len(off_by_negative.units) == N_UNITS


def test_the_session_browses_with_areas_through_peak_channel_ids(session):
    from engine.data import nwb as N

    _, path, _, _ = session
    s = N.summarize(path)
    assert s.units.n_rows == N_UNITS and s.unit_areas == {"VISam": 6, "VISp": 6}
    assert {"amplitude_cutoff", "presence_ratio", "isi_violations", "quality", "peak_channel_id"} <= set(s.units.columns)
    assert any(t.path == "intervals/natural_scenes_presentations" and t.n_rows == 48 for t in s.tables)
    assert any(x.path == "stimulus_template/natural_scenes" and x.shape == (12, 16, 16) for x in s.series)


def test_counts_and_images_match_the_tables_they_came_from(session):
    tables, path, _, ids = session
    got, sel = A.load(path, area="VISp")
    assert sel.images_from == "stimulus_template/natural_scenes"
    np.testing.assert_allclose(got.images, tables.images, atol=0.5 / 255)
    c_nwb = allen.spike_counts(got)
    c_csv = allen.spike_counts(tables)[c_nwb.columns].loc[c_nwb.index]
    np.testing.assert_array_equal(c_nwb.to_numpy(), c_csv.to_numpy())
    assert c_nwb.to_numpy().sum() > 0
    pd.testing.assert_series_equal(got.presentations["frame"], tables.presentations["frame"], check_names=False)


def test_missing_templates_area_and_metrics_are_named(session, tmp_path):
    tables, path, bare, ids = session
    no_img, sel = A.load(bare)
    assert no_img.images is None and sel.images_from == ""
    with pytest.raises(DataError, match="no stimulus template 'natural_scenes'.*natural_scenes.npy"):
        A.load(bare, need_images=True)
    np.save(bare.with_name("natural_scenes.npy"), np.round(tables.images * 255).astype(np.uint8))
    beside, sel = A.load(bare, need_images=True)
    assert sel.images_from.endswith("natural_scenes.npy") and beside.images.shape == tables.images.shape
    with pytest.raises(DataError, match="no unit in area 'VISl'.*areas in the file: VIS"):
        A.load(path, area="VISl")
    plain = A.write_allen_nwb(tables, tmp_path / "plain.nwb", metrics=pd.DataFrame(
        {"amplitude_cutoff": 0.01, "presence_ratio": 0.99, "isi_violations": 0.1, "quality": "good"},
        index=tables.units.index))
    import h5py

    with h5py.File(plain, "a") as h:  # a units table without AllenSDK's metrics
        u = h["units"]
        del u["isi_violations"]
        u.attrs["colnames"] = np.array([c for c in u.attrs["colnames"] if c != "isi_violations"], dtype=object)
    with pytest.raises(DataError, match="no isi_violations column for the quality filter"):
        A.load(plain)
    assert len(A.load(plain, quality=A.UnitFilter(isi_violations_max=None))[0].units) == N_UNITS


def test_mei_reliability_step_reads_the_nwb_file(session, tmp_path):
    from engine.analyses import StepContext
    from engine.analyses.mei import ANALYSIS
    from engine.reporting import NullReporter

    _, path, _, ids = session
    logs = []

    class Rep(NullReporter):
        def log(self, line, level="info"):
            logs.append(line)

    ctx = StepContext(workdir=tmp_path, reporter=Rep())
    p = ANALYSIS.defaults()
    p.update(data=str(path), area="VISp", sort="pc1", min_oracle=-1.0)
    out = ANALYSIS.step("reliability").load()(ctx, p)
    assert out["n_units"] == 6 and out["n_images"] == 12 and out["repeats"] == 4  # every VISp unit is good
    with np.load(tmp_path / "responses.npz") as f:
        assert set(f["unit_ids"]) == {ids[i] for i in (1, 3, 5, 7, 9, 11)}
        assert f["images"].shape == (12, 16, 16)
    assert any("area == VISp: 6" in line for line in logs)
    p.update(area="VISam")  # AllenSDK's defaults leave units 8 and 10 of VISam
    assert ANALYSIS.step("reliability").load()(ctx, p)["n_units"] == 2


def test_on_a_recording_mei_generates_nothing_and_its_truth_step_says_why(session, tmp_path):
    from engine.analyses import StepContext
    from engine.analyses.mei import ANALYSIS

    _, path, _, _ = session
    ctx = StepContext(workdir=tmp_path)
    p = {**ANALYSIS.defaults(), "data": str(path)}
    assert ANALYSIS.step("generate").load()(ctx, dict(p)) == {"data": str(path), "generated": False}
    assert not (tmp_path / "allen").exists()
    out = ANALYSIS.step("truth").load()(ctx, dict(p))
    assert out["truth"] == "skipped" and "recording" in out["truth_skipped"]
