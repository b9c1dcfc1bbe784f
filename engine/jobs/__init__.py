"""Detached worker processes, their event log, cancel and resume."""
