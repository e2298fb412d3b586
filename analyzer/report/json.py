"""The findings document as a JSON file."""
from __future__ import annotations

import os
from pathlib import Path

import orjson


def dumps(doc: dict) -> bytes:
    """`doc` as the bytes of the JSON file (indented, UTF-8)."""
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n"


def write(doc: dict, path: str | os.PathLike) -> None:
    """Write `doc` to `path` (indented, UTF-8)."""
    Path(path).write_bytes(dumps(doc))
