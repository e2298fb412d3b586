from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lockscope_tracecheck import Trace  # noqa: E402

import recorder  # noqa: E402


class Session:
    """One in-process recording into a temporary directory."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.files: list[str] = []

    def start(self, **options) -> recorder.Recording:
        options.setdefault("flush_interval", 0.05)
        rec = recorder.start(self.out_dir, **options)
        assert rec.active and recorder.is_recording()
        return rec

    def stop(self, allow_torn_tail: bool = False) -> Trace:
        self.files = recorder.stop()
        return Trace(self.files, allow_torn_tail)


@pytest.fixture
def rec(tmp_path: Path):
    """Start/stop an in-process recording; always stopped at teardown."""
    session = Session(tmp_path / "traces")
    try:
        yield session
    finally:
        if recorder.is_recording():
            recorder.stop()

