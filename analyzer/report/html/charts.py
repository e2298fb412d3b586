"""Plotly figures of the HTML report: timelines, the lock-order graph and
duration distributions. Every trace string put into a figure goes through
`plot_text` (plotly renders a subset of HTML in labels and hover text)."""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import networkx as nx
import plotly.graph_objects as go

from . import format as fmt
from .data import Clock, Spans
from .safe import plot_text as pt

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#393b79", "#ad494a", "#637939", "#7b4173", "#3182bd"]
OTHER = "#9aa3ae"
CYCLE_RED = "#d93025"
GUARDED = "#e8a200"
FONT = dict(family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size=12, color="#1f2933")
MAX_DEPTH = 3


def lock_colors(keys: list[str]) -> dict[str, str]:
    """A distinct colour for each of the first len(PALETTE) lock keys."""
    return {k: PALETTE[i] for i, k in enumerate(keys[:len(PALETTE)])}


def _base_layout(fig: go.Figure, height: int, note: str | None = None, title: str | None = None) -> None:
    fig.update_layout(
        height=height, font=FONT, plot_bgcolor="#ffffff", paper_bgcolor="#ffffff",
        margin=dict(l=10, r=10, t=60 if note or title else 30, b=40),
        hoverlabel=dict(font=dict(family=FONT["family"], size=12), align="left"),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1),
    )
    if title:
        fig.update_layout(title=dict(text=title, x=0.01, xanchor="left", font=dict(size=14)))
    if note:
        fig.add_annotation(text=note, xref="paper", yref="paper", x=0, y=1.0, yanchor="bottom",
                           xanchor="left", showarrow=False, align="left",
                           font=dict(size=11, color="#52606d"))


@dataclass
class Mark:
    """A moment of a finding to mark on a timeline."""

    run: str
    ts: int
    label: str             # short, shown on the chart (already plot-escaped by the caller? no: raw)
    hover: str             # raw text
    actor: tuple[str, int] | None = None


def _unit(span_ns: float) -> tuple[str, float]:
    if span_ns < 2e6:
        return "µs", 1e3
    if span_ns < 10e9:
        return "ms", 1e6
    return "s", 1e9


