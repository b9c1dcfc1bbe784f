"""Lazy browsing of any HDF5 file: tree on demand, bounded statistics and previews.

Every function opens the file, reads only what it needs and closes it again, so
callers (TUI workers in threads, the CLI) never share an open handle and a
dataset larger than RAM is never read whole: listing a group reads metadata of
one level, statistics read at most ``max_elems`` elements in a few contiguous
blocks, previews read a strided slice bounded by ``max_points``.

Split by concern: ``opening`` (files and names), ``tree`` (nodes), ``reads`` (the read
budget), ``stats`` (bounded statistics), ``preview`` (slices and frames).
"""

from engine.data.h5tree.opening import open_h5
from engine.data.h5tree.preview import Preview, preview_slice, read_frame, read_frames
from engine.data.h5tree.reads import MAX_READS, READ_BUDGET_BYTES
from engine.data.h5tree.stats import SampleStats, sample_stats
from engine.data.h5tree.tree import NodeInfo, format_tree, is_image_stack, list_children, node_info, open_tree

__all__ = [
    "MAX_READS",
    "READ_BUDGET_BYTES",
    "NodeInfo",
    "SampleStats",
    "Preview",
    "open_h5",
    "open_tree",
    "list_children",
    "node_info",
    "sample_stats",
    "preview_slice",
    "read_frame",
    "read_frames",
    "is_image_stack",
    "format_tree",
]
