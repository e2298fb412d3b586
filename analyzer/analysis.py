"""Run the whole analysis: load, derive, apply every rule, build the findings document."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
import orjson

from recorder._redact import redact_argv

from . import load as loader
from .context import Context, Options, parse_duration
from .errors import UnusableInput
from .findings import SEVERITIES, Finding, at_or_above
from .fold import fold, main_findings
from .paths import absolute_root
from .rules import all_rules
from .stats import lock_stats
from .timing import Lap

VERSION = "0.1.0"
MAX_CORRUPT_LISTED = 100


def analyze(paths, *, group_by: str = "instance", actors: str = "task", long_hold: str | int = "100ms",
            baseline: str | os.PathLike | None = None, db: str | os.PathLike | None = None,
            memory_limit: str | None = None, max_cycle_length: int = 6, rules: list[str] | None = None,
            fail_on: str = "error", on_result=None, show_argv: bool = False,
            temp_limit: str | None = None, source_root: str | os.PathLike | None = None,
            all_locks: bool = False) -> dict:
    """Analyze trace files and return the findings document (docs/findings-format.md).

    `paths`: files, directories or globs (one path or a list). Raises UnusableInput
    when nothing can be analyzed. `on_result(doc, con)`, when given, is called with
    the document while the database is still open (the HTML report draws from it).
    With `db`, the document is also stored in the database (table `findings_json`).
    Secret-looking values of each process's argv are masked unless `show_argv`.
    `memory_limit` / `temp_limit` bound DuckDB's memory and spill (see load.connect);
    running out of either raises UnusableInput. Paths are shown relative to
    `source_root` (default: each process's recorded working directory). `all_locks`:
    the reports list every lock's statistics, the libraries' too (`locks` always does).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    long_hold_ns = long_hold if isinstance(long_hold, int) else parse_duration(long_hold)
    opts = Options(group_by=group_by, actors=actors, long_hold_ns=long_hold_ns,
                   max_cycle_length=max_cycle_length, source_root=absolute_root(source_root),
                   all_locks=all_locks)
    known = load_baseline(baseline) if baseline else set()
    files = loader.discover(list(paths))
    con = loader.connect(db, memory_limit, temp_limit)
    try:
        return _analyze(con, files, opts, known, baseline=baseline, db=db, rules=rules, fail_on=fail_on,
                        on_result=on_result, show_argv=show_argv)
    except duckdb.OutOfMemoryException:
        limits = con.execute("SELECT current_setting('memory_limit'), "
                             "current_setting('max_temp_directory_size')").fetchone()
        raise UnusableInput(f"out of memory or spill space (memory limit {limits[0]}, spill limit {limits[1]}): "
                            f"raise --memory-limit / --temp-limit (LOCKSCOPE_MEMORY_LIMIT, "
                            f"LOCKSCOPE_TEMP_LIMIT) or analyze fewer files") from None
    finally:
        con.close()


def _analyze(con, files, opts: Options, known: set[str], *, baseline, db, rules, fail_on: str,
             on_result, show_argv: bool) -> dict:
    """The body of `analyze`, on an open connection."""
    timings: dict[str, float] = {}
    lap = Lap(timings)
    loaded = loader.load(con, files, timings)
    lap("load_s")
    ctx = Context(con, opts)

    selected = [r for r in all_rules() if rules is None or set(r.KINDS) & set(rules)]

    def prepare() -> None:  # what the selected rules and the lock table need of holds and waits only
        for rule in selected:
            if hasattr(rule, "PREPARE"):
                rule.PREPARE(ctx)  # cached in ctx: shared work runs once
        lock_stats(ctx)

    loader.derive(con, group_by=opts.group_by, actors=opts.actors, timings=timings, alongside=prepare,
                  source_root=opts.source_root)
    lap("derive_s")
    findings: list[Finding] = []
    for rule in selected:
        findings += rule.find(ctx)
        lap(f"rule:{rule.__name__.rsplit('.', 1)[-1]}_s")
    findings.sort(key=Finding.sort_key)
    label_steps(ctx, findings)
    kept = [f for f in findings if f.fingerprint not in known]
    doc = {
        "format": "lockscope-findings",
        "version": 1,
        "tool": {"name": "lockscope", "version": VERSION},
        "generated_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "options": opts.to_json() | {"fail_on": fail_on,
                                     "baseline": str(baseline) if baseline else None},
        "trace": trace_summary(ctx, loaded, show_argv=show_argv),
        "findings": folded_json(kept, ctx.wall),
        "suppressed": len(findings) - len(kept),
        "locks": lock_table(ctx),
    }
    mains = main_findings(doc["findings"])
    doc["summary"] = {s: sum(1 for f in mains if f["severity"] == s) for s in SEVERITIES}
    doc["folded"] = len(doc["findings"]) - len(mains)
    lap("report_s")
    doc["timings"] = timings
    if db is not None:
        store_findings(con, doc)
    if on_result is not None:
        on_result(doc, con)
    return doc


