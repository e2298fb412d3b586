"""A tiny escaping template helper for the HTML report.

Every value interpolated with `h()` is HTML-escaped unless it is already `Safe`
markup produced by `h()` itself, so strings from a trace (lock, thread and task
names, paths, argv) can never become markup. JSON embedded in a `<script>`
element goes through `script_json()`, which escapes `<`, `>` and `&` so no
string inside can close the element. Control and bidi characters in any of them
are shown escaped (`visible.visible`), so they cannot reorder or hide text.
"""
from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

import orjson

from ..visible import visible, visible_data


class Safe(str):
    """A string that is already markup (built by `h`/`join`), inserted as is."""

    __slots__ = ()

    def __add__(self, other: Any) -> Safe:
        return Safe(str.__add__(self, esc(other)))

    def __radd__(self, other: Any) -> Safe:
        return Safe(str.__add__(esc(other), self))


def esc(value: Any) -> Safe:
    """`value` as HTML text: Safe markup unchanged, None as empty, anything else escaped."""
    if isinstance(value, Safe):
        return value
    if value is None:
        return Safe("")
    return Safe(html.escape(visible(value), quote=True))


def h(template: str, *args: Any, **kwargs: Any) -> Safe:
    """`template.format(...)` with every argument escaped (see `esc`)."""
    return Safe(template.format(*(esc(a) for a in args), **{k: esc(v) for k, v in kwargs.items()}))


def join(parts: Iterable[Any], sep: str = "") -> Safe:
    """Concatenate markup fragments, escaping any that are plain strings."""
    return Safe(sep.join(esc(p) for p in parts))


def plot_text(value: Any) -> str:
    """A trace string for plotly text/hover/labels: plotly interprets a few HTML
    tags and decodes entities, so escaping shows the string literally."""
    return "" if value is None else html.escape(visible(value), quote=False)


_SCRIPT_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026",
                   0x2028: "\\u2028", 0x2029: "\\u2029"}


def script_json(value: Any) -> Safe:
    """JSON for a `<script type="application/json">` element, safe against `</script>`."""
    text = orjson.dumps(visible_data(value), option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()
    return Safe(text.translate(_SCRIPT_ESCAPES))
