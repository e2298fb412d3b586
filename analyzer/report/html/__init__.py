"""The HTML report, one module per part of the page:

- `report`: the page itself, section by section (`render`, `write`);
- `findings`: a finding's explanation, facts and advice;
- `charts`: the plotly figures (timelines, lock-order graph, distributions);
- `data`: what the charts read from the analyzer's database;
- `format`: numbers, durations and lock names as the page shows them;
- `safe`: escaping (every string from a trace goes through it);
- `page`: the static style sheet and script.

`render` and `write` are imported on first use, so that the terminal report,
which shares `format`, does not load plotly.
"""
from __future__ import annotations

from typing import Any

__all__ = ["PLOTLYJS_MODES", "render", "write"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import report

        return getattr(report, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