def folded_json(findings: list[Finding], wall) -> list[dict]:
    """The findings as JSON (ids F1, F2, ... in order), each folded one marked with
    `folded_into` and listed in its main finding's `related`."""
    out = [f.to_json(f"F{i}", wall) for i, f in enumerate(findings, 1)]
    for i, main in sorted(fold(findings).items()):
        out[i]["folded_into"] = out[main]["id"]
        out[main]["related"].append(out[i]["id"])
    return out


def lock_table(ctx: Context) -> list[dict]:
    """The `locks` array: each lock's statistics with its label, the program's own
    locks first (most contended first within each part)."""
    rows = [{k: v for k, v in s.items() if k != "lk"} | {"label": ctx.lock_label(s["lk"])}
            for s in lock_stats(ctx)]
    return sorted(rows, key=lambda s: s["library"] is not None)


def label_steps(ctx: Context, findings: list[Finding]) -> None:
    """Give every lock a finding's steps name its label too (`label`)."""
    labels = {ctx.lock(lk)["id"]: ctx.lock_label(lk) for lk in ctx.lock_keys()}
    for f in findings:
        for step in f.steps:
            for ref in [*(step.get("holds") or []), step.get("requests") or {}]:
                if ref.get("lock") in labels:
                    ref["label"] = labels[ref["lock"]]


def store_findings(con, doc: dict) -> None:
    """Keep the findings document in the database, so `lockscope report` can re-render it."""
    con.execute("CREATE OR REPLACE TABLE findings_json (document VARCHAR)")
    con.execute("INSERT INTO findings_json VALUES (?)", [orjson.dumps(doc).decode()])


def stored_findings(con) -> dict:
    """The findings document stored by `store_findings`; UnusableInput when there is none."""
    try:
        row = con.execute("SELECT document FROM findings_json LIMIT 1").fetchone()
    except duckdb.Error:  # no such table
        row = None
    if not row:
        raise UnusableInput("the database holds no findings (it was not written by lockscope analyze --db)")
    return orjson.loads(row[0])


