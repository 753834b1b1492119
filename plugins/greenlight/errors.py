"""Typed errors shared by every engine: each says what was wrong and where."""
from __future__ import annotations


class GreenlightError(Exception):
    """Base of every error Greenlight reports to a user (exit code 2 on the CLI)."""


class UsageError(GreenlightError):
    """Bad input from the user: reported on stderr with exit code 2, never as a traceback."""


class SettingsError(GreenlightError):
    """A settings file is wrong; the message names the file, the key and what was expected."""
