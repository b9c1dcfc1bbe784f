"""The Textual app and the CLI.  Importing this package imports nothing heavy:
no torch, and no textual until the app itself is needed."""

__all__ = ["WorkbenchApp"]


def __getattr__(name: str):  # PEP 562: `from workbench import WorkbenchApp` stays lazy
    if name == "WorkbenchApp":
        from workbench.app import WorkbenchApp

        return WorkbenchApp
    raise AttributeError(name)
