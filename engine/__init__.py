"""Headless compute core of the workbench.

Never imports textual, rich, plotext or workbench (tests/test_import_hygiene.py).
Heavy modules (torch) are imported by the submodules that need them, not here.
"""

__version__ = "0.1.0"
