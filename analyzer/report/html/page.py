"""Static parts of the HTML report page: style sheet and the one script that
draws the charts and sorts tables (vanilla JS, no external libraries)."""

CSS = """
:root { --fg:#1f2933; --muted:#616e7c; --line:#e4e7eb; --bg:#f5f7fa; --card:#fff;
  --critical:#8e0b1f; --error:#d93025; --warning:#b7791f; --info:#1a73e8; --ok:#2f855a; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
header.top { background:#102a43; color:#fff; padding: 14px 28px 0; position: sticky; top: 0; z-index: 10;
  box-shadow: 0 1px 4px rgba(0,0,0,.25); }
header.top h1 { margin:0; font-size: 19px; font-weight: 600; }
header.top h1 .prog { font-weight: 400; color:#bcccdc; }
header.top .meta { color:#9fb3c8; font-size: 12px; margin-top: 2px; }
header.top nav { margin-top: 8px; display:flex; gap: 4px; flex-wrap: wrap; }
header.top nav a { color:#d9e2ec; text-decoration:none; padding: 6px 10px; border-radius: 6px 6px 0 0; font-size: 13px; }
header.top nav a:hover { background:#243b53; color:#fff; }
main { max-width: 1280px; margin: 0 auto; padding: 18px 28px 60px; }
section { margin-top: 26px; }
section > h2 { font-size: 20px; margin: 0 0 12px; padding-bottom: 6px; border-bottom: 2px solid var(--line); }
h3 { font-size: 17px; margin: 0; }
h4 { font-size: 14px; margin: 18px 0 6px; color:#334e68; text-transform: uppercase; letter-spacing: .04em; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 16px 20px;
  box-shadow: 0 1px 2px rgba(16,42,67,.05); }
.grid-cards { display:grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; }
.stat { background: var(--card); border:1px solid var(--line); border-radius: 10px; padding: 10px 14px; }
.stat .v { font-size: 21px; font-weight: 600; }
.stat .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.stat.warn { border-color: #f0b429; background: #fffbea; }
.stat.bad { border-color: #f29b9b; background: #fff5f5; }
.wide { grid-column: span 2; }
.muted { color: var(--muted); }
code, pre, .sitecode { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
code { background:#f0f4f8; padding: 1px 4px; border-radius: 4px; }
pre { background:#f0f4f8; padding: 10px 12px; border-radius: 6px; overflow-x: auto; white-space: pre-wrap; }
.badge { display:inline-block; padding: 1px 8px; border-radius: 10px; font-size: 11.5px; font-weight: 600;
  color: #fff; text-transform: uppercase; letter-spacing: .03em; vertical-align: middle; }
.badge.primary { background:#486581; text-transform:none; }
.sev-critical { background: var(--critical); } .sev-error { background: var(--error); }
.sev-warning { background: var(--warning); } .sev-info { background: var(--info); }
.sevbar { display:flex; gap: 10px; flex-wrap: wrap; margin: 4px 0 0; }
.sevbar .pill { border-radius: 8px; padding: 8px 14px; color:#fff; min-width: 110px; }
.sevbar .pill .n { font-size: 22px; font-weight: 700; display:block; }
.sevbar .pill.zero { opacity: .35; }
.warnbox { border-left: 4px solid #f0b429; background: #fffbea; padding: 10px 14px; border-radius: 6px; margin: 12px 0; }
.warnbox.bad { border-color: var(--error); background:#fff5f5; }
.warnbox ul { margin: 4px 0 0 18px; padding: 0; }
.okbox { border-left: 4px solid var(--ok); background:#f0fff4; padding: 10px 14px; border-radius: 6px; margin: 12px 0; }
table { border-collapse: collapse; }
table.grid { width: 100%; background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
table.grid th, table.grid td { padding: 5px 9px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
table.grid th { background:#f0f4f8; font-weight: 600; font-size: 12.5px; white-space: nowrap; }
table.grid td.num, table.grid th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.grid tr:hover td { background: #f8fafc; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th:after { content: " \\2195"; color: #9aa5b1; font-size: 11px; }
table.sortable th.asc:after { content: " \\2191"; color: var(--fg); }
table.sortable th.desc:after { content: " \\2193"; color: var(--fg); }
.scroll { overflow-x: auto; max-width: 100%; }
.stats-table td:first-child, .stats-table th:first-child { position: sticky; left: 0; background: #fff; z-index: 1;
  box-shadow: 1px 0 0 var(--line); }
.stats-table th:first-child { background:#f0f4f8; }
.stats-table .sites-cell { font-size: 12px; min-width: 240px; }
.stats-table .lock { white-space: nowrap; word-break: normal; }
.stats-table td { white-space: nowrap; }
article.finding { background: var(--card); border:1px solid var(--line); border-left: 6px solid var(--info);
  border-radius: 10px; padding: 16px 22px 18px; margin: 16px 0; }
article.finding.critical { border-left-color: var(--critical); }
article.finding.error { border-left-color: var(--error); }
article.finding.warning { border-left-color: var(--warning); }
article.finding .ftitle { font-size: 15px; margin: 6px 0 10px; font-weight: 500; word-break: break-word; }
article.finding .fid { color: var(--muted); font-weight: 400; }
.cols { display:grid; grid-template-columns: minmax(0, 1fr) 340px; gap: 22px; }
@media (max-width: 980px) { .cols { grid-template-columns: 1fr; } }
table.facts th { text-align: left; color: var(--muted); font-weight: 500; padding: 3px 12px 3px 0; vertical-align: top; white-space: nowrap; }
table.facts td { padding: 3px 0; word-break: break-word; }
table.facts { background:#f8fafc; border-radius: 8px; padding: 8px 12px; display:block; font-size: 13px; }
.lock { font-weight: 600; color: #7b341e; background: #fff4e6; padding: 0 4px; border-radius: 4px;
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; word-break: break-all; }
.actor { font-weight: 600; color: #1c4e80; }
ul.story { margin: 6px 0; padding-left: 20px; }
ul.story li { margin: 4px 0; }
.cols > div { min-width: 0; }
table.scenario { margin: 12px 0; border: 1px solid var(--line); background: #fcfcfd; font-size: 13px;
  width: 100%; table-layout: fixed; }
table.scenario th:first-child { width: 30px; min-width: 0; }
table.scenario td { word-break: break-word; }
table.scenario caption { text-align: left; font-weight: 600; padding: 4px 0; color:#334e68; }
table.scenario th { background: #f0f4f8; padding: 6px 16px; text-align: left; font-weight: 600; }
table.scenario td { padding: 5px 16px; border-top: 1px dashed var(--line); vertical-align: top; }
table.scenario td.stepno { color: #9aa5b1; padding-right: 4px; min-width: 0; font-size: 11px; }
table.scenario .blocks { color: var(--error); font-size: 12px; font-weight: 600; }
table.scenario .site { color: var(--muted); font-size: 11.5px; font-family: ui-monospace, Menlo, monospace; }
table.scenario td.deadlock { color: var(--critical); font-weight: 700; letter-spacing: .06em; text-align: left;
  font-family: ui-monospace, Menlo, monospace; background: #fff5f5; }
ul.sites { list-style: none; padding: 0; margin: 0; }
ul.sites > li { padding: 6px 0; border-bottom: 1px dashed var(--line); }
div.called { color: var(--muted); font-size: 11.5px; margin: 2px 0 0 4px; }
div.stack { margin: 0 0 0 4px; padding-left: 10px; border-left: 2px solid #d9e2ec; font-size: 12.5px; }
div.stack .frame { margin: 1px 0; }
div.stack .frame.lib code { background: none; color: #7b8794; }
details.libframes > summary { color: #7b8794; font-weight: 400; margin: 1px 0; font-size: 12px; }
details.libframes { margin: 0; }
ul.advice { margin: 0; padding-left: 20px; } ul.advice li { margin: 4px 0; }
.plot { width: 100%; min-height: 200px; margin: 8px 0; border: 1px solid var(--line); border-radius: 8px; background:#fff; }
.plot-note { font-size: 12.5px; color: var(--muted); margin: 4px 0 0; }
.two { display:grid; grid-template-columns: 1fr 1fr; gap: 14px; }
@media (max-width: 980px) { .two { grid-template-columns: 1fr; } }
details > summary { cursor: pointer; color: #334e68; font-weight: 500; margin: 8px 0; }
a { color: #1a5fb4; }
td.title-cell { word-break: break-word; }
footer { text-align:center; color: var(--muted); font-size: 12px; margin: 40px 0 20px; }
"""

