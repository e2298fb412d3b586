"""One bug, one finding: link findings about the same hold or wait, and fold the
lesser ones under the main one.

Each rule says which holds and waits a finding is about (`Finding.about`, keys made
by `hold_key` / `wait_key`). After every rule ran, findings are taken in rank
order (severity, then kind priority); one that shares a key with an earlier
finding is folded under that finding's main finding, else it is a main finding
itself. A lesser finding can therefore join a main one, but never bridge two main
findings into one. A folded finding is never more severe than its main one.

The reports show a main finding with a one-line summary of the folded ones
(`also_text`); the JSON keeps every finding, with `folded_into` / `related`.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .durations import fmt_ns
from .findings import SEVERITY_RANK, Finding

# Most telling kind first: what a reader should see as the headline of one bug.
KIND_PRIORITY = ("deadlock", "wait-cycle", "self-deadlock", "stalled", "potential-deadlock",
                 "held-across-await", "long-hold", "acquire-timeout", "hot-lock", "guarded-cycle")
MAX_ABOUT = 100  # keys kept per finding: enough to link it, bounded for huge traces


def hold_key(run: object, obj: object, seq: object) -> str:
    """The key of one hold: its run, lock instance and acquire seq."""
    return f"hold:{run}/{obj}/{seq}"


def wait_key(run: object, seq: object) -> str:
    """The key of one wait: its run and seq."""
    return f"wait:{run}/{seq}"


def keys(items) -> list[str]:
    """`items` without repeats, in order, at most MAX_ABOUT."""
    out: dict[str, None] = {}
    for k in items:
        if len(out) >= MAX_ABOUT:
            break
        out[k] = None
    return list(out)


def priority(f: Finding) -> int:
    """Kind priority; an acquire that gave up on a lock its waiter held (a recursive
    acquire, a self-deadlock broken by the timeout) ranks as a self-deadlock: it is
    why the hold was long and the lock contended."""
    kind = "self-deadlock" if f.kind == "acquire-timeout" and f.details.get("recursive") else f.kind
    return KIND_PRIORITY.index(kind) if kind in KIND_PRIORITY else len(KIND_PRIORITY)


def fold(findings: list[Finding]) -> dict[int, int]:
    """{index of a folded finding: index of its main finding} for `findings`."""
    order = sorted(range(len(findings)), key=lambda i: (SEVERITY_RANK[findings[i].severity],
                                                        priority(findings[i]), i))
    pos = {i: p for p, i in enumerate(order)}
    main_of: dict[int, int] = {}
    owner: dict[str, int] = {}  # key -> main finding of the first finding (in rank order) about it
    for i in order:
        mains = [owner[k] for k in findings[i].about if k in owner]
        main = min(mains, key=pos.__getitem__) if mains else i
        if main != i:
            main_of[i] = main
        for k in findings[i].about:
            owner.setdefault(k, main)
    return main_of


def also_text(folded: dict, fmt: Callable[[Any], str] = fmt_ns) -> str:
    """What a folded finding adds to its main one, in a few words (from its JSON),
    naming its lock: "'users' held 1 s" (durations by ``fmt``: a report writes each
    duration one way)."""
    locks = [x for x in folded.get("locks") or [] if isinstance(x, dict)]
    label = (locks[0].get("label") or locks[0].get("name")) if len(locks) == 1 else None
    text = _what(folded, f" of '{label}'" if label else "", fmt)
    return f"'{label}' {text}" if label and folded.get("kind") in PER_LOCK else text


PER_LOCK = ("long-hold", "hot-lock", "held-across-await")


def _what(folded: dict, of_lock: str, fmt_ns: Callable[[Any], str]) -> str:
    d = folded.get("details") or {}
    kind = folded.get("kind")
    if kind == "long-hold" and d.get("max_hold_ns") is not None:
        over = d.get("holds_over") or 0
        return f"held {fmt_ns(d['max_hold_ns'])}" + (f" ({over} holds over {fmt_ns(d.get('threshold_ns'))})"
                                                       if over > 1 else "")
    if kind == "hot-lock" and d.get("contentions") is not None:
        n = d["contentions"]
        return f"contended {n} time{'' if n == 1 else 's'}, {fmt_ns(d.get('wait_total_ns'))} waited in all"
    if kind == "held-across-await":
        return "held across an await" + (" (the event loop froze)" if d.get("loop_froze") else "")
    if kind == "acquire-timeout" and d.get("max_wait_ns") is not None:
        return f"an acquire{of_lock} gave up after {fmt_ns(d['max_wait_ns'])}"
    if kind == "stalled":
        return "a wait never ended"
    return str(folded.get("title") or kind)


def folded_under(main: dict, by_id: dict[str, dict]) -> list[dict]:
    """The findings folded under `main` (`by_id`: every finding of the document by id)."""
    return [by_id[r] for r in main.get("related") or [] if isinstance(r, str) and r in by_id]


def also_line(main: dict, by_id: dict[str, dict],
              fmt: Callable[[Any], str] = fmt_ns) -> str | None:
    """'held 1 s (F4 long-hold); ...' for the findings folded under `main`, or None."""
    folded = folded_under(main, by_id)
    if not folded:
        return None
    return "; ".join(f"{also_text(f, fmt)} ({f.get('id')} {f.get('kind')})" for f in folded)


def main_findings(findings: list[dict]) -> list[dict]:
    """The findings that are not folded under another one."""
    return [f for f in findings if not f.get("folded_into")]
