"""Terminal summary with rich: the trace in one line, one panel per finding that
needs attention (critical, error, warning), one line per other finding, then the
most contended and the longest-held locks (hot-lock findings are the rows of the
first table, tagged with their ids), then the count. Every finding is shown in
exactly one place.

Layout fits the console width: a cycle's steps read like lockdep's dependency
chain, one clause per line with its code site on the same line when it fits and
on a line of its own when not, so no name or path is ever cut in the middle
(folding is left only for a single token wider than the console). Every string
from the trace is shown through `visible()` (control and bidi characters
escaped) and goes in as `Text`, never as markup.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console, Group
from rich.padding import Padding
from rich.panel import Panel
from rich.text import Text

from .. import refs
from ..durations import fmt_ns
from ..fold import also_line, main_findings
from . import lock_rows
from .cost import cost_sentence
from .html.format import LockNames
from .visible import visible, visible_lines

STYLE = {"critical": "bold white on red", "error": "bold red", "warning": "yellow", "info": "cyan"}
DETAILED = {"critical", "error", "warning"}
SCENARIO_KINDS = ("potential-deadlock", "deadlock")
PANEL_CHROME = 4  # the panel's two borders and two padding columns
INDENT = "    "


def _t(value: object, style: str = "") -> Text:
    return Text(visible(value), style=style)


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


# ------------------------------------------------------------------ header


def trace_header(doc: dict, width: int = 80) -> Text:
    t = doc["trace"]
    parts = [_plural(len(t["files"]), "file"), _plural(len(t["processes"]), "process", "processes"),
             _plural(t["threads"], "thread"), _plural(t["tasks"], "task"), _plural(t["locks"], "lock"),
             _plural(t["events"], "event"), f"{fmt_ns(t['duration_ns'])} traced"]
    text = Text()
    text.append("lockscope analyze:", style="bold")
    column = cell_len("lockscope analyze:")
    for i, part in enumerate(parts):  # break lines only between the parts, never inside one
        piece = (" " if i == 0 else ", ") + part
        if i and column + cell_len(piece) + (i < len(parts) - 1) > width:  # room for the comma after it
            text.append(",\n  " + part)
            column = 2 + cell_len(part)
        else:
            text.append(piece)
            column += cell_len(piece)
    if t["corrupt_lines"]:
        first = t["corrupt"][0]
        text.append(f"\n{t['corrupt_lines']} corrupt line(s) skipped", style="yellow")
        text.append(visible(f" (first: {first['file']}:{first['line']}: {first['reason']})"))
    cost = cost_sentence(t.get("cost"))
    if cost:
        text.append(f"\nrecording cost: {cost}", style="dim")
    if t["dropped"]:
        text.append(f"\n{t['dropped']} events dropped by the recorder", style="yellow")
    if t["incomplete_runs"]:
        labels = refs.process_labels(doc)
        text.append(visible("\nno end record (process killed or hung): "
                            + ", ".join(labels.get(r) or "?" for r in t["incomplete_runs"])), style="yellow")
    for w in t["warnings"]:
        if "dropped" in w or "no end record" in w:
            continue
        text.append(visible(f"\nwarning: {w}"), style="yellow")
    return text


# ------------------------------------------------------- fitting to a width


@dataclass
class Clause:
    """Part of a step: `words` (e.g. 'holds sessions') and the code site it refers to,
    joined by `link` ('taken at', 'at')."""

    words: Text
    link: str = ""
    site: str | None = None
    aside: bool = False  # the site in parentheses: 'holds a (taken at x.py:3)'

    def inline(self) -> Text:
        out = self.words.copy()
        if self.site:
            out.append(f" ({self.link} " if self.aside else f" {self.link} ")
            out.append(visible(self.site), style="dim")
            if self.aside:
                out.append(")")
        return out


def fit_step(head: Text, clauses: list[Clause], width: int, indent: str = "  ") -> list[Text]:
    """Lines for one step: all on one line when it fits `width`; else the head, then
    one clause per line, and a clause's site on a line of its own when even that is
    too wide."""
    one = Text(indent).append_text(head)
    for i, c in enumerate(clauses):
        one.append(" and " if i else " ").append_text(c.inline())
    if one.cell_len <= width:
        return [one]
    lines = [Text(indent).append_text(head)]
    for c in clauses:
        line = Text(indent + INDENT).append_text(c.inline())
        if line.cell_len <= width or not c.site:
            lines.append(line)
            continue
        words = Text(indent + INDENT).append_text(c.words)
        words.append(f", {c.link}" if c.aside else f" {c.link}")
        lines.append(words)
        lines.append(site_line(visible(c.site), len(indent + 2 * INDENT), width))
    return lines


def site_line(site: str, indent: int, width: int) -> Text:
    """A code site on a line of its own: indented by `indent` when that fits, else less."""
    for cols in (indent, 4, 2, 0):
        if cols + cell_len(site) <= width or cols == 0:
            return Text(" " * cols).append(site, style="dim")
    raise AssertionError("unreachable")


def _lines(lines: Iterable[Text]) -> Text:
    out = Text(no_wrap=False, overflow="fold")
    for i, line in enumerate(lines):
        if i:
            out.append("\n")
        out.append_text(line)
    return out


# ----------------------------------------------------------------- findings


def _actor(actor: dict | None) -> Text:
    a = actor or {}
    return Text(f"{visible(a.get('kind') or 'thread')} ").append(visible(a.get("name") or "?"), style="bold")


def step_lines(f: dict, names: LockNames, width: int) -> list[Text]:
    """The steps of a cycle, lockdep-style: who holds what (taken where) and asks for what (where)."""
    out: list[Text] = []
    for s in f["steps"]:
        clauses = []
        for hold in s.get("holds") or []:
            clauses.append(Clause(Text("holds ").append(visible(names.label(hold.get("lock"), hold.get("name"))),
                                                        style="bold"), "taken at", hold.get("acquired_at") or "?", aside=True))
        req = s.get("requests") or {}
        if req.get("lock") is not None or not (req.get("resource") or req.get("type")):
            words = Text("requests ").append(visible(names.label(req.get("lock"), req.get("name"))), style="bold")
        else:
            words = Text(f"waits for {visible(req.get('type') or 'resource')} ").append(
                visible(req.get("name") or "?"), style="bold")
        clauses.append(Clause(words, "at", s.get("site") or "?"))
        out += fit_step(_actor(s.get("actor")), clauses, width)
    return out


def scenario_lines(f: dict, names: LockNames, width: int) -> list[Text]:
    """lockdep's 'possible unsafe locking scenario': one column per thread/task; empty
    when the columns do not fit `width`."""
    steps = f["steps"]
    k = len(steps)
    rows: list[tuple[int, str]] = []
    for i, s in enumerate(steps):
        holds = s.get("holds") or []
        wanted = (steps[i - 1].get("requests") or {}).get("lock")
        held = next((x for x in holds if str(x.get("lock")) == str(wanted)), holds[-1] if holds else None)
        if held is None:
            return []
        rows.append((i, f"lock({visible(names.label(held.get('lock'), held.get('name')))});"))
    heads = [visible((s.get("actor") or {}).get("name") or f"#{i + 1}") for i, s in enumerate(steps)]
    requested = [visible(names.label((s.get("requests") or {}).get("lock"), (s.get("requests") or {}).get("name")))
                 for s in steps]
    for marker in (" <- blocks", ""):  # without the markers when they do not fit
        cells = rows + [(i, f"lock({wanted});{marker}") for i, wanted in enumerate(requested)]
        widths = [max(cell_len(heads[c]), *(cell_len(x) for i, x in cells if i == c)) + 3 for c in range(k)]
        if 4 + sum(widths) <= width:
            break
    else:
        return []
    pad = "    "

    def row(i: int, cell: str) -> Text:
        return Text(pad + "".join(_pad(cell if c == i else "", widths[c]) for c in range(k)).rstrip())

    title = "What happened:" if f["kind"] == "deadlock" else "Possible unsafe scenario:"
    out = [Text(""), Text("  " + title),
           Text(pad + "".join(_pad(h, widths[c]) for c, h in enumerate(heads)).rstrip(), style="bold"),
           Text(pad + "".join(_pad("----", widths[c]) for c in range(k)).rstrip())]
    out += [row(i, cell) for i, cell in cells]
    out += [Text(""), Text(pad + "*** DEADLOCK ***", style="bold")]
    return out


def _indented(text: Text | str, indent: int, style: str = "") -> Padding:
    """`text` wrapped with every line indented by `indent` columns."""
    return Padding(text if isinstance(text, Text) else Text(text, style=style), (0, 0, 0, indent), expand=False)


def message_lines(f: dict, names: LockNames, width: int) -> list:
    """The finding's message; for a finding with steps, its indented per-step lines are
    replaced in place by the laid-out steps, so the sentence that introduces them
    still leads into them. Other indented lines keep their indent when wrapped."""
    lines = visible_lines(f.get("message") or "").split("\n")
    out: list = []
    steps_done = not f.get("steps")
    for line in lines:
        if line.startswith("  ") and not steps_done:
            out.append(_lines(step_lines(f, names, width)))
            steps_done = True
        elif line.startswith("  ") and f.get("steps"):
            continue
        elif line.startswith(" "):
            out.append(_indented(line.lstrip(" "), len(line) - len(line.lstrip(" "))))
        else:
            out.append(Text(line))
    if f["kind"] in SCENARIO_KINDS and f.get("steps"):
        scenario = scenario_lines(f, names, width)
        if scenario:
            out.append(_lines(scenario))
    return out


def folded_text(f: dict, by_id: dict[str, dict]) -> Text | None:
    """'also: held 1 s (F4 long-hold); ...': the findings folded under `f`, in one line."""
    line = also_line(f, by_id)
    return None if line is None else Text(visible(f"also: {line}"), style="dim")


def finding_panel(f: dict, names: LockNames, width: int, by_id: dict[str, dict] | None = None) -> Panel:
    inner = max(width - PANEL_CHROME, 20)
    parts: list = [Text(visible(f["title"]), style="bold"), Text("")]
    parts += message_lines(f, names, inner)
    if f.get("partial"):
        parts.append(_t(f"Partial evidence: {f.get('partial_reason') or 'events were lost'}.", "yellow"))
    also = folded_text(f, by_id or {})
    if also is not None:
        parts.append(also)
    title = Text()
    title.append(f" {visible(f['id'])} {f['severity']} ", style=STYLE.get(f["severity"], ""))
    title.append(f" {visible(f['kind'])} ")
    return Panel(Group(*parts), title=title, title_align="left", expand=True)


def info_lines(findings: list[dict], by_id: dict[str, dict] | None = None) -> Group | None:
    """The info findings other than hot-lock (those are rows of the contended-locks table)."""
    shown = [f for f in findings if f["severity"] not in DETAILED and f["kind"] != "hot-lock"]
    if not shown:
        return None
    parts: list = [Text("Other findings (info)", style="bold")]
    for f in shown:
        head = Text().append(visible(f["id"]), style=STYLE["info"]).append(f" {visible(f['kind'])}: ")
        parts.append(_indented(head.append(visible(f["title"])), 2))
        why = (f.get("details") or {}).get("explanation")
        if why:
            parts.append(_indented(visible(why), 6, "dim"))
        also = folded_text(f, by_id or {})
        if also is not None:
            parts.append(_indented(also, 6))
    return Group(*parts)


# -------------------------------------------------------------------- locks


def _pad(text: str, width: int, right: bool = False) -> str:
    fill = " " * max(width - cell_len(text), 0)
    return fill + text if right else text + fill


def _table(title: str, heads: list[str], rows: list[list[str]], numeric: set[int],
           site_cols: list[tuple[str, list[str]]], width: int, label: int = 0) -> Text:
    """A plain aligned table. Site columns (long paths) are columns when the whole
    row fits `width`, else lines of their own under each row ('created at ...');
    when even the rest is too wide, column `label` (the lock) goes on a line above
    each row."""
    rows_in = rows
    widths = [max(cell_len(h), *(cell_len(r[c]) for r in rows)) for c, h in enumerate(heads)]
    site_widths = [max(cell_len(h), *(cell_len(v) for v in vals)) for h, vals in site_cols]
    gap = "  "
    inline = 2 + sum(widths) + len(gap) * (len(widths) - 1) + sum(w + len(gap) for w in site_widths) <= width

    def cells(values: list[str], ws: list[int]) -> str:
        return gap.join(_pad(v, ws[c], c in numeric) for c, v in enumerate(values))

    label_apart = 2 + sum(widths) + len(gap) * (len(widths) - 1) > width
    if label_apart:  # even without the sites the row is too wide: the lock's label gets a line of its own
        heads, rows = heads[:label] + heads[label + 1:], [r[:label] + r[label + 1:] for r in rows]
        labels = [r[label] for r in rows_in]
        widths = widths[:label] + widths[label + 1:]
        numeric = {c - 1 if c > label else c for c in numeric}
    head = cells(heads, widths)
    if inline:
        head += "".join(gap + _pad(h, w) for (h, _), w in zip(site_cols, site_widths, strict=True))
    lines = [Text(title, style="bold"), Text("  " + head.rstrip(), style="bold")]
    for r, values in enumerate(rows):
        if label_apart:
            lines.append(Text("  ").append(labels[r], style="bold"))
        line = cells(values, widths)
        if inline:
            line += "".join(gap + _pad(vals[r], w) for (_, vals), w in zip(site_cols, site_widths, strict=True))
            lines.append(Text("  " + line.rstrip()))
            continue
        lines.append(Text("  " + line.rstrip()))
        for h, vals in site_cols:
            if not vals[r]:
                continue
            line = Text(f"  {INDENT}{h} ").append(vals[r], style="dim")
            if line.cell_len <= width:
                lines.append(line)
            else:
                lines += [Text(f"  {INDENT}{h}"), site_line(vals[r], 2 + 2 * len(INDENT), width)]
    return _lines(lines)


def locks_tables(doc: dict, names: LockNames, width: int = 80, top: int = 10,
                 all_locks: bool = False) -> list[Text]:
    """'Most contended locks' (tagged with their hot-lock finding ids) and 'Longest-held locks'
    of the program's own locks (of all with `all_locks`), then one line for the library locks."""
    out = []
    hot = {str(lk.get("id")): f["id"] for f in doc["findings"] if f["kind"] == "hot-lock" for lk in f["locks"][:1]}
    locks, folded = lock_rows.split(doc["locks"], all_locks, keep=set(hot))
    contended = [s for s in locks if s["contentions"]][:top]
    if contended:
        rows = [[visible(hot.get(str(s["id"]), "")), visible(names.label(s)), f"{s['acquisitions']:,}",
                 f"{s['contentions']:,}", fmt_ns(s["wait_total_ns"]), fmt_ns(s["wait_max_ns"]),
                 fmt_ns(s["hold_p95_ns"])] for s in contended]
        sites = [("created at", [visible(s["created_at"] or "") for s in contended]),
                 ("most waits at", [visible(s["top_wait_sites"][0]["site"] if s["top_wait_sites"] else "")
                                    for s in contended])]
        out.append(_table("Most contended locks", ["", "lock", "acq", "contended", "wait total", "wait max",
                                                   "hold p95"], rows, {2, 3, 4, 5, 6}, sites, width, label=1))
    held = sorted((s for s in locks if s["hold_max_ns"] is not None), key=lambda s: -s["hold_max_ns"])[:top]
    if held:
        rows = [[visible(names.label(s)), f"{s['acquisitions']:,}", fmt_ns(s["hold_max_ns"]), fmt_ns(s["hold_p99_ns"]),
                 fmt_ns(s["hold_total_ns"])] for s in held]
        sites = [("created at", [visible(s["created_at"] or "") for s in held]),
                 ("most held at", [visible(s["top_hold_sites"][0]["site"] if s["top_hold_sites"] else "")
                                   for s in held])]
        out.append(_table("Longest-held locks", ["lock", "acq", "hold max", "hold p99", "hold total"], rows,
                          {1, 2, 3, 4}, sites, width))
    if folded:
        line = visible(lock_rows.fold_line(folded))
        head, _, tail = line.partition("): ")
        if cell_len(line) > width and tail:  # the counts go on a line of their own, indented
            out += [Text(head + "):", style="dim"), Text(f"  {INDENT}{tail}", style="dim")]
        else:
            out.append(Text(line, style="dim"))
    return out


