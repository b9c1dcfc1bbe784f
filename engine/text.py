"""Text from files and sessions, made safe to show on a terminal.

A job's error, an HDF5 dataset's name or an attribute value comes from someone else's
file.  Written raw to a terminal, its control characters are commands: OSC 52 writes the
clipboard, OSC 0/2 sets the window title, CSI sequences move the cursor or clear the
screen, and bidirectional overrides make text read differently from what it is.
:func:`safe_text` is the one filter everything from a file or a session goes through
before it is printed or drawn: every such character is replaced by its visible escape
(``\\x1b``, ``\\u202e``), so nothing is lost from view and nothing runs.
"""

from __future__ import annotations

import re

__all__ = ["safe_text", "safe_line", "has_controls"]

# C0 controls (but \t and \n, see below), DEL, C1 controls (0x80-0x9f: 0x9b is a
# one-byte CSI on some terminals), bidi embeddings/overrides/isolates, the line and
# paragraph separators, and lone surrogates (undecodable bytes read with
# errors="surrogateescape"; printing one raises UnicodeEncodeError).
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069\ud800-\udfff"
_UNSAFE_RE = re.compile(f"[{_UNSAFE}]")
_UNSAFE_LINE_RE = re.compile(f"[{_UNSAFE}\t\n]")


def _escape(m: re.Match) -> str:
    c = ord(m.group())
    if 0xDC80 <= c <= 0xDCFF:  # a byte smuggled through surrogateescape: show the byte
        return f"\\x{c - 0xDC00:02x}"
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def safe_text(value: object, *, newlines: bool = True) -> str:
    """``str(value)`` with every terminal control character shown as its escape.

    Tabs and newlines are kept (a traceback or a log stays readable) unless
    ``newlines=False``, which escapes them too (a name, a table cell).  Bytes are
    decoded as UTF-8, undecodable bytes shown as ``\\xNN``.
    """
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value).decode("utf-8", "surrogateescape")
    else:
        text = value if isinstance(value, str) else str(value)
    pattern = _UNSAFE_RE if newlines else _UNSAFE_LINE_RE
    return pattern.sub(_escape, text)


def safe_line(value: object) -> str:
    """:func:`safe_text` on one line: tabs and newlines escaped too."""
    return safe_text(value, newlines=False)


def has_controls(value: str) -> bool:
    """True if ``value`` holds a character :func:`safe_text` would escape (tabs/newlines count)."""
    return _UNSAFE_LINE_RE.search(value) is not None
