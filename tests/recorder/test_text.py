"""The encoders without orjson (the header's, and the C accelerator's for every
record) say what orjson would say."""

from __future__ import annotations

import json
import math
import os

import orjson
import pytest

from recorder import _core, _text
from recorder._text import _clean, dumps, dumps_plain

BAD = os.fsdecode(b"caf\xe9-\xff")  # not valid UTF-8


@pytest.mark.parametrize("record", [
    {"k": "header", "argv": ["-c", "print('x')", 'say "hi"\n\t\\', "naïve ☃ 𝄞"], "part": 0,
     "mono_ns": 2**62 + 1, "wall_ns": -5, "parent_run": None, "ok": True, "no": False,
     "settings": {"flush_interval": 0.25, "max_file_mb": 64.0, "tiny": 1e-7, "big": 1e300,
                  "mode": "full", "stacks": 8}},
    {"k": "end", "ts": 123, "reason": "exit"},
    {"argv": [BAD, f"/srv/{BAD}.py", "a\ud800b"], "cwd": BAD},
    {"nested": [[1, [2, {"x": (3, 4)}]], {}], "control": "\x00\x1f\x7f"},
    {1: "int key", "obj": object.__new__(type("Thing", (), {"__str__": lambda s: "thing"}))},
])
def test_plain_encoding_reads_back_as_orjsons(record):
    plain = dumps_plain(record)
    assert plain.endswith(b"\n") and plain.count(b"\n") == 1
    assert json.loads(plain) == json.loads(dumps(record)) == json.loads(_with_orjson(record))
    if _text.fast_dumps is not None:  # (the C encoder: the same bytes as the plain one)
        assert dumps(record) == plain


def _with_orjson(record: dict) -> bytes:
    """What the recorder wrote with orjson before the C encoder."""
    try:
        return orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE)
    except (orjson.JSONEncodeError, TypeError):
        return orjson.dumps(_clean(record), option=orjson.OPT_APPEND_NEWLINE)


@pytest.mark.skipif(_core.speedups is None, reason="the C accelerator is not built")
def test_the_c_encoder_is_the_recorders_and_cleans_bad_text_as_before():
    assert _text.fast_dumps is _core.speedups.dumps
    assert _core.speedups.dumps({"name": "a\ud800b"}) is None  # (the caller cleans it)
    assert dumps({"name": "a\ud800b", "path": BAD}) == _with_orjson(
        {"name": "a\ud800b", "path": BAD})
    deep: list = []
    for _ in range(100):  # (past the nesting the C encoder follows: str() of the rest)
        deep = [deep]
    inner = json.loads(dumps({"d": deep}))["d"]
    while isinstance(inner, list):
        inner = inner[0]
    assert isinstance(inner, str) and inner.startswith("[[[")


def test_non_finite_floats_are_null_as_with_orjson():
    record = {"a": math.nan, "b": math.inf, "c": -math.inf}
    assert json.loads(dumps_plain(record)) == json.loads(dumps(record)) == {
        "a": None, "b": None, "c": None}
