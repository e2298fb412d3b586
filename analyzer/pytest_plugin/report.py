"""What the pytest plugin prints in the terminal summary, from a findings document.

Plain text only (pytest's terminal writer adds colour); no DuckDB, no rich.
"""
from __future__ import annotations

from ..fold import also_line
from ..report.visible import visible

SEVERITIES = ("critical", "error", "warning", "info")
LEVELS = (*SEVERITIES, "never")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}
MAX_LISTED = 20


def at_or_above(severity: str, level: str) -> bool:
    """True when `severity` is at least as severe as `level` (`never` matches nothing)."""
    if level == "never":
        return False
    return _RANK.get(severity, len(SEVERITIES)) <= _RANK[level]


def failing(doc: dict, level: str) -> list[dict]:
    """The main findings of `doc` at or above `level` (baseline findings are already out;
    a finding folded under another is never more severe than it)."""
    return [f for f in doc.get("findings", []) if at_or_above(f.get("severity", "info"), level)
            and not f.get("folded_into")]


def _lock_labels(finding: dict) -> dict:
    out = {}
    for lk in finding.get("locks") or []:
        label = lk.get("label") or lk.get("name") or (
            f"{str(lk.get('type', 'lock')).split('|')[0]}@{lk['created_at']}" if lk.get("created_at")
            else str(lk.get("id")))
        out[lk.get("id")] = label
    return out


MAX_TESTS_PER_EDGE = 5


def _who(step: dict) -> str:
    """'tests: thread X' -- the tests that exercised the edge, and the actor when it
    is a thread or task (a test segment is named by its test)."""
    actor = step.get("actor") or {}
    tests = step.get("tests") or []
    shown = ", ".join(tests[:MAX_TESTS_PER_EDGE])
    if len(tests) > MAX_TESTS_PER_EDGE:
        shown += f" (+{len(tests) - MAX_TESTS_PER_EDGE} more tests)"
    if actor.get("kind") == "segment" and tests:
        return f"{shown}:"
    thread = f"{actor.get('kind', 'thread')} '{actor.get('name') or '?'}'"
    return f"{shown}: {thread}" if tests else f"{thread}:"


def step_line(step: dict, labels: dict) -> str:
    """One edge of a cycle: who requested which lock where, holding what."""
    req = step.get("requests") or {}
    wanted = labels.get(req.get("lock")) or req.get("name") or req.get("lock")
    held = ", ".join(f"'{labels.get(h.get('lock')) or h.get('name') or h.get('lock')}'"
                     f" (taken at {h.get('acquired_at') or '?'})" for h in step.get("holds") or [])
    return f"{_who(step)} requested '{wanted}' at {step.get('site') or '?'} while holding {held or 'nothing'}"


def finding_lines(finding: dict) -> list[str]:
    """A finding as a few lines: headline, then one line per edge (or its first site)."""
    head = (f"{finding.get('severity', '?').upper()} {finding.get('kind')}: {finding.get('title')}"
            f"  [{finding.get('id')} fingerprint {finding.get('fingerprint')}]")
    lines = [head]
    steps = finding.get("steps") or []
    if steps:
        labels = _lock_labels(finding)
        lines += [f"    {step_line(s, labels)}" for s in steps]
    else:
        sites = finding.get("sites") or []
        where = f" at {sites[0].get('site')}" if sites else ""
        tests = finding.get("tests") or []
        if where or tests:
            lines.append(f"    {'in ' + ', '.join(tests) if tests else ''}{where}".rstrip())
    return [visible(line) for line in lines]  # names from the trace: no control or bidi character


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def by_kind(findings: list[dict]) -> str:
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.get("kind", "?")] = counts.get(f.get("kind", "?"), 0) + 1
    return ", ".join(f"{n} {k}" for k, n in counts.items())


def report_lines(doc: dict, fail_on: str) -> tuple[list[str], str, bool]:
    """(lines listing the findings worth showing, the one-line verdict, failed?)."""
    findings = [f for f in doc.get("findings", []) if not f.get("folded_into")]
    bad = failing(doc, fail_on)
    shown = [f for f in findings if at_or_above(f.get("severity", "info"), "warning")
             or f in bad]
    lines: list[str] = []
    trace = doc.get("trace") or {}
    lines.append(f"analyzed {_count(len(trace.get('files') or []), 'trace file')}, "
                 f"{_count(int(trace.get('segments') or 0), 'test')}, "
                 f"{_count(int(trace.get('events') or 0), 'event')}, "
                 f"{_count(int(trace.get('locks') or 0), 'lock')}")
    for w in trace.get("warnings") or []:
        lines.append(visible(f"warning: {w}"))
    by_id = {f.get("id"): f for f in doc.get("findings", [])}
    for f in shown[:MAX_LISTED]:
        lines += finding_lines(f)
        also = also_line(f, by_id)
        if also:
            lines.append(visible(f"    also: {also}"))
    if len(shown) > MAX_LISTED:
        lines.append(f"... and {len(shown) - MAX_LISTED} more (see --lockscope-json / --lockscope-html)")
    quiet = len(findings) - len(shown)
    extra = []
    if quiet:
        extra.append(f"{quiet} info")
    if doc.get("suppressed"):
        extra.append(f"{doc['suppressed']} known in the baseline")
    tail = f" ({'; '.join(extra)})" if extra else ""
    if bad:
        verdict = (f"lockscope: FAILED: {_count(len(bad), 'finding')} at or above '{fail_on}': "
                   f"{by_kind(bad)}{tail}")
    elif fail_on == "never":
        verdict = f"lockscope: {_count(len(findings), 'finding')}, not failing (fail-on never){tail}"
    else:
        verdict = f"lockscope: passed: no findings at or above '{fail_on}'{tail}"
    return lines, verdict, bool(bad)
