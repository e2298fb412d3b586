"""Text from a trace made safe to show: every control and bidi character escaped.

Lock, thread and task names, file names, argv and any other string read from a
trace may carry terminal escape sequences (`\\x1b]0;title\\x07`, `\\x1b[2J`) or
right-to-left overrides (U+202E) that would retitle or clear a terminal, or
reverse the text a reader sees. Every report (terminal, HTML, error and warning
messages) passes such strings through `visible()`, which writes each of those
characters as a Python-style escape (`\\x1b`, `\\u202e`) and leaves all other
text as it is.
"""
from __future__ import annotations

from typing import Any

# C0 controls, DEL, C1 controls; bidi embeddings/overrides/isolates and marks; line and
# paragraph separators (some terminals and browsers break lines on them).
_UNSAFE = [*range(0x00, 0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A),
           0x200E, 0x200F, 0x061C, 0x2028, 0x2029]


def _escape(cp: int) -> str:
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}"


_TABLE = {cp: _escape(cp) for cp in _UNSAFE}
_TABLE_KEEP_NEWLINES = {cp: s for cp, s in _TABLE.items() if cp != 0x0A}


def visible(value: Any) -> str:
    """`value` as text with every control and bidi character escaped ('' for None)."""
    if value is None:
        return ""
    return str(value).translate(_TABLE)


def visible_lines(value: Any) -> str:
    """Like `visible`, but keeps line feeds: for multi-line messages we composed
    (a trace string with a line feed in it then shows as two lines, never as a
    terminal control)."""
    if value is None:
        return ""
    return str(value).translate(_TABLE_KEEP_NEWLINES)


def visible_data(value: Any) -> Any:
    """A JSON-like value with `visible` applied to every string in it (keys too)."""
    if isinstance(value, str):
        return value.translate(_TABLE)
    if isinstance(value, dict):
        return {visible_data(k) if isinstance(k, str) else k: visible_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [visible_data(v) for v in value]
    if getattr(value, "dtype", None) is not None and value.dtype.kind in "OUS":  # a numpy array of text
        return visible_data(value.tolist())
    return value
