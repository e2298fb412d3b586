"""What recording cost the traced processes, in one sentence (terminal and HTML)."""
from __future__ import annotations

from typing import Any

from ..durations import fmt_ns


def fmt_bytes(n: float) -> str:
    """Bytes as '512 B', '340 kB', '12.5 MB', '3.2 GB' (powers of 1000)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            v = n / size
            return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"
    return f"{n:.0f} B"


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0


def percent(ratio: float) -> str:
    """A share as '2.5 %' (two significant digits)."""
    return f"{100 * ratio:.2g} %"


def cost_sentence(cost: Any) -> str | None:
    """'the recorder's writer used 1.95 ms of CPU, 3.1 % of the process's 63.3 ms;
    4,028 events, 342 kB written', from a trace summary's `cost` (None when the
    trace says nothing about it, or it is not the documented shape)."""
    if not isinstance(cost, dict) or not _number(cost.get("cpu_ns")):
        return None
    cpu, writer = cost["cpu_ns"], cost.get("writer_ns")
    procs = cost.get("processes")
    whose = "the processes'" if isinstance(procs, int) and procs > 1 else "the process's"
    if _number(writer):
        ratio = cost.get("writer_share")  # (over the processes that say both)
        if not _number(ratio):
            ratio = writer / cpu if cpu else None
        share = percent(ratio) if ratio is not None else "all"
        text = f"the recorder's writer used {fmt_ns(writer)} of CPU, {share} of {whose} {fmt_ns(cpu)}"
    else:
        text = f"{whose} CPU while recording: {fmt_ns(cpu)}"
    rest = []
    if _number(cost.get("events")):
        rest.append(f"{int(cost['events']):,} events")
    if _number(cost.get("bytes")):
        rest.append(f"{fmt_bytes(cost['bytes'])} written")
    return text + ("; " + ", ".join(rest) if rest else "")


def writer_share_text(cost: Any) -> str:
    """A process's writer CPU as '2.5 % (2.03 ms)', or '–' when its trace does not say."""
    if not isinstance(cost, dict) or not _number(cost.get("writer_ns")) or not _number(cost.get("cpu_ns")):
        return "–"
    share = percent(cost["writer_ns"] / cost["cpu_ns"]) if cost["cpu_ns"] else "–"
    return f"{share} ({fmt_ns(cost['writer_ns'])})"