def load_baseline(path: str | os.PathLike) -> set[str]:
    """Fingerprints of the findings in an earlier findings JSON file."""
    try:
        doc = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise UnusableInput(f"baseline {path}: cannot read findings JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != "lockscope-findings":
        raise UnusableInput(f"baseline {path}: not a lockscope findings file")
    return {f["fingerprint"] for f in doc.get("findings", []) if "fingerprint" in f}


def failing(doc: dict, fail_on: str) -> list[dict]:
    """The main findings at or above `fail_on` (a folded one is never more severe than its main one)."""
    return [f for f in main_findings(doc["findings"]) if at_or_above(f["severity"], fail_on)]


def shown_argv(raw: str | None, show: bool) -> list[str]:
    """A run's argv as reports show it: secrets masked (traces recorded with
    ``redact_argv=False``, or before the recorder redacted) unless `show`."""
    argv = orjson.loads(raw) if raw else []
    if not isinstance(argv, list):
        return []
    return [str(a) for a in argv] if show else redact_argv(argv)


def recording_cost(run: dict) -> dict | None:
    """What recording cost one process, from the latest ``cost`` its trace holds
    (docs/trace-format.md, `beat`): None for a trace without one."""
    since, until, cpu = run.get("cost_since"), run.get("cost_until"), run.get("cost_cpu_ns")
    if since is None or until is None or cpu is None or until < since:
        return None
    writer = run.get("cost_writer_ns")
    return {
        "since_ns": since, "until_ns": until, "cpu_ns": cpu, "writer_ns": writer,
        "events": run.get("cost_events"), "bytes": run.get("cost_bytes"),
        # the writer's share of the process's CPU, and the cores the process used
        "writer_share": writer / cpu if writer is not None and cpu > 0 else None,
        "cores": cpu / (until - since) if until > since else None,
    }


def total_cost(procs: list[dict]) -> dict | None:
    """The processes' recording costs added up (None when no process has one)."""
    costs = [p["cost"] for p in procs if p.get("cost")]
    if not costs:
        return None
    # (a field some process lacks is the sum over those that have it; None if none does)
    total: dict = {k: sum(c[k] for c in costs if c[k] is not None)
                   if any(c[k] is not None for c in costs) else None
                   for k in ("cpu_ns", "writer_ns", "events", "bytes")}
    total["processes"] = len(costs)
    both = [c for c in costs if c["writer_ns"] is not None]
    cpu = sum(c["cpu_ns"] for c in both)
    total["writer_share"] = sum(c["writer_ns"] for c in both) / cpu if cpu else None
    return total


def trace_summary(ctx: Context, loaded: loader.Loaded, show_argv: bool = False) -> dict:
    con = ctx.con
    files = ctx.rows("SELECT path, run, part, lines, records, corrupt_lines, end_reason FROM files ORDER BY file_id")
    files += [{"path": str(p), "run": None, "part": None, "lines": 0, "records": 0, "corrupt_lines": 0,
               "end_reason": None} for p in loaded.empty_files]
    procs = []
    for r in ctx.rows("SELECT * FROM runs ORDER BY run"):
        procs.append({
            "run": r["run"], "pid": r["pid"], "host": r["host"],
            "argv": shown_argv(r["argv"], show_argv), "runtime": r["runtime"],
            "cwd": r["cwd"], "parts": r["parts"],
            "start_ts": r["first_ts"], "start_wall": ctx.wall(r["run"], r["first_ts"]),
            "end_ts": r["last_ts"], "end_wall": ctx.wall(r["run"], r["last_ts"]),
            "duration_ns": r["duration_ns"], "ended": r["ended"], "end_reason": r["end_reason"],
            "dropped": r["dropped"],
            "cost": recording_cost(r),
        })

    def count(table: str) -> int:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    corrupt = ctx.rows(f"SELECT path AS file, line, reason FROM corrupt_lines ORDER BY file_id, line "
                       f"LIMIT {MAX_CORRUPT_LISTED}")
    warnings = list(dict.fromkeys(loaded.warnings + ctx.warnings))
    incomplete = [p["run"] for p in procs if not p["ended"]]
    dropped = min(sum(p["dropped"] for p in procs), 2**62)  # each is capped at 2**62 too
    if dropped:
        warnings.append(f"{dropped} events were dropped by the recorder: a thread's holds open where it lost "
                        "events end there (unknown when) unless a resync record tells what was lost; "
                        "findings that rest on a hold taken in such a gap say they are partial")
    if incomplete:
        warnings.append(f"{len(incomplete)} run(s) have no end record (killed or hung): "
                        "locks still held and waits still pending at the end are reported as such")
    missing = ctx.rows("SELECT run, max(part) + 1 - count(DISTINCT part) AS n FROM files "
                       "WHERE run IS NOT NULL GROUP BY run HAVING n > 0 ORDER BY run")
    if missing:
        warnings.append(f"{len(missing)} run(s) lack parts ({sum(m['n'] for m in missing)} in all; "
                        "deleted by the recorder's max_total_mb cap, or not given): what happened "
                        "in them is not analyzed")
    if loaded.empty_files:
        warnings.append(f"{len(loaded.empty_files)} empty trace file(s) skipped")
    if loaded.headerless_files:
        warnings.append(f"{len(loaded.headerless_files)} file(s) without a header record skipped: "
                        + ", ".join(loaded.headerless_files[:3]))
    return {
        "files": files,
        "processes": procs,
        "threads": count("threads"),
        "tasks": count("tasks"),
        "locks": count("locks"),
        "resources": count("resources"),
        "segments": count("segments"),
        "events": count("events"),
        "duration_ns": max((p["duration_ns"] or 0 for p in procs), default=0),
        "dropped": dropped,
        "cost": total_cost(procs),
        "corrupt_lines": count("corrupt_lines"),
        "corrupt": corrupt,
        "unknown_records": count("unknown_records"),
        "incomplete_runs": incomplete,
        "warnings": warnings,
    }

