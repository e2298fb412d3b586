"""Number, duration, time and lock-name formatting shared by the HTML report."""
from __future__ import annotations

from typing import Any


def duration(ns: Any) -> str:
    """Nanoseconds as a short human duration: '850 ns', '12.3 µs', '4.56 ms', '1.23 s', '2 min 03 s'."""
    if ns is None:
        return "–"
    ns = float(ns)
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000:
        return f"{sign}{ns:.0f} ns"
    for unit, scale in (("µs", 1e3), ("ms", 1e6), ("s", 1e9)):
        value = ns / scale
        if value < 1000 or unit == "s":
            if unit == "s" and value >= 60:
                break
            return f"{sign}{_sig3(value)} {unit}"
    seconds = ns / 1e9
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{sign}{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours} h {minutes:02d} min"


def _sig3(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def count(n: Any) -> str:
    """An integer with thousands separators ('–' for None)."""
    if n is None:
        return "–"
    try:
        return f"{int(n):,}"
    except (TypeError, ValueError):
        return str(n)


def wall(text: str | None) -> str:
    """'2026-11-27T20:59:59.123456Z' -> '2026-11-27 20:59:59.123456 UTC'."""
    if not text:
        return "–"
    return text.replace("T", " ").replace("Z", " UTC")


def wall_time(text: str | None) -> str:
    """Only the time of day of an ISO wall time: '20:59:59.123456'."""
    if not text:
        return "–"
    return text.split("T", 1)[-1].rstrip("Z")


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{count(n)} {word if n == 1 else (many or word + 's')}"


def times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{count(n)} times")


class LockNames:
    """Display names for lock ids, from `locks[]` and the findings' `locks`."""

    def __init__(self, result: dict) -> None:
        self.info: dict[str, dict] = {}
        for f in result.get("findings") or []:
            for lock in f.get("locks") or []:
                if lock.get("id") is not None:
                    self.info.setdefault(str(lock["id"]), lock)
        for lock in result.get("locks") or []:
            if lock.get("id") is not None:
                self.info[str(lock["id"])] = lock

    def label(self, lock_id: Any, fallback: Any = None) -> str:
        """The analysis's label (documents before labels: the user's name, else
        `Type@created_at`, else the id)."""
        if isinstance(lock_id, dict):
            lock = lock_id
            if not lock.get("label") and lock.get("id") is not None:
                lock = self.info.get(str(lock["id"])) or lock
        else:
            lock = self.info.get(str(lock_id)) or {}
        if lock.get("label"):
            return str(lock["label"])
        if lock.get("name"):
            return str(lock["name"])
        if fallback:
            return str(fallback)
        kind = str(lock.get("type") or "lock").split("|")[0].rsplit(".", 1)[-1]
        if lock.get("created_at"):
            return f"{kind}@{str(lock['created_at']).replace(chr(92), '/').rsplit('/', 1)[-1]}"
        if lock.get("label"):  # the analyzer's label, never an id
            return str(lock["label"])
        return str(lock.get("id") if lock else lock_id)

    def get(self, lock_id: Any) -> dict:
        return self.info.get(str(lock_id)) or {"id": lock_id}