def timeline(spans: Spans, clock: Clock, names: fmt.LockNames, colors: dict[str, str], *,
             actor_order: list[tuple[str, int]] | None = None, marks: list[Mark] | None = None,
             window: tuple[int, int] | None = None, run_labels: dict | None = None,
             max_rows: int = 60, what: str = "holds and waits", extra_note: str | None = None) -> go.Figure | None:
    """Gantt-like chart: one row per thread/task, bars for holds (solid, nested
    holds thinner on top) and waits (hatched), coloured by lock."""
    rows_by_actor: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for r in spans.rows:
        rows_by_actor[(r["run"], r["actor"])].append(r)
    if not rows_by_actor:
        return None
    order = [a for a in (actor_order or []) if a in rows_by_actor]
    rest = sorted((a for a in rows_by_actor if a not in order),
                  key=lambda a: min(r["ts"] for r in rows_by_actor[a]))
    actors = order + rest
    hidden_rows = max(0, len(actors) - max_rows)
    actors = actors[:max_rows]
    row_of = {a: i for i, a in enumerate(actors)}

    xs_all = [clock.x(r["run"], r["ts"]) for r in spans.rows] + [clock.x(r["run"], r["end_ts"]) for r in spans.rows]
    if window:
        lo, hi = window
    else:
        lo, hi = min(xs_all), max(xs_all)
    unit, scale = _unit(max(hi - lo, 1))

    # group bars into traces by (lock colour group, hold/wait, nesting depth)
    groups: dict[tuple, dict] = {}
    # spans narrower than about a pixel at full view also get a tick mark (fixed size on
    # screen), so activity stays visible; zoomed in, the true bar is next to it
    short = max(hi - lo, 1) / 900
    ticks: dict[str, list] = {"x": [], "y": [], "color": [], "text": []}
    for a in actors:
        open_ends: list[int] = []   # end x of drawn holds that enclose the current one
        for r in sorted(rows_by_actor[a], key=lambda r: (r["ts"], -r["end_ts"])):
            x0, x1 = clock.x(r["run"], r["ts"]), clock.x(r["run"], r["end_ts"])
            key = r["lock_id"] if r["lock_id"] in colors else None
            if r["what"] == "hold":
                open_ends = [e for e in open_ends if e > x0]
                depth = min(len(open_ends), MAX_DEPTH)
                open_ends.append(x1)
            else:
                depth = 0
            g = groups.setdefault((r["what"], key, depth), {"y": [], "base": [], "x": [], "text": []})
            i = row_of[a]
            if r["what"] == "hold":
                g["y"].append(i - 0.12)
            else:
                g["y"].append(i + 0.3)
            g["base"].append((x0 - lo) / scale)
            g["x"].append(max(x1 - x0, 0) / scale)
            g["text"].append(_span_hover(r, names, x0 - lo, unit, scale))
            if x1 - x0 < short:
                ticks["x"].append((x0 - lo) / scale)
                ticks["y"].append(g["y"][-1])
                ticks["color"].append(colors.get(key, OTHER) if key else OTHER)
                ticks["text"].append(g["text"][-1])

    fig = go.Figure()
    legend_done: set = set()
    for (kind, key, depth) in sorted(groups, key=lambda g: (g[0] != "hold", g[1] is None, g[2], str(g[1]))):
        g = groups[(kind, key, depth)]
        color = colors.get(key, OTHER) if key else OTHER
        label = pt(names.label(key)) if key else "other locks"
        show = key not in legend_done and kind == "hold"
        if show:
            legend_done.add(key)
        if kind == "hold":
            marker = dict(color=color, line=dict(width=0.5, color="#ffffff"))
            width = 0.56 - 0.13 * depth
        else:
            marker = dict(color="#ffffff", line=dict(width=1, color=color),
                          pattern=dict(shape="/", fgcolor=color, bgcolor="#ffffff", size=6, solidity=0.5))
            width = 0.2
        fig.add_trace(go.Bar(
            orientation="h", y=g["y"], x=g["x"], base=g["base"], width=width, marker=marker,
            name=label, legendgroup=str(key), showlegend=show, hovertext=g["text"],
            hovertemplate="%{hovertext}<extra></extra>", offsetgroup="all",
        ))
    if ticks["x"]:
        fig.add_trace(go.Scatter(
            x=ticks["x"], y=ticks["y"], mode="markers", showlegend=False, name="short spans",
            marker=dict(symbol="line-ns", size=11, color=ticks["color"], line=dict(width=1.5, color=ticks["color"])),
            hovertext=ticks["text"], hovertemplate="%{hovertext}<extra></extra>"))
    shapes = []
    for m in marks or []:
        x = (clock.x(m.run, m.ts) - lo) / scale
        shapes.append(dict(type="line", xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1,
                           line=dict(color=CYCLE_RED, width=1.5, dash="dot")))
    if marks:
        mx, my, mt, ml = [], [], [], []
        for m in marks:
            mx.append((clock.x(m.run, m.ts) - lo) / scale)
            my.append(row_of[m.actor] - 0.12 if m.actor in row_of else -0.5)
            mt.append(pt(m.hover))
            ml.append(pt(m.label))
        fig.add_trace(go.Scatter(
            x=mx, y=my, mode="markers+text", text=ml, textposition="top right",
            textfont=dict(color=CYCLE_RED, size=11),
            marker=dict(symbol="x-thin", size=14, color=CYCLE_RED, line=dict(width=2.5, color=CYCLE_RED)),
            name="finding", hovertext=mt, hovertemplate="%{hovertext}<extra></extra>"))
    ticks = []
    for a in actors:
        r0 = rows_by_actor[a][0]
        label = str(r0["actor_name"])
        if r0["actor_kind"] != "thread":
            label += f" ({r0['actor_kind']})"
        if run_labels:  # several processes: say whose thread
            label += f" · {run_labels.get(a[0]) or '?'}"
        ticks.append(label)
    ticks = [pt(t) for t in _shorten_all(ticks, 40)]
    note_parts = []
    if spans.total > len(spans.rows):
        note_parts.append(f"showing {fmt.count(len(spans.rows))} of {fmt.count(spans.total)} {what}: "
                          "the longest, and everything near findings")
    if hidden_rows:
        note_parts.append(f"{fmt.count(hidden_rows)} more threads/tasks not shown")
    if extra_note:
        note_parts.append(pt(extra_note))
    note_parts.append("solid: held (nested holds thinner, on top) · hatched: waiting to acquire · "
                      "drag to zoom, double-click to reset")
    legend_rows = math.ceil(len(legend_done | ({"finding"} if marks else set())) / 4)
    height = 110 + 36 * len(actors) + 22 * legend_rows
    _base_layout(fig, max(height, 220), note=" — ".join(note_parts))
    fig.update_layout(margin=dict(b=56 + 22 * legend_rows),
                      legend=dict(orientation="h", yref="container", y=0, yanchor="bottom", x=0, xanchor="left"))
    fig.update_layout(
        barmode="overlay", shapes=shapes, bargap=0,
        xaxis=dict(title=dict(text=f"time since the trace started ({unit})" if not window
                              else f"time since the trace started ({unit}); window of this finding",
                              standoff=8),
                   showgrid=True, gridcolor="#eef0f3", zeroline=False,
                   range=[0, (hi - lo) / scale * 1.001 or 1] if window else None),
        yaxis=dict(tickmode="array", tickvals=list(range(len(actors))), ticktext=ticks,
                   autorange="reversed", showgrid=False, zeroline=False,
                   range=[len(actors) - 0.5, -0.7]),
    )
    if window:
        fig.update_xaxes(range=[0, (hi - lo) / scale])
        fig.update_xaxes(title_text=f"time since {_hms(clock, lo)} ({unit})")
    return fig


