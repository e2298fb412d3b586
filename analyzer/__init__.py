"""lockscope analyzer: load traces into DuckDB, find deadlock patterns, report them."""
from __future__ import annotations


def analyze(paths, **options) -> dict:
    """Analyze trace files; returns the findings document (docs/findings-format.md).

    Options: group_by ("instance"|"site"), actors ("task"|"thread"|"segment"),
    long_hold ("100ms" or ns), baseline (path), db (path to keep the DuckDB file),
    memory_limit, max_cycle_length, rules (kinds to run). Raises
    `analyzer.errors.UnusableInput` on unusable input.
    """
    from .analysis import analyze as _analyze

    return _analyze(paths, **options)