# Draws every `<div class="plot" data-fig="ID">` from the JSON in
# `<script type="application/json" id="ID">`, then sets body[data-rendered].
SCRIPT = r"""
(function () {
  "use strict";
  var plots = Array.prototype.slice.call(document.querySelectorAll("div.plot[data-fig]"));
  var done = function (n) { document.body.setAttribute("data-rendered", String(n)); };
  if (typeof window.Plotly === "undefined") {
    plots.forEach(function (div) {
      div.textContent = "This chart needs plotly.js, which could not be loaded: the report was " +
        "written with --plotlyjs cdn and there is no network. Re-render it with --plotlyjs inline.";
      div.className += " plot-missing";
    });
    done(0);
  } else {
    var config = {responsive: true, displaylogo: false, scrollZoom: false,
                  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"]};
    var i = 0, rendered = 0;
    var next = function () {
      if (i >= plots.length) { done(rendered); return; }
      var div = plots[i++];
      var spec = JSON.parse(document.getElementById(div.getAttribute("data-fig")).textContent);
      window.Plotly.newPlot(div, spec.data, spec.layout, config).then(function () {
        rendered++; window.requestAnimationFrame(next);
      }, function (err) { console.error("chart failed", err); window.requestAnimationFrame(next); });
    };
    next();
  }
  // sortable tables: click a header; cells may carry data-v with the sort key
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.addEventListener("click", function () {
        var desc = !th.classList.contains("desc");
        Array.prototype.forEach.call(heads, function (h) { h.classList.remove("asc", "desc"); });
        th.classList.add(desc ? "desc" : "asc");
        var numeric = th.classList.contains("num");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var key = function (row) {
          var cell = row.cells[col];
          var v = cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent;
          return numeric ? (v === "" ? -Infinity : parseFloat(v)) : v.toLowerCase();
        };
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          var c = x < y ? -1 : x > y ? 1 : 0;
          return desc ? -c : c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
"""
