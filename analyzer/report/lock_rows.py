"""Which rows a lock statistics table shows: the program's own locks, with the locks
that libraries made (the standard library's queues, futures, logging; installed
packages) folded into one summary line unless all are asked for."""
from __future__ import annotations

from ..durations import fmt_ns


def all_asked(doc: dict, all_locks: bool | None) -> bool:
    """`all_locks`, or when None what the document was analyzed with (`--all-locks`)."""
    return bool((doc.get("options") or {}).get("all_locks")) if all_locks is None else all_locks


def split(locks: list[dict], all_locks: bool = False,
          keep: set[str] | frozenset[str] = frozenset()) -> tuple[list[dict], dict | None]:
    """(rows to show, summary of the folded library locks or None).  Library locks whose
    id is in `keep` (those a finding is about) keep their own row."""
    if all_locks:
        return list(locks), None
    own = [s for s in locks if not s.get("library") or str(s.get("id")) in keep]
    lib = [s for s in locks if s.get("library") and str(s.get("id")) not in keep]
    if not lib:
        return own, None
    return own, {
        "locks": len(lib),
        "libraries": sorted({str(s["library"]) for s in lib}),
        "acquisitions": sum(int(s.get("acquisitions") or 0) for s in lib),
        "contentions": sum(int(s.get("contentions") or 0) for s in lib),
        "wait_total_ns": sum(int(s.get("wait_total_ns") or 0) for s in lib),
        "hold_total_ns": sum(int(s.get("hold_total_ns") or 0) for s in lib),
    }


def fold_line(summary: dict) -> str:
    """'+ 200 library locks (concurrent.futures, queue): 1,204 acquisitions, 3 waits
    (1.2 ms in all)'."""
    n = summary["locks"]
    waits = summary["contentions"]
    text = (f"+ {n:,} library lock{'s' if n != 1 else ''} ({', '.join(summary['libraries'])}): "
            f"{summary['acquisitions']:,} acquisitions, {waits:,} wait{'s' if waits != 1 else ''}")
    if waits:
        text += f" ({fmt_ns(summary['wait_total_ns'])} in all)"
    return text
