"""Lazy HDF5 browsing: tree, metadata, bounded statistics and previews."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from engine.data.errors import DataError
from engine.data.h5tree import (
    format_tree,
    is_image_stack,
    list_children,
    node_info,
    open_tree,
    preview_slice,
    read_frame,
    read_frames,
    sample_stats,
)


@pytest.fixture(scope="module")
def h5file(tmp_path_factory):
    path = tmp_path_factory.mktemp("h5") / "toy.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as fh:
        fh.attrs["title"] = "toy"
        g = fh.create_group("a/b")
        g.attrs["note"] = np.arange(5)
        fh.create_dataset("a/line", data=np.arange(10_000, dtype=np.float32))
        fh.create_dataset("a/b/img", data=np.arange(40 * 60, dtype=np.float64).reshape(40, 60), chunks=(10, 60), compression="gzip")
        stack = np.zeros((20, 8, 9), np.uint8)
        stack[np.arange(20), np.arange(20) % 8, 0] = 200  # frame t lights pixel (t % 8, 0)
        fh.create_dataset("stack", data=stack)
        fh.create_dataset("nd", data=rng.standard_normal((3, 4, 5, 6)))
        fh.create_dataset("words", data=np.array([b"x", b"y"]))
        fh.create_dataset("empty", shape=(0, 3), dtype="f4")
        fh.create_dataset("withnan", data=np.array([1.0, np.nan, 0.0, 3.0]))
    return path


def test_tree_lists_one_level_with_metadata(h5file):
    root = open_tree(h5file)
    assert root.is_group and root.attrs["title"] == "toy" and root.n_children == 6
    names = {c.name: c for c in root.children()}
    assert set(names) == {"/a", "/stack", "/nd", "/words", "/empty", "/withnan"}
    assert names["/stack"].shape == (20, 8, 9) and names["/stack"].dtype == "uint8"
    sub = {c.name: c for c in list_children(h5file, "/a")}
    assert sub["/a/line"].label() == "line  10000  float32"
    assert sub["/a/b"].is_group and sub["/a/b"].n_children == 1
    assert len(list_children(h5file, "/", limit=2)) == 2


def test_node_info_reports_chunks_compression_attrs(h5file):
    info = node_info(h5file, "a/b/img")
    assert info.chunks == (10, 60) and info.compression.startswith("gzip")
    assert info.nbytes == 40 * 60 * 8
    assert node_info(h5file, "/a/b").attrs["note"] == "[0, 1, 2, 3, 4]"
    assert is_image_stack(node_info(h5file, "stack")) and not is_image_stack(node_info(h5file, "a/b/img"))


def test_format_tree_one_line_per_node(h5file):
    text = format_tree(h5file)
    lines = text.splitlines()
    assert len(lines) == 1 + 9  # header + a, line, b, img, stack, nd, words, empty, withnan
    assert any(l.strip() == "img  40×60  float64" for l in lines)
    assert "    img" in text  # indented under a/b/


def test_sample_stats_exact_and_bounded(h5file):
    exact = sample_stats(h5file, "a/line")
    assert exact.exact and exact.n_sampled == 10_000
    assert exact.mean == pytest.approx(4999.5) and exact.max == 9999 and exact.min == 0
    assert exact.std == pytest.approx(np.arange(10_000).std())
    part = sample_stats(h5file, "a/b/img", max_elems=500)
    assert not part.exact and part.n_sampled <= 500 and part.n_total == 2400
    assert 0 <= part.min <= part.max <= 2399
    nan = sample_stats(h5file, "withnan")
    assert nan.n_nan == 1 and nan.mean == pytest.approx(4 / 3) and nan.frac_zero == pytest.approx(0.25)


def test_preview_line_is_strided_and_bounded(h5file):
    p = preview_slice(h5file, "a/line", max_points=100)
    assert p.data.shape == (100,) and p.decimated
    np.testing.assert_array_equal(p.data, p.coords[0])  # values equal their index
    zoom = preview_slice(h5file, "a/line", ranges={0: (500, 520)})
    np.testing.assert_array_equal(zoom.data, np.arange(500, 520))


def test_preview_nd_axes_and_index(h5file):
    with h5py.File(h5file) as fh:
        nd = fh["nd"][()]
    p = preview_slice(h5file, "nd", axes=(1, 3), index={0: 2, 2: -1})
    np.testing.assert_allclose(p.data, nd[2, :, 4, :])
    assert p.index == (2, -1, 4, -1)
    t = preview_slice(h5file, "nd", axes=(3, 1), index=[1, None, 0, None])
    np.testing.assert_allclose(t.data, nd[1, :, 0, :].T)
    heat = preview_slice(h5file, "a/b/img", max_points=(10, 20))
    assert heat.data.shape == (10, 20)


def test_frames_step_through_time(h5file):
    for t in (0, 5, 19):
        f = read_frame(h5file, "stack", t)
        assert f.shape == (8, 9) and f.dtype == np.float32
        assert f[t % 8, 0] == 200 and f.sum() == 200
    assert read_frames(h5file, "stack", 18, 40).shape == (2, 8, 9)
    assert read_frame(h5file, "stack", -1)[19 % 8, 0] == 200


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda p: node_info(p, "nope"), "no group or dataset named '/nope'"),
        (lambda p: list_children(p, "a/line"), "is a dataset, not a group"),
        (lambda p: sample_stats(p, "a"), "is a group, not a dataset"),
        (lambda p: sample_stats(p, "words"), "statistics and plots need numbers"),
        (lambda p: sample_stats(p, "empty"), "is empty"),
        (lambda p: preview_slice(p, "nd", axes=(0, 0)), "two different axes"),
        (lambda p: preview_slice(p, "nd", axes=(7,)), "axis 7 out of range"),
        (lambda p: preview_slice(p, "nd", index={0: 9}), "index 9 out of range for axis 0"),
        (lambda p: read_frame(p, "stack", 20), "frame 20 out of range"),
        (lambda p: read_frame(p, "a/line", 0), "3-D"),
    ],
)
def test_bad_requests_raise_one_line_data_errors(h5file, call, match):
    with pytest.raises(DataError, match=match) as err:
        call(h5file)
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- hostile files


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A tiny file that declares huge chunked datasets, link cycles, an external link,
    external raw storage, an h5py.Empty dataset and names with terminal escapes."""
    d = tmp_path_factory.mktemp("hostile")
    (d / "outside.bin").write_bytes(np.arange(16, dtype=np.float32).tobytes())
    path = d / "bomb.h5"
    with h5py.File(path, "w") as fh:
        fh.create_dataset("big", shape=(2**62,), dtype="u1", chunks=(2**20,), maxshape=(None,))
        fh.create_dataset("big2", shape=(2**31, 2**31), dtype="f8", chunks=(1, 2**20))
        fh.create_dataset("nothing", data=h5py.Empty("f4"))
        g = fh.create_group("g")
        g["self"] = h5py.SoftLink("/g")
        g["hard"] = g  # a hard link back to its own group
        fh["loop"] = h5py.SoftLink("/loop")
        fh["ext"] = h5py.ExternalLink(str(d / "secret.h5"), "/data")
        fh.create_dataset("raw", shape=(16,), dtype="f4", external=[(str(d / "outside.bin"), 0, 64)])
        fh.create_dataset("osc\x1b]52;c;SGVsbG8=\x07name", data=np.arange(3.0))
    with h5py.File(d / "secret.h5", "w") as fh:
        fh.create_dataset("data", data=np.arange(5.0))
    return path