# ------------------------------------------------------------------- render


def summary_line(doc: dict) -> Text:
    counts = doc["summary"]
    line = Text()
    line.append(f"{sum(counts.values())} finding(s): ", style="bold")
    line.append(", ".join(f"{n} {sev}" for sev, n in counts.items() if n) or "none")
    if doc.get("folded"):
        line.append(f" (and {doc['folded']} folded under them)")
    if doc.get("suppressed"):
        line.append(f" ({doc['suppressed']} known from the baseline not shown)")
    return line


def render(doc: dict, console: Console | None = None, all_locks: bool | None = None) -> None:
    """Print the summary of findings document `doc`, laid out for the console's width
    (library locks folded into one line of the statistics unless `all_locks`; None:
    as the document was analyzed, `--all-locks`)."""
    console = console or Console()
    width = console.width
    names = LockNames(doc)
    console.print(trace_header(doc, width))
    by_id = {f["id"]: f for f in doc["findings"]}
    mains = main_findings(doc["findings"])  # the folded ones are one line under their main finding
    for f in mains:
        if f["severity"] in DETAILED:
            console.print(finding_panel(f, names, width, by_id))
    info = info_lines(mains, by_id)
    if info is not None:
        console.print(info)
    for table in locks_tables(doc, names, width, all_locks=lock_rows.all_asked(doc, all_locks)):
        console.print(table)
    console.print(summary_line(doc))
