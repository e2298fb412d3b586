"""A findings document (docs/findings-format.md) with one finding of every kind,
built by hand for rendering tests that need kinds a short real program cannot
produce reliably. `evil=True` puts markup into every string a trace can supply."""
from __future__ import annotations

EVIL = "<script>window.__xss=1</script>"


def sample_doc(evil: bool = False) -> dict:
    def s(text: str) -> str:
        return f"{text}{EVIL}" if evil else text

    run = "r1"
    A = {"id": "r1/2", "name": s("sessions"), "type": "threading.Lock", "created_at": s("app.py") + ":3"}
    B = {"id": "r1/3", "name": s("users"), "type": "threading.Lock", "created_at": "app.py:4"}
    C = {"id": "r1/9", "name": None, "type": "asyncio.Lock", "created_at": "svc.py:7"}
    t1 = {"id": "r1/4", "name": s("login"), "kind": "thread", "run": run}
    t2 = {"id": "r1/5", "name": s("rename"), "kind": "thread", "run": run}
    task = {"id": "r1/12", "name": s("Task-3"), "kind": "task", "run": run}
    site1 = {"site": s("app.py") + ":9", "path": s("app.py"), "line": 9, "func": s("login")}
    site2 = {"site": "app.py:14", "path": "app.py", "line": 14, "func": "rename"}
    stack = [[s("app.py"), 9, s("login")], ["/usr/lib/python3.11/threading.py", 982, "run"],
             ["/usr/lib/python3.11/threading.py", 1045, "_bootstrap_inner"]]
    steps = [
        {"actor": t1, "holds": [{"lock": "r1/2", "name": A["name"], "acquired_at": "app.py:8"}],
         "requests": {"lock": "r1/3", "name": B["name"]}, "site": site1["site"], "func": "login",
         "stack": stack, "ts": 1_000_002_500, "wall": "2026-11-27T21:00:00.000002Z"},
        {"actor": t2, "holds": [{"lock": "r1/3", "name": B["name"], "acquired_at": "app.py:13"}],
         "requests": {"lock": "r1/2", "name": A["name"]}, "site": "app.py:14", "func": "rename",
         "stack": None, "ts": 1_000_004_500, "wall": "2026-11-27T21:00:00.000004Z"},
    ]

    def finding(i: int, kind: str, severity: str, title: str, **kw) -> dict:
        base = {"id": f"F{i}", "fingerprint": f"{i:016x}", "kind": kind, "severity": severity,
                "title": s(title), "message": s(f"{title}\nsecond line"), "locks": [A], "threads": [t1],
                "sites": [site1], "steps": [], "count": 1, "run": run,
                "first_ts": 1_000_002_000, "first_wall": "2026-11-27T21:00:00.000002Z",
                "last_ts": 1_000_005_000, "last_wall": "2026-11-27T21:00:00.000005Z", "details": {}}
        base.update(kw)
        return base

    findings = [
        finding(1, "deadlock", "critical", "Deadlock: sessions -> users -> sessions", locks=[A, B],
                threads=[t1, t2], sites=[site1, site2], steps=steps,
                details={"cycle": ["r1/2", "r1/3"], "duration_ns": 4_000_000, "ended": False,
                         "resolved_by": None}),
        finding(2, "potential-deadlock", "error", "Potential deadlock: lock order cycle", locks=[A, B],
                threads=[t1, t2], sites=[site1, site2], steps=steps, count=3,
                details={"cycle": ["r1/2", "r1/3"], "length": 2}),
        finding(3, "self-deadlock", "error", "Self-deadlock on sessions",
                details={"duration_ns": 2_000_000, "ended": True}),
        finding(4, "wait-cycle", "error", "Wait cycle: queue while holding users", locks=[B],
                details={"resource": s("jobs queue"), "held_lock": "r1/3"}),
        finding(5, "held-across-await", "error", "Lock held across await", locks=[C], threads=[task],
                details={"duration_ns": 50_000_000, "waiters": 3}),
        finding(6, "long-hold", "warning", "Lock sessions held for 151 ms",
                details={"lock": "r1/2", "max_hold_ns": 151_000_000, "threshold_ns": 100_000_000,
                         "holds_over": 2, "worst": [
                             {"duration_ns": 151_000_000, "site": "app.py:8", "actor": t1,
                              "ts": 1_000_002_000, "wall": "2026-11-27T21:00:00.000002Z"}]}),
        finding(7, "stalled", "warning", "Stalled wait", details={"duration_ns": 9_000_000_000,
                                                                 "what": s("waiting for users")}),
        finding(8, "acquire-timeout", "warning", "Acquire of users gave up", locks=[B],
                details={"lock": "r1/3", "timeouts": 2, "cancels": 1, "max_wait_ns": 5_000_000,
                         "holders": ["app.py:13"]}),
        finding(9, "guarded-cycle", "info", "Guarded cycle", locks=[A, B], threads=[t1, t2], steps=steps,
                details={"cycle": ["r1/2", "r1/3"], "length": 2, "reason": "gate-lock",
                         "gate_locks": ["r1/9"], "explanation": s("both hold the gate")}),
        finding(10, "hot-lock", "info", "Contended lock users", locks=[B], count=40,
                details={"id": "r1/3", "acquisitions": 100, "contentions": 40, "timeouts": 0, "cancels": 0,
                         "wait_total_ns": 80_000_000, "wait_max_ns": 9_000_000, "hold_total_ns": 500_000_000,
                         "hold_p99_ns": 20_000_000}),
        finding(11, "future-kind", "warning", "A kind this report does not know"),
    ]
    lock_stats = []
    for lock, acq in ((B, 100), (A, 10), (C, 5)):
        lock_stats.append(dict(lock, reentrant=False, instances=1, acquisitions=acq, contentions=acq // 3,
                               timeouts=1, cancels=0, try_fails=0, wait_total_ns=1000 * acq,
                               wait_max_ns=900, wait_avg_ns=100, hold_min_ns=500, hold_avg_ns=2000,
                               hold_p50_ns=1500, hold_p95_ns=4000, hold_p99_ns=8000, hold_max_ns=9000 * acq,
                               hold_total_ns=2000 * acq, open_holds=0,
                               top_wait_sites=[{"site": s("app.py") + ":9", "count": 3, "wait_total_ns": 300}],
                               top_hold_sites=[{"site": "app.py:8", "count": acq, "hold_total_ns": 2000 * acq}]))
    return {
        "format": "lockscope-findings", "version": 1, "tool": {"name": "lockscope", "version": "0.1.0"},
        "generated_at": "2026-11-27T21:00:00Z",
        "options": {"group_by": "instance", "actors": "task", "long_hold_ns": 100_000_000},
        "trace": {
            "files": [{"path": s("/traces/a.jsonl"), "run": run, "part": 0, "lines": 40, "records": 38,
                       "corrupt_lines": 2, "end_reason": None}],
            "processes": [{"run": run, "pid": 4242, "host": s("web-1"), "argv": [s("app.py"), "--port", "80"],
                           "runtime": "CPython 3.11.7", "cwd": "/srv", "parts": 1, "start_ts": 1_000_000_000,
                           "start_wall": "2026-11-27T21:00:00.000000Z", "end_ts": 1_010_000_000,
                           "end_wall": "2026-11-27T21:00:00.010000Z", "duration_ns": 10_000_000,
                           "ended": False, "end_reason": None, "dropped": 120}],
            "threads": 3, "tasks": 1, "locks": 3, "resources": 1, "segments": 0, "events": 1234,
            "duration_ns": 10_000_000, "dropped": 120, "corrupt_lines": 2,
            "corrupt": [{"file": s("/traces/a.jsonl"), "line": 7, "reason": "not a JSON object"},
                        {"file": "/traces/a.jsonl", "line": 40, "reason": "truncated or unparsable last line"}],
            "unknown_records": 1, "incomplete_runs": [run], "warnings": [s("cycle search stopped")],
        },
        "findings": findings, "suppressed": 2, "locks": lock_stats,
    }
