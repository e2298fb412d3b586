"""Self-contained HTML report of a findings document (docs/findings-format.md).

`render(result, con)` builds one HTML page: overview, one section per finding
(explanation, unsafe-scenario table, code sites with stacks, timing, fix advice,
a focused timeline), a timeline of the whole run, the lock-order graph and the
lock statistics. With `con` (the analyzer's DuckDB connection, docs/database.md)
the charts that need the events are drawn; without it the page is built from
the JSON alone. plotly.js is embedded once per page (`plotlyjs="inline"`) or
loaded from its CDN (`"cdn"`). Every string that comes from a trace is escaped.
"""
from __future__ import annotations

import base64
import hashlib
import os
import shlex
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import plotly.graph_objects as go

from ... import refs
from ...fold import also_line, folded_under, main_findings
from .. import lock_rows
from ..cost import cost_sentence, percent, writer_share_text
from . import charts, data
from . import findings as hf
from . import format as fmt
from .page import CSS, SCRIPT
from .safe import Safe, h, join, script_json
from .safe import plot_text as pt

SEVERITIES = ("critical", "error", "warning", "info")
PLOTLYJS_MODES = ("inline", "cdn")
MAX_WHOLE_RUN_BARS = 3000
MAX_FOCUSED_BARS = 600
MAX_FOCUSED_TIMELINES = 25
MAX_GRAPH_NODES = 60
MAX_STATS_ROWS = 1000
BUSIEST_LOCKS = 8
NO_TIMELINE_KINDS = ("hot-lock", "guarded-cycle")


def write(result: dict, path: str | os.PathLike, con: duckdb.DuckDBPyConnection | None = None,
          plotlyjs: str = "inline") -> Path:
    """Render the report of `result` and write it to `path` (UTF-8)."""
    out = Path(path)
    out.write_text(render(result, con=con, plotlyjs=plotlyjs), encoding="utf-8")
    return out


def render(result: dict, con: duckdb.DuckDBPyConnection | None = None, plotlyjs: str = "inline",
           all_locks: bool | None = None) -> str:
    """The report page of findings document `result` as one HTML string (library
    locks folded into one line of the statistics unless `all_locks`; None: as the
    document was analyzed, `--all-locks`)."""
    if plotlyjs not in PLOTLYJS_MODES:
        raise ValueError(f"plotlyjs must be one of {', '.join(PLOTLYJS_MODES)}, not {plotlyjs!r}")
    return _Report(result, con, lock_rows.all_asked(result, all_locks)).page(plotlyjs)


