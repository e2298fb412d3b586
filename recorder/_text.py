"""JSON encoding of trace records that never fails on text that is not UTF-8.

Text from the operating system can hold lone surrogates: ``os.fsdecode`` turns each
byte that is not UTF-8 into U+DC80..U+DCFF (``surrogateescape``), in argv, the
working directory, file names and whatever a program derives from them (thread and
lock names).  orjson refuses such strings, so a record that has one is encoded
again with every string made valid: an escaped byte is written as the four
characters ``\\xNN`` (its value in hex) and any other lone surrogate as U+FFFD.
Records without such text cost nothing extra.
"""

from __future__ import annotations

from typing import Any

import orjson


def clean_text(text: str) -> str:
    """``text`` as valid Unicode: escaped bytes as ``\\xNN``, other surrogates as U+FFFD."""
    import re  # only for the rare bad string: not at start-up

    text = re.sub("[\ud800-\udc7f\udd00-\udfff]", "\ufffd", text)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return clean_text(str(value))


def dumps(record: dict) -> bytes:
    """``record`` as one JSON line (with its newline); other objects become their ``str``."""
    try:
        return orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE)
    except (orjson.JSONEncodeError, TypeError):
        return orjson.dumps(_clean(record), option=orjson.OPT_APPEND_NEWLINE)
