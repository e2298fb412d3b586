"""How text meant for people refers to processes: by program and pid
(``app.py (pid 4123)``), never by run id (run ids stay in the JSON for machines)."""
from __future__ import annotations

from typing import Any


def program(argv: Any) -> str | None:
    """The program a process ran: the last path component of argv[0]."""
    if not isinstance(argv, list) or not argv or not isinstance(argv[0], str) or not argv[0]:
        return None
    return argv[0].replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or None


def process_label(proc: dict | None) -> str:
    """`app.py (pid 4123)` for a process of the trace summary (or a trace header)."""
    proc = proc or {}
    prog, pid = program(proc.get("argv")), proc.get("pid")
    if prog and pid is not None:
        return f"{prog} (pid {pid})"
    if pid is not None:
        return f"pid {pid}"
    return prog or "a process"


def process_labels(doc: dict) -> dict[str, str]:
    """Run id -> process label, for every process of findings document `doc`
    (two processes with one label are told apart by their host)."""
    procs = (doc.get("trace") or {}).get("processes") or []
    labels = {p.get("run"): process_label(p) for p in procs}
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    for p in procs:
        if counts[labels[p.get("run")]] > 1 and p.get("host"):
            labels[p.get("run")] += f" on {p['host']}"
    return labels
