"""Fixtures: record a real program with the recorder, then analyze its traces."""
from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

import recorder
from analyzer import analyze


class Recorded:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.files: list[str] = []

    def analyze(self, **options) -> dict:
        return analyze([str(self.out)], **options)


@pytest.fixture
def record(tmp_path):
    """`with record() as rec:` runs the block under the recorder; then `rec.analyze()`."""

    count = [0]

    @contextlib.contextmanager
    def _record(**options):
        # A folder of its own for each recording of the test (the first is "traces").
        count[0] += 1
        rec = Recorded(tmp_path / ("traces" if count[0] == 1 else f"traces{count[0]}"))
        recorder.start(out_dir=rec.out, **options)
        try:
            yield rec
        finally:
            rec.files = recorder.stop()

    return _record


def kinds(doc: dict, kind: str) -> list[dict]:
    return [f for f in doc["findings"] if f["kind"] == kind]


def line_of(func, marker: str) -> str:
    """'path:line' of the first source line of `func` containing `marker` (path as the analyzer shows it)."""
    import inspect
    import os

    lines, start = inspect.getsourcelines(func)
    for i, text in enumerate(lines):
        if marker in text:
            path = inspect.getsourcefile(func)
            rel = os.path.relpath(path, os.getcwd())
            shown = rel if not rel.startswith("..") else path
            return f"{shown}:{start + i}"
    raise AssertionError(f"{marker!r} not in {func.__name__}")
