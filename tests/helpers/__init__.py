"""Helpers shared by the tests: fixtures, fake apps, the screen renderer."""
