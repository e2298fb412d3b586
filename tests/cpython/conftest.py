"""Run CPython's own asyncio lock and queue tests against the traced primitives.

``test_locks.py`` and ``test_queues.py`` are copied unchanged from CPython 3.11.7
(``Lib/test/test_asyncio``, PSF licence).  Every test runs while the recorder is on,
so ``asyncio.Lock`` & co. are lockscope's traced classes; the fixture checks that and
that the test really produced asyncio records."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

import recorder
from recorder import _aio_sync

if sys.version_info[:2] != (3, 11):
    collect_ignore = ["test_locks.py", "test_queues.py"]


@pytest.fixture(scope="module", autouse=True)
def recording(tmp_path_factory):
    out = tmp_path_factory.mktemp("cpython-traces")
    recorder.start(out, flush_interval=30)
    try:
        assert asyncio.Lock is _aio_sync.Lock and asyncio.Queue is _aio_sync.Queue
        yield
    finally:
        files = recorder.stop()
    kinds = set()
    ops: dict[str, int] = {}
    validator = _validator()
    for f in files:
        for line in Path(f).read_text().splitlines():
            rec = json.loads(line)
            validator.validate(rec)
            if rec["k"] == "ev":
                ops[rec["op"]] = ops.get(rec["op"], 0) + 1
            if rec["k"] in ("lock", "resource", "task"):
                kinds.add(rec.get("type", rec["k"]))
    # The module really exercised the traced classes.
    assert "task" in kinds
    assert kinds & {"asyncio.Lock", "asyncio.Queue", "asyncio.LifoQueue"}
    assert ops.get("end", 0) > 10 and ops.get("acquire", 0) + ops.get("wait-begin", 0) > 10


def _validator():
    import jsonschema

    schema_path = Path(__file__).parents[2] / "docs" / "trace-format.schema.json"
    schema = json.loads(schema_path.read_text())
    return jsonschema.Draft202012Validator(schema)
