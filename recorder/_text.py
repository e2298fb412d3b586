"""JSON encoding of trace records that never fails on text that is not UTF-8.

Text from the operating system can hold lone surrogates: ``os.fsdecode`` turns each
byte that is not UTF-8 into U+DC80..U+DCFF (``surrogateescape``), in argv, the
working directory, file names and whatever a program derives from them (thread and
lock names).  orjson refuses such strings, so a record that has one is encoded
again with every string made valid: an escaped byte is written as the four
characters ``\\xNN`` (its value in hex) and any other lone surrogate as U+FFFD.
Records without such text cost nothing extra.

With the C accelerator, records are encoded by its ``dumps`` and orjson is never
imported: with what it imports (dataclasses, inspect, uuid, platform, datetime,
json) it was most of what starting the recorder cost, about 90 M instructions in
every recorded process.  Without the accelerator orjson is imported when first
needed, not when the recorder starts, and a process that records nothing never
needs it.  The header and ``end`` records, which every process writes, are encoded
without it either way (:func:`dumps_plain`).
"""

from __future__ import annotations

import _thread

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_orjson = None
fast_dumps = None  # the C accelerator's dumps, when built: orjson is then never needed
_importing = _thread.allocate_lock()  # held while a thread imports orjson (never traced)
# What orjson's module initialisation imports: imported first, in Python.
_ORJSON_NEEDS = ("dataclasses", "datetime", "enum", "json", "uuid")


def load_orjson():  # noqa: ANN201  (the orjson module)
    """Import orjson (once); the recorder calls it in the thread that records first,
    before it starts the writer thread.

    orjson's module initialisation (native code) crashes the process (SIGSEGV) when an
    import it makes raises, and a signal handler that raises (Ctrl-C's
    KeyboardInterrupt, in the main thread) can make any import that runs Python code
    raise.  So what it imports is imported first, here, where an interruption is
    only an exception (tried again at the next call); orjson then finds it all in
    ``sys.modules`` and runs no Python code.  (Not in a thread of ours: a thread that
    imports while the main thread ends with KeyboardInterrupt changes its exit status,
    namedtuple's exec resetting CPython's flag for it.)"""
    global _orjson
    if _orjson is None:
        with _importing:
            if _orjson is None:
                for name in _ORJSON_NEEDS:
                    __import__(name)
                import orjson

                _orjson = orjson
    return _orjson


def wait_for_import(timeout: float) -> None:
    """Wait (bounded) for an import of orjson in progress in another thread: called
    before fork(), whose child would otherwise inherit that import half done (its
    module lock held by a thread the child does not have: any import of it hangs)."""
    if _importing.acquire(True, timeout):
        _importing.release()


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
    if fast_dumps is not None:
        line = fast_dumps(record)
        if line is None:  # a str that is not valid Unicode
            line = fast_dumps(_clean(record))
        if line is not None:
            return line
    orjson = _orjson or load_orjson()
    try:
        return orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE)
    except (orjson.JSONEncodeError, TypeError):
        return orjson.dumps(_clean(record), option=orjson.OPT_APPEND_NEWLINE)


_quote: Any = None  # json's own C string escaper (_json), loaded at the first use


def dumps_plain(record: dict) -> bytes:
    """``record`` (str, int, float, bool, None, lists and dicts of them) as one JSON
    line, without orjson: for the header and ``end`` records."""
    global _quote
    if fast_dumps is not None:  # (the C accelerator's: no _json to load, 0.2 ms)
        return dumps(record)
    if _quote is None:
        try:
            from _json import encode_basestring as _quote
        except ImportError:  # pragma: no cover - an interpreter without it
            return dumps(record)
    parts: list = []
    _plain(record, parts)
    parts.append("\n")
    text = "".join(parts)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (text from the OS that is not UTF-8)
        parts = []
        _plain(_clean(record), parts)
        parts.append("\n")
        return "".join(parts).encode("utf-8")


def _plain(value: Any, out: list) -> None:
    if isinstance(value, str):
        out.append(_quote(value))
    elif value is None:
        out.append("null")
    elif value is True or value is False:
        out.append("true" if value else "false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        # (orjson writes null for NaN and infinities too)
        out.append(float.__repr__(value) if value - value == 0 else "null")
    elif isinstance(value, dict):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(_quote(str(key)))
            out.append(":")
            _plain(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _plain(item, out)
        out.append("]")
    else:
        out.append(_quote(str(value)))