class _Report:
    def __init__(self, result: dict, con: duckdb.DuckDBPyConnection | None, all_locks: bool = False) -> None:
        self.r = result
        self.trace = result.get("trace") or {}
        self.by_id = {f.get("id"): f for f in result.get("findings") or []}
        self.findings = main_findings(result.get("findings") or [])  # folded ones are shown under their main one
        self.locks = result.get("locks") or []
        self.all_locks = all_locks
        self.names = fmt.LockNames(result)
        self.figs: list[tuple[str, dict]] = []
        self.con = con
        have = data.tables(con) if con is not None else set()
        self.timeline_ok = all(t in have for t in data.TIMELINE_TABLES)
        self.graph_ok = all(t in have for t in data.GRAPH_TABLES)
        self.clock = data.clock(con) if self.timeline_ok else None
        if self.clock is None:
            self.timeline_ok = False
        self.stack_of = data.stack_finder(con if "sites" in have else None)
        self.run_start = {p.get("run"): p.get("start_ts") for p in self.trace.get("processes") or []}
        self.cwd = {p.get("run"): p.get("cwd") for p in self.trace.get("processes") or []}
        self.source_root = (result.get("options") or {}).get("source_root")
        self.multi_run = len(self.trace.get("processes") or []) > 1
        self.process_labels = refs.process_labels(result)
        self.run_labels = self.process_labels if self.multi_run else None
        self.colors = charts.lock_colors(self._color_order())

    # ---------------------------------------------------------------- helpers

    def _color_order(self) -> list[str]:
        keys: list[str] = []
        for f in self.findings:
            if f.get("kind") == "hot-lock":
                continue
            for lock in f.get("locks") or []:
                if lock.get("id") is not None and str(lock["id"]) not in keys:
                    keys.append(str(lock["id"]))
        for lock in sorted(self.locks, key=lambda x: -(x.get("hold_total_ns") or 0)):
            if str(lock.get("id")) not in keys:
                keys.append(str(lock.get("id")))
        return keys

    def fig(self, figure: go.Figure | None, chart: str) -> Safe:
        """A plot container (named `chart`) whose figure JSON is embedded at the end of the page."""
        if figure is None:
            return Safe("")
        fid = f"fig-{len(self.figs) + 1}"
        spec = figure.to_plotly_json()
        self.figs.append((fid, {"data": spec.get("data", []), "layout": spec.get("layout", {})}))
        height = int(spec.get("layout", {}).get("height") or 400)
        return h('<div class="plot" data-fig="{}" data-chart="{}" style="height:{}px"></div>', fid, chart, height)

    # ------------------------------------------------------------------- page

    def page(self, plotlyjs: str) -> str:
        body = join([self.header(), Safe("<main>"), self.overview(), self.finding_sections(),
                     self.whole_timeline(), self.graph_section(), self.stats_section(),
                     self.trace_section(), h('<footer>lockscope {} · findings format {} v{}</footer>',
                                             (self.r.get("tool") or {}).get("version", ""),
                                             self.r.get("format", ""), self.r.get("version", "")),
                     Safe("</main>")])
        data_scripts = join(h('<script type="application/json" id="{}">{}</script>\n', fid, script_json(spec))
                            for fid, spec in self.figs)
        if plotlyjs == "inline":
            from plotly.offline import get_plotlyjs

            plotly_code = get_plotlyjs()
            plotly_tag = Safe(f'<script type="text/javascript">{plotly_code}</script>')
            plotly_src = ""
            hashes = [_sha256(plotly_code), _sha256(SCRIPT)]
        else:
            from plotly.io._utils import plotly_cdn_url

            url = plotly_cdn_url()
            plotly_tag = h('<script src="{}" charset="utf-8"></script>', url)
            plotly_src = " https://cdn.plot.ly"
            hashes = [_sha256(SCRIPT)]
        # Only our own scripts may run: an injected <script> would not match a hash.
        csp = ("default-src 'none'; img-src data: blob:; style-src 'unsafe-inline'; font-src data:; "
               f"script-src {' '.join(hashes)} 'unsafe-eval'{plotly_src}")
        title = f"lockscope report — {self.program_names() or 'trace'}"
        return join([
            Safe("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"),
            h('<meta http-equiv="Content-Security-Policy" content="{}">\n', csp),
            Safe('<meta name="viewport" content="width=device-width, initial-scale=1">\n'),
            h("<title>{}</title>\n", title),
            Safe(f"<style>{CSS}</style>\n"), plotly_tag, Safe("\n</head>\n<body>\n"), body,
            Safe("\n"), data_scripts, Safe(f"<script>{SCRIPT}</script>\n</body>\n</html>\n"),
        ])

    def program_names(self) -> str:
        progs = []
        for p in self.trace.get("processes") or []:
            argv = p.get("argv") or []
            name = os.path.basename(str(argv[0])) if argv else f"pid {p.get('pid')}"
            if name not in progs:
                progs.append(name)
        return ", ".join(progs[:3]) + (f" and {len(progs) - 3} more" if len(progs) > 3 else "")

    def header(self) -> Safe:
        sev = Counter(f.get("severity") for f in self.findings)
        summary = ", ".join(f"{sev[s]} {s}" for s in SEVERITIES if sev[s]) or "no findings"
        links = [("overview", "Overview"), ("findings", f"Findings ({len(self.findings)})"),
                 ("timeline", "Timeline"), ("graph", "Lock order graph"), ("locks", "Lock statistics"),
                 ("trace", "Trace files")]
        return h('<header class="top"><h1>lockscope report <span class="prog">— {}</span></h1>'
                 '<div class="meta">{} · generated {}</div><nav>{}</nav></header>',
                 self.program_names() or "trace", summary, fmt.wall(self.r.get("generated_at")),
                 join(h('<a href="#{}">{}</a>', a, t) for a, t in links))

    # --------------------------------------------------------------- overview

    def overview(self) -> Safe:
        t = self.trace
        procs = t.get("processes") or []
        hosts = sorted({str(p.get("host")) for p in procs if p.get("host")})
        starts = [p for p in procs if p.get("start_wall")]
        ends = [p for p in procs if p.get("end_wall")]
        span = (f"{fmt.wall(min(p['start_wall'] for p in starts))} → "
                f"{fmt.wall_time(max(p['end_wall'] for p in ends))}") if starts and ends else "–"
        dropped = int(t.get("dropped") or 0)
        corrupt = int(t.get("corrupt_lines") or 0)
        stats = [
            ("Processes", fmt.count(len(procs)), ""), ("Hosts", ", ".join(hosts) or "–", ""),
            ("Duration", fmt.duration(t.get("duration_ns")), ""),
            ("Events", fmt.count(t.get("events")), ""), ("Threads", fmt.count(t.get("threads")), ""),
            ("Tasks", fmt.count(t.get("tasks")), ""), ("Locks", fmt.count(t.get("locks")), ""),
            ("Dropped events", fmt.count(dropped), "bad" if dropped else ""),
            ("Corrupt lines", fmt.count(corrupt), "warn" if corrupt else ""),
        ]
        cost = cost_sentence(t.get("cost"))
        share = (t.get("cost") or {}).get("writer_share") if cost else None
        if isinstance(share, (int, float)) and not isinstance(share, bool):
            stats.append(("Recorder's writer CPU", percent(share), ""))
        cards = join(h('<div class="stat {}"><div class="k">{}</div><div class="v">{}</div></div>', cls, k, v)
                     for k, v, cls in stats)
        programs = []
        for p in procs[:20]:
            argv = p.get("argv") or []
            programs.append(h("<li><code>{}</code> <span class=\"muted\">pid {} on {} · {}</span></li>",
                              shlex.join(str(a) for a in argv) if argv else "(no argv)", p.get("pid"),
                              p.get("host"), p.get("runtime") or ""))
        if len(procs) > 20:
            programs.append(h("<li class=\"muted\">… and {} more processes (see Trace files)</li>", len(procs) - 20))
        sev = Counter(f.get("severity") for f in self.findings)
        pills = join(h('<div class="pill sev-{} {}"><span class="n">{}</span>{}</div>', s,
                       "" if sev[s] else "zero", sev[s], s) for s in SEVERITIES)
        suppressed = int(self.r.get("suppressed") or 0)
        return h('<section id="overview"><h2>Overview</h2>'
                 '<div class="card"><div><b>Program{}</b><ul class="plain">{}</ul></div>'
                 '<div class="muted">Time span: {}</div></div>'
                 '<h4>Findings by severity</h4><div class="sevbar">{}</div>{}'
                 '<h4>Trace</h4><div class="grid-cards">{}</div>{}{}</section>',
                 "s" if len(procs) > 1 else "", join(programs), span, pills,
                 h('<p class="muted">{} known finding(s) suppressed by the baseline.</p>', suppressed)
                 if suppressed else "", cards,
                 h('<p class="muted">Recording cost: {}.</p>', cost) if cost else "", self.warnings())

    def warnings(self) -> Safe:
        t = self.trace
        items: list[Safe] = []
        bad = False
        if t.get("dropped"):
            bad = True
            per = [h("pid {}: {}", p.get("pid"), fmt.count(p.get("dropped"))) for p in t.get("processes") or []
                   if p.get("dropped")]
            items.append(h("<b>{} events were dropped</b> by the recorder (its buffer was full){}: holds and "
                           "waits that span the gap are uncertain.", fmt.count(t["dropped"]),
                           h(" — {}", join(per, ", ")) if per else ""))
        if t.get("corrupt_lines"):
            shown = t.get("corrupt") or []
            lst = join(h("<li><code>{}:{}</code> {}</li>", c.get("file"), c.get("line"), c.get("reason"))
                       for c in shown[:10])
            more = h("<li>… {} more</li>", int(t["corrupt_lines"]) - len(shown[:10])) \
                if int(t["corrupt_lines"]) > len(shown[:10]) else ""
            items.append(h("<b>{} corrupt lines were skipped</b>; the rest was analyzed:<ul>{}{}</ul>",
                           fmt.count(t["corrupt_lines"]), lst, more))
        if t.get("unknown_records"):
            items.append(h("{} records of a kind this version does not know were skipped.",
                           fmt.count(t["unknown_records"])))
        for run in t.get("incomplete_runs") or []:
            items.append(h("Process <code>{}</code> has no end record: it was killed or hung. "
                           "Holds and waits still open at the end are reported as such.",
                           self.process_labels.get(run) or "?"))
        for w in t.get("warnings") or []:
            # dropped events and runs without an end record are listed above in more detail
            if (t.get("dropped") and "were dropped" in w) or (t.get("incomplete_runs") and "no end record" in w):
                continue
            items.append(h("{}", w))
        if not items:
            return Safe('<div class="okbox">The trace is complete: no dropped events, no corrupt lines.</div>')
        return h('<div class="warnbox {}"><b>Warnings</b><ul>{}</ul></div>', "bad" if bad else "",
                 join(h("<li>{}</li>", i) for i in items))

    # --------------------------------------------------------------- findings

    def finding_sections(self) -> Safe:
        if not self.findings:
            return Safe('<section id="findings"><h2>Findings</h2><div class="okbox">No findings: '
                        'no lock-order cycle, deadlock or lock problem was seen in this trace.</div></section>')
        rows = join(h('<tr><td><a href="#{}">{}</a></td><td><span class="badge sev-{}">{}</span></td>'
                      '<td>{}</td><td class="title-cell">{}</td><td class="num" data-v="{}">{}</td>'
                      '<td class="num" data-v="{}">{}</td></tr>',
                      f.get("id"), f.get("id"), f.get("severity"), f.get("severity"),
                      hf.kind_title(str(f.get("kind"))), f.get("title"), f.get("count") or 0,
                      fmt.count(f.get("count")), f.get("first_ts") or 0, fmt.wall_time(f.get("first_wall")))
                    for f in self.findings)
        index = h('<table class="grid sortable findings-index"><thead><tr><th>id</th><th>severity</th>'
                  '<th>kind</th><th>title</th><th class="num">seen</th><th class="num">first seen</th></tr>'
                  '</thead><tbody>{}</tbody></table>', rows)
        budget = [MAX_FOCUSED_TIMELINES]
        articles = join(self.finding(f, budget) for f in self.findings)
        return h('<section id="findings"><h2>Findings</h2>{}{}</section>', index, articles)

    def finding(self, f: dict, budget: list[int]) -> Safe:
        sev = str(f.get("severity") or "info")
        kind = str(f.get("kind") or "")
        timeline = Safe("")
        if kind not in NO_TIMELINE_KINDS and self.timeline_ok:
            if budget[0] > 0:
                fig = self.focused_timeline(f)
                if fig is not None:
                    budget[0] -= 1
                    timeline = h("<h4>Timeline around this finding</h4>{}", self.fig(fig, f"timeline-{f.get('id')}"))
            else:
                timeline = Safe('<p class="muted">(No focused timeline: the first '
                                f'{MAX_FOCUSED_TIMELINES} findings have one; see the whole-run timeline.)</p>')
        cwd = self.cwd.get(f.get("run"))
        sites = hf.sites_block(f, self.stack_of, self.source_root or cwd, cwd, self.names)
        guarded = Safe("")
        if kind == "guarded-cycle" and f.get("steps"):
            guarded = self.steps_table(f)
        return h('<article class="finding {}" id="{}"><h3><span class="badge sev-{}">{}</span> {} '
                 '<span class="fid">{} · {}</span></h3><p class="ftitle">{}</p>{}'
                 '<div class="cols"><div>{}{}{}{}</div><div>{}</div></div>{}{}{}{}'
                 '<details><summary>Analyzer message</summary><pre>{}</pre></details></article>',
                 sev, f.get("id"), sev, sev, hf.kind_title(kind), f.get("id"), kind, f.get("title"),
                 self.folded_block(f), hf.explanation(f, self.names), hf.scenario(f, self.names), guarded,
                 hf.worst_table(f), hf.facts(f, self.run_start.get), sites,
                 self.details_table(f), timeline, hf.advice(kind),
                 join(str(f.get("message") or "").split("\n"), "\n"))  # each line escaped, line feeds kept

    def folded_block(self, f: dict) -> Safe:
        """One 'Also:' line for the findings folded under `f`, and their explanations behind a disclosure."""
        line = also_line(f, self.by_id, fmt.duration)  # (as this report writes durations)
        if line is None:
            return Safe("")
        folded = folded_under(f, self.by_id)
        items = join(h('<div class="folded-finding" id="{}"><p><b>{} · {} · {}</b> {}</p>{}{}</div>', x.get("id"),
                       x.get("id"), x.get("kind"), x.get("severity"), x.get("title"),
                       hf.explanation(x, self.names), hf.worst_table(x)) for x in folded)
        return h('<p class="also"><b>Also:</b> {}</p><details class="folded"><summary>{} folded finding{} '
                 'about the same holds and waits</summary>{}</details>',
                 line, len(folded), "" if len(folded) == 1 else "s", items)

    def steps_table(self, f: dict) -> Safe:
        rows = []
        for i, s in enumerate(f.get("steps") or []):
            holds = join((h('<span class="lock">{}</span> <span class="muted">at {}</span>',
                            self.names.label(x.get("lock"), x.get("name")), x.get("acquired_at"))
                          for x in s.get("holds") or []), "<br>")
            req = s.get("requests") or {}
            rows.append(h("<tr><td>{}</td><td>{}</td><td>{}</td><td><span class=\"lock\">{}</span></td>"
                          "<td><code>{}</code></td></tr>", i + 1, hf.actor_label(s.get("actor")), holds,
                          self.names.label(req.get("lock"), req.get("name")), s.get("site")))
        return h('<h4>Edges</h4><table class="grid"><thead><tr><th>#</th><th>thread/task</th><th>holding</th>'
                 '<th>requests</th><th>at</th></tr></thead><tbody>{}</tbody></table>', join(rows))

    _SHOWN_DETAILS = {"duration_ns", "max_hold_ns", "threshold_ns", "worst", "ended", "resolved_by", "reason",
                      "explanation", "max_wait_ns", "length", "order", "blocked_ns", "acquired_at", "hung", "what",
                      "resource", "recursive"}  # resource: an id; `what` names it

    def details_table(self, f: dict) -> Safe:
        d = f.get("details") or {}
        if f.get("kind") == "hot-lock":
            return Safe("")  # its numbers are in the explanation and the statistics table
        rows = []
        for key, value in d.items():
            if key in self._SHOWN_DETAILS or value is None or value == []:
                continue
            if key == "resource" and not isinstance(value, dict):
                continue  # a bare id: the explanation names the resource
            label = key[:-3] if key.endswith("_ns") else key
            rows.append(h("<tr><th>{}</th><td>{}</td></tr>", label.replace("_", " "), self.detail_value(key, value)))
        if not rows:
            return Safe("")
        return h('<h4>Details</h4><table class="facts">{}</table>', join(rows))

    def detail_value(self, key: str, value: Any) -> Safe:
        if key in ("cycle", "gate_locks") and isinstance(value, list):
            labels = [self.names.label(v) for v in value]
            if key == "cycle" and labels:
                labels.append(labels[0])
            return join((h('<span class="lock">{}</span>', x) for x in labels), " → " if key == "cycle" else ", ")
        if key in ("lock", "held_lock"):
            lock_id = value.get("id") if isinstance(value, dict) else value
            return h('<span class="lock">{}</span>', self.names.label(lock_id))
        if isinstance(value, dict) and "kind" in value and "name" in value and "run" in value:  # an actor
            return h('<span class="actor">{}</span> <span class="muted">({})</span>',
                     hf.actor_label(value), hf.actor_kind(value))
        if isinstance(value, dict) and "actor" in value and isinstance(value["actor"], dict):
            # a waiter/holder record: who, where, how long, how it ended
            parts = [self.detail_value("", value["actor"])]
            if value.get("site"):
                parts.append(h(" at <code>{}</code>", value["site"]))
            for k in ("wait_ns", "duration_ns", "hold_ns"):
                if value.get(k) is not None:
                    parts.append(h(", {}", fmt.duration(value[k])))
            if value.get("outcome"):
                parts.append(h(" ({})", value["outcome"]))
            return join(parts)
        if isinstance(value, dict) and "type" in value and "id" in value:  # a lock or resource
            return h('<b>{}</b> <span class="muted">{}{}</span>', value.get("name") or value.get("id"),
                     value.get("type"), h(", created at {}", value["created_at"]) if value.get("created_at") else "")
        if key.endswith("_ns") and isinstance(value, (int, float)):
            return h("{}", fmt.duration(value))
        if isinstance(value, bool):
            return h("{}", "yes" if value else "no")
        if isinstance(value, (int, float)):
            return h("{}", fmt.count(value))
        if isinstance(value, list):
            return join(h("<div>{}</div>", self.detail_value("", v)) for v in value[:10])
        if isinstance(value, dict):
            if "site" in value and len(value) <= 4:
                return join((h("<code>{}</code>", value.get("site")),
                             h(" ×{}", value["count"]) if "count" in value else ""))
            return h("<code>{}</code>", script_json(value))
        return h("{}", value)

    # -------------------------------------------------------------- timelines

    def _actor_key(self, actor: dict | None) -> tuple[str, int] | None:
        if not actor or actor.get("id") is None:
            return None
        run, _, num = str(actor["id"]).rpartition("/")
        try:
            return (actor.get("run") or run, int(num))
        except ValueError:
            return None

    def finding_marks(self, f: dict) -> list[charts.Mark]:
        run = f.get("run")
        d = f.get("details") or {}
        marks: list[charts.Mark] = []
        for i, s in enumerate(f.get("steps") or []):
            if s.get("ts") is None:
                continue
            actor = self._actor_key(s.get("actor"))
            req_id, req_name, verb = hf._request_of(s)
            what = "requests" if verb == "lock" else "waits for"
            marks.append(charts.Mark(actor[0] if actor else run, s["ts"], f"{i + 1}",
                                     f"step {i + 1}: {hf.actor_label(s.get('actor'))} {what} "
                                     f"{self.names.label(req_id, req_name)} at {s.get('site')}", actor))
        first_actor = self._actor_key((f.get("threads") or [None])[0])
        for w in (d.get("worst") or [])[:3]:
            if w.get("ts") is not None:
                a = self._actor_key(w.get("actor")) if isinstance(w.get("actor"), dict) else first_actor
                marks.append(charts.Mark(run, w["ts"], fmt.duration(w.get("duration_ns")),
                                         f"hold of {fmt.duration(w.get('duration_ns'))} taken at {w.get('site')}", a))
        if not marks and f.get("first_ts") is not None and run:
            label = {"deadlock": "deadlock", "self-deadlock": "blocks on itself"}.get(str(f.get("kind")), "first")
            marks.append(charts.Mark(run, f["first_ts"], label, f"{f.get('id')}: {label} ({f.get('kind')})",
                                     first_actor))
        if d.get("duration_ns") and f.get("first_ts") is not None and run:
            marks.append(charts.Mark(run, f["first_ts"] + int(d["duration_ns"]),
                                     "ended" if d.get("ended", True) else "trace ends",
                                     f"{f.get('id')}: "
                                     + (f"ended after {fmt.duration(d['duration_ns'])}" if d.get("ended", True)
                                        else f"still blocked when the trace ended, "
                                             f"{fmt.duration(d['duration_ns'])} later"), first_actor))
        return marks

    def finding_window(self, f: dict, marks: list[charts.Mark]) -> tuple[str, int, int] | None:
        """(run, t0, t1) around the finding's moments. A duration that would stretch
        the window far beyond them (a deadlock that lasted to the end) is left to run
        off the chart's right edge, so the moment it formed stays readable."""
        run = f.get("run") or (marks[0].run if marks else None)
        if run is None or self.clock is None or run not in self.clock.anchors:
            return None
        d = f.get("details") or {}
        core = [m.ts for m in marks if m.run == run and not m.label.startswith(("ended", "trace ends"))]
        if f.get("first_ts") is not None:
            core.append(f["first_ts"])
        if f.get("first_ts") is not None and d.get("max_wait_ns"):
            core.append(f["first_ts"] + int(d["max_wait_ns"]))  # the analyzer dates a failed acquire by its wait
        if not core:
            return None
        lo, hi = min(core), max(core)
        ends = [m.ts for m in marks if m.run == run and m.ts > hi]
        if f.get("last_ts") is not None:
            ends.append(f["last_ts"])
        ends += [w["ts"] + int(w["duration_ns"]) for w in (d.get("worst") or [])[:3]
                 if w.get("ts") is not None and w.get("duration_ns") is not None]
        for end in ends:
            if end - lo <= max(4 * (hi - lo) + 50_000_000, 2_000_000_000):
                hi = max(hi, end)
        pad = max((hi - lo) * 0.15, 500_000)
        first, last = self.clock.run_bounds.get(run, (lo, hi))
        return run, max(int(lo - pad), first), min(int(hi + pad), last)

    def focused_timeline(self, f: dict) -> go.Figure | None:
        marks = self.finding_marks(f)
        win = self.finding_window(f, marks)
        if win is None:
            return None
        actors = [a for a in (self._actor_key(t) for t in f.get("threads") or []) if a]
        locks = [str(x.get("id")) for x in f.get("locks") or [] if x.get("id") is not None]
        spans = data.select_spans(self.con, limit=MAX_FOCUSED_BARS, window=win, actors=actors,
                                  locks=locks, near=[win])
        run, t0, t1 = win
        x0, x1 = self.clock.x(run, t0), self.clock.x(run, t1)
        beyond = [m for m in marks if m.run == run and m.ts > t1]
        note = (f"{beyond[-1].hover} — beyond the right edge (zoom out to see it)" if beyond else None)
        return charts.timeline(spans, self.clock, self.names, self.colors, actor_order=actors,
                               marks=[m for m in marks if not (m.run == run and m.ts > t1)],
                               window=(x0, x1), run_labels=self.run_labels, max_rows=24, extra_note=note)

    def whole_timeline(self) -> Safe:
        if not self.timeline_ok:
            return h('<section id="timeline"><h2>Timeline</h2><p class="muted">{}</p></section>',
                     "Timelines need the trace database. Run lockscope analyze with --html, or re-render "
                     "from the database kept with --db (lockscope report FILE.duckdb --html ...).")
        near = []
        marks = []
        for f in self.findings:
            if f.get("kind") in NO_TIMELINE_KINDS:
                continue
            fm = self.finding_marks(f)
            w = self.finding_window(f, fm)
            if w:
                near.append(w)
            for m in fm:
                if m.label.isdigit():
                    continue
                marks.append(charts.Mark(m.run, m.ts, f.get("id"), f"{f.get('id')}: {f.get('title')}", m.actor))
            if fm and fm[0].label.isdigit():
                marks.append(charts.Mark(fm[0].run, fm[0].ts, f.get("id"), f"{f.get('id')}: {f.get('title')}",
                                         fm[0].actor))
        # the most severe findings' windows (findings are sorted by severity) get bars first
        spans = data.select_spans(self.con, limit=MAX_WHOLE_RUN_BARS, near=near[:MAX_FOCUSED_TIMELINES] or None)
        fig = charts.timeline(spans, self.clock, self.names, self.colors, marks=marks[:60],
                              run_labels=self.run_labels, max_rows=60)
        if fig is None:
            return Safe('<section id="timeline"><h2>Timeline</h2><p class="muted">No lock was held or '
                        'waited for in this trace.</p></section>')
        bounded = (h("<p class=\"plot-note\">The trace has {} holds and waits; the chart draws {} of them "
                     "(the longest, and everything near a finding).</p>", fmt.count(spans.total),
                     fmt.count(len(spans.rows))) if spans.total > len(spans.rows) else "")
        return h('<section id="timeline"><h2>Timeline of the whole run</h2>'
                 '<p class="muted">One row per thread or task; bars are holds (solid) and waits (hatched), '
                 'coloured by lock. Red marks are findings (hover for details).</p>{}{}</section>',
                 self.fig(fig, "timeline-run"), bounded)

    # ------------------------------------------------------------- lock graph

    def graph_section(self) -> Safe:
        cycle_edges: dict[tuple[str, str], str] = {}
        for f in self.findings:
            cyc = (f.get("details") or {}).get("cycle")
            if not isinstance(cyc, list) or len(cyc) < 2:
                continue
            status = "guarded" if f.get("kind") == "guarded-cycle" else "cycle"
            for i, a in enumerate(cyc):
                key = (str(a), str(cyc[(i + 1) % len(cyc)]))
                if cycle_edges.get(key) != "cycle":
                    cycle_edges[key] = status
        edges: list[charts.Edge] = []
        note = None
        if self.graph_ok:
            rows = data.lock_edges(self.con)
            for r in rows:
                key = (str(r["a"]), str(r["b"]))
                edges.append(charts.Edge(key[0], key[1], int(r["n"]), self.edge_hover(key, r),
                                         cycle_edges.get(key, "")))
        else:
            edges = self.cycle_edges_from_steps(cycle_edges)
            note = "without the trace database only the edges of cycles are known"
        if not edges:
            return Safe('<section id="graph"><h2>Lock order graph</h2><p class="muted">No lock was taken '
                        'while another was held: there is no lock order to draw.</p></section>')
        cycle_nodes = {n for (a, b), s in cycle_edges.items() if s == "cycle" for n in (a, b)}
        guarded_nodes = {n for (a, b), s in cycle_edges.items() for n in (a, b)}
        nodes: list[str] = list(dict.fromkeys(sorted(cycle_nodes) + sorted(guarded_nodes - cycle_nodes)))
        all_nodes = {n for e in edges for n in (e.a, e.b)}
        for e in sorted(edges, key=lambda e: -e.n):
            for n in (e.a, e.b):
                if n not in nodes and len(nodes) < MAX_GRAPH_NODES:
                    nodes.append(n)
        keep = set(nodes)
        drawn = [e for e in edges if e.a in keep and e.b in keep]
        if len(all_nodes) > len(keep):
            note = (f"showing {len(keep)} of {len(all_nodes)} locks: those on cycles and the most used "
                    "lock order edges")
        stats = {str(x.get("id")): x for x in self.locks}
        hover = {}
        for n in keep:
            s = stats.get(n) or self.names.get(n)
            hover[n] = (f"<b>{pt(self.names.label(n))}</b><br>{pt(s.get('type') or '')}"
                        f"<br>created at {pt(s.get('created_at') or '?')}"
                        + (f"<br>{fmt.count(s.get('acquisitions'))} acquisitions, "
                           f"{fmt.count(s.get('contentions'))} contended" if "acquisitions" in s else ""))
        fig = charts.lock_graph({n: self.names.label(n) for n in nodes}, drawn, hover, cycle_nodes, note)
        legend = ('An arrow <b>A → B</b> means B was taken while A was held. Locks are laid out in lock order '
                  'from left to right, so arrows pointing backwards close a cycle. '
                  '<span style="color:#d93025;font-weight:600">Red</span>: edges of a deadlock or potential '
                  'deadlock; <span style="color:#b7791f;font-weight:600">orange, dashed</span>: guarded '
                  'cycles. Hover an edge for its code sites.')
        return h('<section id="graph"><h2>Lock order graph</h2><p class="muted">{}</p>{}</section>',
                 Safe(legend), self.fig(fig, "lock-graph"))

    def edge_hover(self, key: tuple[str, str], r: dict) -> str:
        a, b = (pt(self.names.label(k)) for k in key)
        lines = [f"<b>{a} → {b}</b>: {b} taken while holding {a}",
                 f"{fmt.count(r['n'])} times, by {fmt.plural(int(r['actors']), 'thread/task', 'threads/tasks')}"]
        for s in r.get("sites") or []:
            lines.append(f"at {pt(s.get('req'))}" + (f" in {pt(s.get('func'))}" if s.get("func") else "")
                         + f" ({pt(a)} taken at {pt(s.get('held_at'))}) ×{fmt.count(s.get('n'))}")
        if int(r.get("site_pairs") or 0) > len(r.get("sites") or []):
            lines.append(f"… {int(r['site_pairs']) - len(r['sites'])} more site pairs")
        return "<br>".join(lines)

    def cycle_edges_from_steps(self, cycle_edges: dict) -> list[charts.Edge]:
        out: dict[tuple[str, str], charts.Edge] = {}
        for f in self.findings:
            steps = f.get("steps") or []
            if f.get("kind") not in hf.CYCLE_KINDS:
                continue
            for i, s in enumerate(steps):
                prev = hf._request_of(steps[i - 1])[0]
                held = hf._cycle_lock_held(s, prev)
                req = hf._request_of(s)[0]
                if not held or req is None:
                    continue
                key = (str(held.get("lock")), str(req))
                a, b = (pt(self.names.label(k)) for k in key)
                text = (f"<b>{a} → {b}</b> ({pt(f.get('id'))})<br>by {pt(hf.actor_label(s.get('actor')))} at "
                        f"{pt(s.get('site'))} ({a} taken at {pt(held.get('acquired_at'))})")
                if key in out:
                    out[key].hover += "<br>" + text
                else:
                    out[key] = charts.Edge(key[0], key[1], int(s.get("count") or 1), text,
                                           cycle_edges.get(key, "cycle"))
        return list(out.values())

    # ------------------------------------------------------------ statistics

    def stats_section(self) -> Safe:
        about = {str(lk.get("id")) for f in self.findings for lk in f.get("locks") or []}
        shown, summary = lock_rows.split(self.locks, self.all_locks, keep=about)
        folded = h('<p class="muted folded">{}</p>', lock_rows.fold_line(summary)) if summary else ""
        if not shown:
            return h('<section id="locks"><h2>Lock statistics</h2><p class="muted">No locks of the '
                     'program&#39;s own.</p>{}</section>', folded) if folded else \
                Safe('<section id="locks"><h2>Lock statistics</h2><p class="muted">No locks.</p></section>')
        cols = [("lock", False), ("type", False), ("created at", False), ("acquisitions", True),
                ("contentions", True), ("contended %", True), ("timeouts / cancels / try-fails", True),
                ("wait total", True), ("wait max", True), ("wait avg", True), ("hold min", True),
                ("hold avg", True), ("hold p50", True), ("hold p95", True), ("hold p99", True),
                ("hold max", True), ("hold total", True), ("open holds", True),
                ("top waiters", False), ("top holders", False)]
        head = join(h('<th class="{}">{}</th>', "num" if num else "", name) for name, num in cols)
        rows = []
        for lk in shown[:MAX_STATS_ROWS]:
            acq = int(lk.get("acquisitions") or 0)
            con = int(lk.get("contentions") or 0)
            fails = int(lk.get("timeouts") or 0) + int(lk.get("cancels") or 0) + int(lk.get("try_fails") or 0)

            def num(v: Any, dur: bool = True) -> Safe:
                return h('<td class="num" data-v="{}">{}</td>', "" if v is None else v,
                         fmt.duration(v) if dur else fmt.count(v))
            cells = [
                h('<td data-v="{}"><span class="lock">{}</span>{}</td>', self.names.label(lk).lower(),
                  self.names.label(lk),
                  h(' <span class="muted">×{}</span>', lk.get("instances")) if (lk.get("instances") or 1) > 1 else ""),
                h("<td>{}</td>", str(lk.get("type") or "").replace("threading.", "").replace("|", ", ")),
                h("<td><code>{}</code></td>", lk.get("created_at") or "?"),
                num(acq, False), num(con, False),
                h('<td class="num" data-v="{}">{}</td>', con / acq if acq else 0,
                  f"{100 * con / acq:.1f} %" if acq else "–"),
                h('<td class="num" data-v="{}">{} / {} / {}</td>', fails, fmt.count(lk.get("timeouts") or 0),
                  fmt.count(lk.get("cancels") or 0), fmt.count(lk.get("try_fails") or 0)),
                num(lk.get("wait_total_ns")), num(lk.get("wait_max_ns")), num(lk.get("wait_avg_ns")),
                num(lk.get("hold_min_ns")), num(lk.get("hold_avg_ns")), num(lk.get("hold_p50_ns")),
                num(lk.get("hold_p95_ns")), num(lk.get("hold_p99_ns")), num(lk.get("hold_max_ns")),
                num(lk.get("hold_total_ns")), num(lk.get("open_holds") or 0, False),
                self.site_cell(lk.get("top_wait_sites"), "wait_total_ns"),
                self.site_cell(lk.get("top_hold_sites"), "hold_total_ns"),
            ]
            rows.append(h('<tr data-lock="{}">{}</tr>', lk.get("id"), join(cells)))
        more = (h('<p class="muted">Showing the first {} of {} locks (most contended first); all are in the '
                  'JSON findings.</p>', MAX_STATS_ROWS, len(shown)) if len(shown) > MAX_STATS_ROWS else "")
        table = h('<div class="scroll"><table class="grid sortable stats-table"><thead><tr>{}</tr></thead>'
                  '<tbody>{}</tbody></table></div>{}{}', head, join(rows), more, folded)
        busy = [x for x in shown if int(x.get("acquisitions") or 0) > 0][:BUSIEST_LOCKS]
        dist = []
        percentiles = self.fig(charts.percentiles(busy, self.names, self.colors), "hold-percentiles")
        if percentiles:  # no heading over an empty chart: a lock that was never released has no hold time
            dist.append(h("<h4>Hold times of the busiest locks</h4>{}", percentiles))
        if self.timeline_ok and busy:
            hist = data.histograms(self.con, [str(x.get("id")) for x in busy[:6]])
            hold = self.fig(charts.histogram(hist["hold"], self.names, self.colors, "hold"), "hold-histogram")
            wait = self.fig(charts.histogram(hist["wait"], self.names, self.colors, "wait"), "wait-histogram")
            if hold or wait:
                dist.append(h('<h4>Hold and wait time distributions</h4><div class="two"><div>{}</div>'
                              '<div>{}</div></div>', hold or Safe('<p class="muted">No hold of these locks '
                                                                  'ended in this trace.</p>'),
                              wait or self.no_wait_text(busy[:6], self.locks)))
            elif any(int(x.get("contentions") or 0) for x in busy[:6]):
                dist.append(self.no_wait_text(busy[:6], holds=False))
        return h('<section id="locks"><h2>Lock statistics</h2><p class="muted">Per lock, in the lock_stat '
                 'tradition; click a column to sort. Durations: wait = from asking for the lock to getting it '
                 '(or giving up), hold = from getting it to releasing it.</p>{}{}</section>', table, join(dist))

    @staticmethod
    def no_wait_text(locks: list[dict], every_lock: list[dict] | None = None, holds: bool = True) -> Safe:
        """Why there is no wait-time histogram of `locks` (with `holds` False: no hold or
        wait histogram): no contention, or no wait that ended (`every_lock`: all of the
        report's, where other locks may have been waited for)."""
        contended = sum(int(x.get("contentions") or 0) for x in locks)
        if not contended:
            if any(int(x.get("contentions") or 0) for x in every_lock or ()):
                return Safe('<p class="muted">None of these locks had to be waited for.</p>')
            return Safe('<p class="muted">No lock had to be waited for.</p>')
        what = ("wait for these locks", "wait-time") if holds else ("hold or wait of these locks", "time")
        return h('<p class="muted">No {} ended in this trace ({} still open when it '
                 'ended), so there is no {} distribution to draw.</p>',
                 what[0], fmt.plural(contended, "wait was", "waits were"), what[1])

    def site_cell(self, sites: list | None, total_key: str) -> Safe:
        items = [h("<div><code>{}</code> ×{} <span class=\"muted\">{}</span></div>", s.get("site") or "?",
                   fmt.count(s.get("count")), fmt.duration(s.get(total_key))) for s in (sites or [])[:3]]
        return h('<td class="sites-cell">{}</td>', join(items) or "–")

    # ------------------------------------------------------------------ trace

    def trace_section(self) -> Safe:
        procs = self.trace.get("processes") or []
        prow = join(h("<tr><td><code>{}</code></td><td class=\"num\">{}</td><td>{}</td><td><code>{}</code></td>"
                      "<td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td>"
                      "<td class=\"num\">{}</td></tr>",
                      refs.program(p.get("argv")) or "?", p.get("pid"), p.get("host"),
                      shlex.join(str(a) for a in p.get("argv") or []), p.get("runtime"),
                      fmt.wall(p.get("start_wall")), fmt.duration(p.get("duration_ns")),
                      (p.get("end_reason") or "—") if p.get("ended") else h(
                          '<b style="color:#d93025">no end record (killed or hung)</b>'),
                      fmt.count(p.get("dropped") or 0), writer_share_text(p.get("cost")))
                    for p in procs[:500])
        files = self.trace.get("files") or []
        frow = join(h("<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
                      "<td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                      f.get("path"), f.get("part"), fmt.count(f.get("lines")), fmt.count(f.get("records")),
                      fmt.count(f.get("corrupt_lines")), f.get("end_reason") or "no end record")
                    for f in files[:500])
        opts = self.r.get("options") or {}
        opt_text = ", ".join(f"{k} = {v}" for k, v in opts.items())
        return h('<section id="trace"><h2>Trace files</h2><h4>Processes</h4><div class="scroll"><table class="grid">'
                 '<thead><tr><th>program</th><th class="num">pid</th><th>host</th><th>command</th><th>runtime</th>'
                 '<th>started</th><th class="num">duration</th><th>ended</th><th class="num">dropped</th>'
                 '<th class="num">writer CPU</th></tr>'
                 '</thead><tbody>{}</tbody></table></div><h4>Files</h4><div class="scroll"><table class="grid">'
                 '<thead><tr><th>path</th><th class="num">part</th><th class="num">lines</th>'
                 '<th class="num">records</th><th class="num">corrupt</th><th>end</th></tr></thead>'
                 '<tbody>{}</tbody></table></div><p class="muted">Analysis options: {}</p></section>',
                 prow, frow, opt_text or "defaults")


def _sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"
