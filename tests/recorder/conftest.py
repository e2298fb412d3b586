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

    @staticmethod
    def allocated_blocks() -> int:
        """sys.getallocatedblocks() and the events alive (made in slabs of their
        own, not by pymalloc: see ev_slabs), less the freed states and buffers the
        recorder keeps for reuse (bounded, sized by what the last drain intervals
        made: their number moves with the timing of the drains, not with a leak)."""
        from recorder import _core

        stats = getattr(_core.speedups, "pool_stats", None)
        if stats is None:
            return sys.getallocatedblocks()
        kept = sum(n for n, _limit, _misses in stats().values())
        return sys.getallocatedblocks() + _core.speedups.ev_slabs()[1] - kept

    @staticmethod
    def thread_class_counting(reads: list, *names: str, on_set=None) -> type:
        """A threading.Thread subclass whose attributes ``names`` append (name, the
        reading thread's ident) to ``reads`` each time they are read (kept in the
        instance dict; ``on_set(name)``, when given, runs after each is set)."""
        import threading

        def counted(name: str) -> property:
            def get(self):
                reads.append((name, threading.get_ident()))
                try:
                    return self.__dict__[name]
                except KeyError:
                    raise AttributeError(name) from None

            def put(self, value) -> None:
                self.__dict__[name] = value
                if on_set is not None:
                    on_set(name)

            return property(get, put)

        return type("Counted", (threading.Thread,), {n: counted(n) for n in names})

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

