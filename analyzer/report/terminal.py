"""Terminal summary with rich: trace summary, findings by severity with their
sites, cycle steps, the most contended and the longest-held locks.

Every untrusted string (lock, thread and file names) goes in as `Text`, never
as markup.
"""
from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..durations import fmt_ns

STYLE = {"critical": "bold white on red", "error": "bold red", "warning": "yellow", "info": "cyan"}
DETAILED = {"critical", "error", "warning"}


def _t(value: object, style: str = "") -> Text:
    return Text("" if value is None else str(value), style=style)


def _lock_label(lock: dict) -> str:
    return lock.get("name") or (f"{lock['type'].split('|')[0]}@{lock['created_at']}" if lock.get("created_at")
                                else lock["id"])


def trace_header(doc: dict) -> Text:
    t = doc["trace"]
    runs = t["processes"]
    text = Text()
    text.append("lockscope analyze: ", style="bold")
    text.append(f"{len(t['files'])} file(s), {len(runs)} process(es), {t['threads']} threads, "
                f"{t['tasks']} tasks, {t['locks']} locks, {t['events']:,} events, "
                f"{fmt_ns(t['duration_ns'])} traced")
    if t["corrupt_lines"]:
        first = t["corrupt"][0]
        text.append(f"\n{t['corrupt_lines']} corrupt line(s) skipped", style="yellow")
        text.append(f" (first: {first['file']}:{first['line']}: {first['reason']})")
    if t["dropped"]:
        text.append(f"\n{t['dropped']} events dropped by the recorder", style="yellow")
    if t["incomplete_runs"]:
        text.append(f"\nno end record (process killed or hung): {', '.join(t['incomplete_runs'])}",
                    style="yellow")
    for w in t["warnings"]:
        if "dropped" in w or "no end record" in w:
            continue
        text.append(f"\nwarning: {w}", style="yellow")
    return text


def findings_table(doc: dict) -> Table:
    table = Table(title="Findings", title_justify="left", expand=False)
    for col in ("id", "severity", "kind", "finding", "site", "count"):
        table.add_column(col, overflow="fold")
    for f in doc["findings"]:
        site = f["sites"][0]["site"] if f["sites"] else ""
        table.add_row(_t(f["id"]), _t(f["severity"], STYLE[f["severity"]]), _t(f["kind"]), _t(f["title"]),
                      _t(site), _t(f["count"]))
    return table


def steps_table(f: dict) -> Table:
    table = Table(show_header=True, box=None, padding=(0, 1))
    for col in ("actor", "holding (taken at)", "requests", "at"):
        table.add_column(col, overflow="fold")
    for s in f["steps"]:
        held = Text()
        for i, h in enumerate(s["holds"]):
            if i:
                held.append(", ")
            held.append(h["name"] or h["lock"], style="bold")
            held.append(f" ({h['acquired_at'] or '?'})")
        a = s["actor"]
        table.add_row(_t(f"{a['kind']} {a['name']}"), held, _t(s["requests"]["name"] or s["requests"]["lock"], "bold"),
                      _t(s["site"]))
    return table


def finding_panel(f: dict) -> Panel:
    if f["steps"]:  # the steps table replaces the per-edge lines of the message
        lines = f["message"].splitlines()
        parts: list = [_t("\n".join(ln for ln in lines if not ln.startswith("  "))), steps_table(f)]
    else:
        parts = [_t(f["message"])]
    if f.get("partial"):
        parts.append(_t(f"Partial evidence: {f.get('partial_reason') or 'events were lost'}.", "yellow"))
    title = Text()
    title.append(f"{f['id']} {f['severity']}", style=STYLE[f["severity"]])
    title.append(f"  {f['title']}")
    return Panel(Group(*parts), title=title, title_align="left", expand=False)


def locks_tables(doc: dict, top: int = 10) -> list[Table]:
    out = []
    contended = [s for s in doc["locks"] if s["contentions"]][:top]
    if contended:
        t = Table(title="Most contended locks", title_justify="left")
        for col in ("lock", "created at", "acq", "contended", "wait total", "wait max", "hold p95", "top waiting site"):
            t.add_column(col, overflow="fold")
        for s in contended:
            t.add_row(_t(_lock_label(s)), _t(s["created_at"]), _t(s["acquisitions"]), _t(s["contentions"]),
                      _t(fmt_ns(s["wait_total_ns"])), _t(fmt_ns(s["wait_max_ns"])), _t(fmt_ns(s["hold_p95_ns"])),
                      _t(s["top_wait_sites"][0]["site"] if s["top_wait_sites"] else ""))
        out.append(t)
    held = sorted((s for s in doc["locks"] if s["hold_max_ns"] is not None),
                  key=lambda s: -s["hold_max_ns"])[:top]
    if held:
        t = Table(title="Longest-held locks", title_justify="left")
        for col in ("lock", "created at", "acq", "hold max", "hold p99", "hold total", "top holder site"):
            t.add_column(col, overflow="fold")
        for s in held:
            t.add_row(_t(_lock_label(s)), _t(s["created_at"]), _t(s["acquisitions"]), _t(fmt_ns(s["hold_max_ns"])),
                      _t(fmt_ns(s["hold_p99_ns"])), _t(fmt_ns(s["hold_total_ns"])),
                      _t(s["top_hold_sites"][0]["site"] if s["top_hold_sites"] else ""))
        out.append(t)
    return out


def render(doc: dict, console: Console | None = None) -> None:
    """Print the summary of findings document `doc`."""
    console = console or Console()
    console.print(trace_header(doc))
    if doc["findings"]:
        console.print(findings_table(doc))
        for f in doc["findings"]:
            if f["severity"] in DETAILED:
                console.print(finding_panel(f))
    for table in locks_tables(doc):
        console.print(table)
    counts = doc["summary"]
    line = Text()
    total = sum(counts.values())
    line.append(f"{total} finding(s): ", style="bold")
    line.append(", ".join(f"{n} {sev}" for sev, n in counts.items() if n) or "none")
    if doc.get("suppressed"):
        line.append(f" ({doc['suppressed']} known from the baseline not shown)")
    console.print(line)