def _hms(clock: Clock, x: int) -> str:
    import datetime as dt
    ns = clock.t0 + x
    t = dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=dt.timezone.utc)
    return t.strftime("%H:%M:%S") + f".{(ns % 1_000_000_000) // 1000:06d} UTC"


def _shorten(text: str, n: int) -> str:
    """At most `n` characters: the start and the end (where a label's number, line or
    `made by` site is), with an ellipsis between."""
    if len(text) <= n:
        return text
    tail = (n - 1) // 2
    return text[: n - 1 - tail] + "…" + text[len(text) - tail:]


def _shorten_all(texts: list[str], n: int) -> list[str]:
    """`_shorten` each, except the ones that would then read the same (kept whole):
    distinct labels stay distinct in a chart."""
    short = [_shorten(t, n) for t in texts]
    return [s if short.count(s) == 1 else t for s, t in zip(short, texts, strict=True)]


def _span_hover(r: dict, names: fmt.LockNames, x0: int, unit: str, scale: float) -> str:
    lock = pt(names.label({"id": r["lock_id"], "name": r["lock_name"], "type": r["lock_type"],
                           "created_at": r["lock_created_at"]}))
    dur = fmt.duration(r["end_ts"] - r["ts"])
    who = pt(r["actor_name"])
    if r["what"] == "hold":
        head = f"<b>{lock}</b> held {dur}" + (" (still held at the end of the trace)" if r["open"] else "")
        where = "taken at"
    else:
        outcome = {"acquire": "then acquired", "timeout": "gave up (timeout)", "cancel": "cancelled"}.get(
            r["end_op"] or "", "")
        head = f"waited {dur} for <b>{lock}</b>" + (
            " (still waiting at the end of the trace)" if r["open"] else f", {outcome}" if outcome else "")
        where = "at"
    site = f"{pt(r['site'])}" + (f" in {pt(r['func'])}" if r["func"] else "") if r["site"] else "unknown site"
    return f"{head}<br>by {who}<br>{where} {site}<br>from +{x0 / scale:.6g} {unit}"


