"""The header's encoder without orjson says what orjson would say."""

from __future__ import annotations

import json
import math
import os

import pytest

from recorder._text import dumps, dumps_plain

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
    assert json.loads(plain) == json.loads(dumps(record))


def test_non_finite_floats_are_null_as_with_orjson():
    record = {"a": math.nan, "b": math.inf, "c": -math.inf}
    assert json.loads(dumps_plain(record)) == json.loads(dumps(record)) == {
        "a": None, "b": None, "c": None}
