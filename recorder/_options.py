"""Checking the options of ``recorder.start()``: a bad value never raises.

Each invalid option gives one warning on stderr and its default is used instead;
``flush_interval`` is kept within [MIN_FLUSH_INTERVAL, MAX_FLUSH_INTERVAL] so that
the writer can neither spin (0 s) nor overflow a lock timeout.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # (typing costs milliseconds at start-up)
    from typing import Any

MIN_FLUSH_INTERVAL = 0.01
MAX_FLUSH_INTERVAL = 3600.0


def _warn(msg: str) -> None:
    try:
        sys.stderr.write(f"lockscope: {msg}\n")
        sys.stderr.flush()
    except Exception:
        pass


def _number(value: Any) -> float | None:
    """``value`` as a finite float, None when it is not a real number (bools and
    strings are not: ``stacks='3'`` is a mistake, not a request)."""
    if isinstance(value, (bool, str, bytes)):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return x if x - x == 0 else None  # (finite: inf - inf and nan - nan are nan)


def out_dir(value: Any, default: str) -> str:
    try:
        path = os.fspath(value)
        return os.fsdecode(path) if isinstance(path, bytes) else path
    except TypeError:
        _warn(f"ignoring out_dir={value!r} (not a path); using {default!r}")
        return default


def whole(name: str, value: Any, default: int, minimum: int) -> int:
    """An integer option (a float with no fraction is accepted)."""
    x = _number(value)
    if x is None or x != int(x) or x < minimum:
        _warn(f"ignoring {name}={value!r} (want a whole number >= {minimum}); "
              f"using {default}")
        return default
    return int(x)


def amount(name: str, value: Any, default: float, minimum: float) -> float:
    x = _number(value)
    if x is None or x < minimum:
        _warn(f"ignoring {name}={value!r} (want a number >= {minimum}); using {default}")
        return default
    return x


def flush_interval(value: Any, default: float) -> float:
    x = _number(value)
    if x is None or x < 0:
        _warn(f"ignoring flush_interval={value!r} (want seconds >= {MIN_FLUSH_INTERVAL}); "
              f"using {default}")
        return default
    if x < MIN_FLUSH_INTERVAL or x > MAX_FLUSH_INTERVAL:
        clamped = min(max(x, MIN_FLUSH_INTERVAL), MAX_FLUSH_INTERVAL)
        _warn(f"flush_interval={value!r} is out of range; using {clamped}")
        return clamped
    return x


MODES = ("full", "summary")


def mode(value: Any) -> str:
    """The recording mode: ``full`` or ``summary``."""
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text not in MODES:
        _warn(f"ignoring mode={value!r} (want 'full' or 'summary'); using 'full'")
        return "full"
    return text


def env_number(raw: str | None, default: float) -> Any:
    """A number from the environment, or ``raw`` itself (amount() then warns)."""
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        return raw