def test_huge_chunked_dataset_previews_fast_and_bounded(hostile):
    import time

    t0 = time.perf_counter()
    line = preview_slice(hostile, "big", max_points=2000)
    heat = preview_slice(hostile, "big2", max_points=(40, 200))
    stats = sample_stats(hostile, "big2", max_elems=200_000)
    assert time.perf_counter() - t0 < 5  # a plain strided read of "big" never returns
    assert 1 <= line.data.size <= 2000 and (line.data == 0).all() and line.decimated
    assert heat.data.ndim == 2 and heat.data.size <= 40 * 200
    assert stats.n_total == 2**62 and not stats.exact and stats.max == 0


def test_previews_stop_on_cancel(hostile):
    import threading

    from engine.reporting import Cancelled

    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        preview_slice(hostile, "big", max_points=100, cancel=stop)


def test_link_cycles_external_links_and_empty_are_shown_not_followed(hostile):
    kids = {c.basename: c for c in list_children(hostile, "/")}
    assert kids["loop"].kind == "link" and "unresolvable" in kids["loop"].label()
    assert kids["ext"].kind == "external" and kids["ext"].target.endswith("secret.h5:/data")
    assert "not followed" in kids["ext"].label()
    assert kids["nothing"].empty and "empty" in kids["nothing"].label() and "scalar" not in kids["nothing"].label()
    assert kids["raw"].outside and kids["raw"].outside[0].endswith("outside.bin") and not kids["raw"].numeric
    assert {c.basename for c in list_children(hostile, "/g")} == {"self", "hard"}
    tree = format_tree(hostile)  # must not recurse forever through g/hard or g/self
    assert tree.count("same group as /g") == 2 and "secret.h5:/data" in tree
    with pytest.raises(DataError, match="external link"):
        node_info(hostile, "/ext")
    with pytest.raises(DataError, match="stored outside this file"):
        sample_stats(hostile, "raw")
    assert sample_stats(hostile, "raw", follow_external=True).max == 15  # read when asked
    followed = format_tree(hostile, follow_external=True)
    assert "ext  5  float64" in followed and "not followed" not in followed
    assert node_info(hostile, "/ext", follow_external=True).shape == (5,)
    with pytest.raises(DataError, match="empty"):
        preview_slice(hostile, "nothing")


def test_names_with_terminal_escapes_are_shown_escaped(hostile):
    tree = format_tree(hostile)
    assert "\x1b" not in tree and "\x07" not in tree and "osc\\x1b]52;c;SGVsbG8=\\x07name" in tree
    (info,) = [c for c in list_children(hostile, "/") if c.basename.startswith("osc")]
    assert "\x1b" in info.name and "\x1b" not in info.label()  # the name still reads the data
    assert preview_slice(hostile, info.name).data.tolist() == [0.0, 1.0, 2.0]


def test_name_that_is_not_utf8_round_trips(tmp_path):
    path = tmp_path / "bytes.h5"
    with h5py.File(path, "w") as fh:
        fh.create_dataset(b"fi\x80ing", data=np.arange(4.0))
    (info,) = list_children(path, "/")
    assert info.display_name == "fi\\x80ing" and "fi\\x80ing" in format_tree(path)
    assert preview_slice(path, info.name).data.tolist() == [0.0, 1.0, 2.0, 3.0]