# ------------------------------------------------------------------ lock graph

@dataclass
class Edge:
    a: str
    b: str
    n: int
    hover: str          # already plot-escaped
    status: str         # "cycle", "guarded" or ""


def lock_graph(nodes: dict[str, str], edges: list[Edge], node_hover: dict[str, str],
               cycle_nodes: set[str], note: str | None = None) -> go.Figure | None:
    """Locks as nodes in layers of lock order (left to right: taken first to taken
    later); cycle edges, which run backwards, are highlighted."""
    if not nodes:
        return None
    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_edges_from((e.a, e.b) for e in edges if e.a in nodes and e.b in nodes)
    pos = _layered_layout(g)
    fig = go.Figure()
    pairs = {(e.a, e.b) for e in edges}
    hx, hy, ht = [], [], []
    annotations = []
    for status in ("", "guarded", "cycle"):  # highlighted edges drawn last, on top
        lx: list = []
        ly: list = []
        for e in edges:
            if e.status != status or e.a not in pos or e.b not in pos:
                continue
            bend = 0.18 if (e.b, e.a) in pairs else 0.06
            pts = _curve(pos[e.a], pos[e.b], bend)
            lx += [p[0] for p in pts] + [None]
            ly += [p[1] for p in pts] + [None]
            mid = pts[len(pts) // 2]
            hx.append(mid[0])
            hy.append(mid[1])
            ht.append(e.hover)
            color = {"cycle": CYCLE_RED, "guarded": GUARDED}.get(status, "#9aa3ae")
            tail = pts[-4]
            annotations.append(dict(x=pts[-1][0], y=pts[-1][1], ax=tail[0], ay=tail[1], xref="x", yref="y",
                                    axref="x", ayref="y", showarrow=True, arrowhead=2, arrowsize=1.3,
                                    arrowwidth=2.2 if status else 1.2, arrowcolor=color, standoff=13,
                                    text=""))
        if lx:
            fig.add_trace(go.Scatter(
                x=lx, y=ly, mode="lines", hoverinfo="skip",
                line=dict(color={"cycle": CYCLE_RED, "guarded": GUARDED}.get(status, "#b8c0cc"),
                          width=3 if status == "cycle" else 2 if status else 1.2,
                          dash="dash" if status == "guarded" else "solid"),
                name={"cycle": "edge of a deadlock cycle", "guarded": "edge of a guarded cycle",
                      "": "lock order edge"}[status]))
    fig.add_trace(go.Scatter(x=hx, y=hy, mode="markers", marker=dict(size=12, color="rgba(0,0,0,0)"),
                             hovertext=ht, hovertemplate="%{hovertext}<extra></extra>", showlegend=False))
    order = list(nodes)
    fig.add_trace(go.Scatter(
        x=[pos[n][0] for n in order], y=[pos[n][1] for n in order], mode="markers+text",
        text=[pt(t) for t in _shorten_all([nodes[n] for n in order], 36)], textposition="top center",
        marker=dict(size=20, color=[CYCLE_RED if n in cycle_nodes else "#3b82c4" for n in order],
                    line=dict(width=2, color="#ffffff")),
        hovertext=[node_hover.get(n, "") for n in order], hovertemplate="%{hovertext}<extra></extra>",
        name="lock", showlegend=False))
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    height = int(min(900, max(320, 90 * (max(ys) - min(ys) + 1) + 140)))
    _base_layout(fig, height, note=note)
    fig.update_layout(
        annotations=list(fig.layout.annotations) + annotations, hovermode="closest",
        legend=dict(orientation="h", yanchor="top", y=0, xanchor="left", x=0),
        xaxis=dict(visible=False, range=[min(xs) - 0.6, max(xs) + 0.6]),
        yaxis=dict(visible=False, range=[min(ys) - 0.7, max(ys) + 0.9]),
    )
    return fig


def _layered_layout(g: nx.DiGraph, column_height: float = 10.0) -> dict[str, tuple[float, float]]:
    """x: the layer of the node's strongly connected component in topological
    order of the condensation (locks taken first on the left); members of one
    component sit on a small circle; a tall layer wraps into sub-columns."""
    cond = nx.condensation(g)
    members = cond.graph["mapping"]
    comps: dict[int, list[str]] = defaultdict(list)
    for node in g.nodes:
        comps[members[node]].append(node)
    pos: dict[str, tuple[float, float]] = {}
    x = 0.0
    for gen in nx.topological_generations(cond):
        y = 0.0
        col_x = x
        widest = 0.0
        for c in sorted(gen, key=lambda c: (-len(comps[c]), sorted(comps[c])[0])):
            nodes = sorted(comps[c])
            k = len(nodes)
            r = 0.0 if k == 1 else 0.45 + 0.15 * k
            height = 1.2 if k == 1 else (1.2 if k == 2 else 2 * r + 0.9)
            width = 0.0 if k == 1 else 2.6 * r
            if y > 0 and y + height > column_height:
                col_x += max(widest, 0.0) + 1.4
                y, widest = 0.0, 0.0
            if k == 1:
                pos[nodes[0]] = (col_x, -y)
            elif k == 2:  # side by side: the two arcs between them stay readable
                pos[nodes[0]] = (col_x, -y)
                pos[nodes[1]] = (col_x + width, -y)
            else:
                cx, cy = col_x + 1.3 * r, y + r
                for i, n in enumerate(nodes):
                    angle = math.pi / 2 + 2 * math.pi * i / k
                    pos[n] = (cx + 1.3 * r * math.cos(angle), -(cy - r * math.sin(angle)))
            widest = max(widest, width)
            y += height
        x = col_x + widest + 2.2
    return pos


def _curve(p: tuple[float, float], q: tuple[float, float], bend: float, n: int = 16) -> list[tuple[float, float]]:
    """Points on a quadratic Bezier from p to q, bulging to the left of p->q."""
    (x0, y0), (x1, y1) = p, q
    dx, dy = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2 - dy * bend, (y0 + y1) / 2 + dx * bend
    out = []
    for i in range(n + 1):
        t = i / n
        out.append(((1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t * t * x1,
                    (1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t * t * y1))
    return out


# ---------------------------------------------------------------- distributions

def percentiles(locks: list[dict], names: fmt.LockNames, colors: dict[str, str]) -> go.Figure | None:
    """Hold-time percentiles per lock (min, p50, p95, p99, max; avg as a diamond), log scale."""
    rows = [lk for lk in locks if lk.get("hold_max_ns")]
    if not rows:
        return None
    fig = go.Figure()
    labels = [pt(t) for t in _shorten_all([names.label(lk) for lk in rows], 40)]
    for lk, label in zip(rows, labels, strict=True):
        color = colors.get(str(lk.get("id")), OTHER)
        lo = max(lk.get("hold_min_ns") or 1, 1)
        fig.add_trace(go.Scatter(x=[lo, lk["hold_max_ns"]], y=[label, label], mode="lines",
                                 line=dict(color=color, width=2), hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(x=[max(lk.get("hold_p50_ns") or 1, 1), max(lk.get("hold_p99_ns") or 1, 1)],
                                 y=[label, label], mode="lines", line=dict(color=color, width=10),
                                 hoverinfo="skip", showlegend=False, opacity=0.6))
        pts = [("min", lk.get("hold_min_ns")), ("p50", lk.get("hold_p50_ns")), ("p95", lk.get("hold_p95_ns")),
               ("p99", lk.get("hold_p99_ns")), ("max", lk.get("hold_max_ns"))]
        pts = [(n, v) for n, v in pts if v is not None]
        fig.add_trace(go.Scatter(
            x=[max(v, 1) for _n, v in pts], y=[label] * len(pts), mode="markers",
            marker=dict(size=7, color=color, line=dict(width=1, color="#ffffff")),
            hovertext=[f"<b>{label}</b><br>{n}: {fmt.duration(v)}" for n, v in pts],
            hovertemplate="%{hovertext}<extra></extra>", showlegend=False))
        if lk.get("hold_avg_ns"):
            fig.add_trace(go.Scatter(
                x=[max(lk["hold_avg_ns"], 1)], y=[label], mode="markers",
                marker=dict(symbol="diamond", size=9, color="#ffffff", line=dict(width=2, color=color)),
                hovertext=[f"<b>{label}</b><br>avg: {fmt.duration(lk['hold_avg_ns'])}"],
                hovertemplate="%{hovertext}<extra></extra>", showlegend=False))
    _base_layout(fig, 110 + 46 * len(rows),
                 note="hold time per lock: thin line min–max, thick bar p50–p99, ◇ average")
    fig.update_layout(xaxis=dict(type="log", title=dict(text="hold time (log scale)", standoff=6),
                                 gridcolor="#eef0f3", tickformat="~s", ticksuffix=""),
                      yaxis=dict(autorange="reversed", type="category"))
    _duration_ticks(fig)
    return fig


def histogram(series: dict[str, list[tuple[float, int]]], names: fmt.LockNames, colors: dict[str, str],
              what: str, bins_per_decade: int = 4) -> go.Figure | None:
    """Log-binned duration histogram, one line per lock."""
    if not series:
        return None
    fig = go.Figure()
    step = 10 ** (1 / bins_per_decade)
    labels = _shorten_all([names.label(key) for key in series], 40)
    for (key, bins), label in zip(series.items(), labels, strict=True):
        color = colors.get(key, OTHER)
        label = pt(label)
        counts = dict(bins)
        # a frequency polygon over every bin from the first to the last, zeros included
        first = round(math.log10(min(counts)) * bins_per_decade)
        last = round(math.log10(max(counts)) * bins_per_decade)
        los = [10 ** (b / bins_per_decade) for b in range(first - 1, last + 2)]
        ys = [next((n for lo2, n in bins if abs(math.log10(lo2) - math.log10(lo)) < 1e-9), 0) for lo in los]
        fig.add_trace(go.Scatter(
            x=[lo * math.sqrt(step) for lo in los], y=ys, mode="lines+markers", name=label, showlegend=True,
            line=dict(color=color, width=2), marker=dict(size=5, color=color),
            hovertext=[f"<b>{label}</b><br>{fmt.count(n)} {what}s of {fmt.duration(lo)} – "
                       f"{fmt.duration(lo * step)}" for lo, n in zip(los, ys, strict=True)],
            hovertemplate="%{hovertext}<extra></extra>"))
    _base_layout(fig, 340, note=f"how many {what}s took how long (log bins, 4 per decade)")
    fig.update_layout(xaxis=dict(type="log", title=dict(text=f"{what} time", standoff=6), gridcolor="#eef0f3"),
                      yaxis=dict(title=dict(text="count", standoff=4), gridcolor="#eef0f3", rangemode="tozero"),
                      legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0))
    fig.update_layout(height=340 + 22 * ((len(series) + 1) // 2), margin=dict(b=90))
    _duration_ticks(fig)
    return fig


def _duration_ticks(fig: go.Figure) -> None:
    """Label a log ns axis with readable durations at each decade."""
    labels = ["1 ns", "10 ns", "100 ns", "1 µs", "10 µs", "100 µs", "1 ms", "10 ms", "100 ms", "1 s", "10 s",
              "100 s", "1000 s"]
    fig.update_xaxes(tickmode="array", tickvals=[10 ** k for k in range(len(labels))], ticktext=labels)
