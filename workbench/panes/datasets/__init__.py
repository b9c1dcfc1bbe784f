"""The Datasets pane and its browsers (see :mod:`.pane`)."""

from .eda import EdaBrowser
from .files import H5_SUFFIXES, NodeRef, file_labels, find_hdf5
from .frames import FrameBrowser
from .nwb_view import NwbBrowser
from .pane import EDA_LABEL, DatasetsPane

# the help screen lists the browsers' keys under these names
FrameView = FrameBrowser
EdaView = EdaBrowser

__all__ = ["DatasetsPane", "EDA_LABEL", "H5_SUFFIXES", "NodeRef", "find_hdf5", "file_labels",
           "FrameBrowser", "EdaBrowser", "NwbBrowser", "FrameView", "EdaView"]
