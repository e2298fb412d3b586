"""Analyzer throughput benchmark.

Generates (once, cached under benchmarks/out/) a synthetic trace: 16 worker
threads, 200 locks, nesting up to 4, about 10 million events, with planted bugs:

* a 2-lock order inversion between two threads          -> potential-deadlock
* a 3-lock cycle across three threads                    -> potential-deadlock
* an inversion under a common gate lock                  -> guarded-cycle (must NOT be a potential deadlock)
* two threads left blocked on each other at the end      -> deadlock (or potential-deadlock)

Then runs `analyze` with JSON output in a child process, and prints wall time,
events per second and the child's peak RSS, and checks every planted bug was found.

    python benchmarks/analyzer_throughput.py [--events 10000000] [--regenerate]

Exit status 1 when a planted bug is missed or a target is not met.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
THREADS = 16
LOCKS = 200
ORDINARY_LOCKS = 190      # locks 1..190 are taken in one global order; 191..200 are for planted bugs
PATHS = 400               # distinct code paths (lock sequences) the workers run
OP_PERIOD = 2000          # ns between operations of one thread
TARGET_EPS = 500_000
TARGET_RSS = 3 * 1024**3
GEN_VERSION = 1

LOCK_ID0 = 100            # lock i has id LOCK_ID0 + i; thread t (1 = main) has id t
SITE_PATH0 = 1000         # path p level j acquires at site SITE_PATH0 + 4p + j
PLANTED_SITE0 = 3000


def generate(path: Path, events: int) -> None:
    import duckdb

    ops_per_thread = int(events / THREADS / 5.05)
    con = duckdb.connect()
    con.execute(f"SET threads = {os.cpu_count() or 2}")
    header = {"k": "header", "format": "lockscope-trace", "version": 1, "run": "bench", "part": 0,
              "pid": 1, "host": "bench", "runtime": "synthetic", "argv": ["bench"], "cwd": "/srv",
              "clock": "monotonic", "mono_ns": 0, "wall_ns": 1_795_640_400_000_000_000, "settings": {}}
    pre = [header, {"k": "thread", "id": 1, "name": "MainThread", "parent": None, "ts": 1}]
    for i in range(1, LOCKS + 1):
        pre.append({"k": "site", "id": i, "file": "/srv/bench/locks.py", "line": i, "func": "make"})
        pre.append({"k": "lock", "id": LOCK_ID0 + i, "type": "threading.Lock", "name": f"L{i}",
                    "reentrant": False, "site": i, "ts": 10 + i, "th": 1})
    for p in range(PATHS):
        for j in range(4):
            pre.append({"k": "site", "id": SITE_PATH0 + 4 * p + j, "file": "/srv/bench/app.py",
                        "line": 10 * p + j + 1, "func": f"path{p}"})
    pre.append({"k": "site", "id": 999, "file": "/srv/bench/main.py", "line": 5, "func": "main"})
    for t in range(2, THREADS + 2):
        pre.append({"k": "thread", "id": t, "name": f"worker-{t - 1}", "parent": 1, "ts": 500 + t})
        pre.append({"k": "ev", "ts": 500 + t, "th": 1, "obj": t, "op": "start", "site": 999})
    t_base = 10_000

    # planted patterns: (thread, op index, [(op, lock), ...]) run in the idle gap of that op
    planted = []
    s = PLANTED_SITE0
    for k in range(500, ops_per_thread, 5000):      # inversion: thread 2 L191->L192, thread 3 L192->L191
        planted.append((2, k, [("acquire", 191), ("acquire", 192), ("release", 192), ("release", 191)]))
    planted.append((3, ops_per_thread // 2, [("acquire", 192), ("acquire", 191), ("release", 191), ("release", 192)]))
    planted.append((4, 1000, [("acquire", 193), ("acquire", 194), ("release", 194), ("release", 193)]))
    planted.append((5, 2000, [("acquire", 194), ("acquire", 195), ("release", 195), ("release", 194)]))
    planted.append((6, 3000, [("acquire", 195), ("acquire", 193), ("release", 193), ("release", 195)]))
    planted.append((7, 4000, [("acquire", 196), ("acquire", 197), ("acquire", 198),
                              ("release", 198), ("release", 197), ("release", 196)]))
    planted.append((8, 5000, [("acquire", 196), ("acquire", 198), ("acquire", 197),
                              ("release", 197), ("release", 198), ("release", 196)]))
    extra = []
    for th, k, seq in planted:
        for i, (op, lock) in enumerate(seq):
            s += 1
            extra.append((t_base + k * OP_PERIOD + 1200 + 50 * i, th, LOCK_ID0 + lock, op, s))
    # the real deadlock at the end: worker 15 holds L199 and waits for L200, worker 16 the reverse
    end = t_base + ops_per_thread * OP_PERIOD + 10_000
    for th, mine, other, dt in ((THREADS, 199, 200, 0), (THREADS + 1, 200, 199, 100)):
        extra.append((end + dt, th, LOCK_ID0 + mine, "acquire", 3900 + th))
        extra.append((end + 1000 + dt, th, LOCK_ID0 + other, "wait", 3950 + th))
    for *_, site in extra:
        if site > PLANTED_SITE0:
            pre.append({"k": "site", "id": site, "file": "/srv/bench/planted.py", "line": site - PLANTED_SITE0,
                        "func": "planted"})
    pre += [{"k": "site", "id": 3900 + t, "file": "/srv/bench/planted.py", "line": 900 + t, "func": "stuck"}
            for t in (THREADS, THREADS + 1)]
    pre += [{"k": "site", "id": 3950 + t, "file": "/srv/bench/planted.py", "line": 950 + t, "func": "stuck"}
            for t in (THREADS, THREADS + 1)]
    con.execute("CREATE TABLE pre(line VARCHAR, ord BIGINT)")
    con.executemany("INSERT INTO pre VALUES (?, ?)", [(json.dumps(r, separators=(",", ":")), i)
                                                       for i, r in enumerate(pre)])
    con.execute("CREATE TABLE extra(ts BIGINT, th INTEGER, obj INTEGER, op VARCHAR, site INTEGER)")
    con.executemany("INSERT INTO extra VALUES (?, ?, ?, ?, ?)", extra)
    con.execute(f"""
        CREATE TABLE paths AS
        SELECT p, list_sort(list_distinct([((p * 13 + j * 47) % {ORDINARY_LOCKS}) + 1
                                            FOR j IN range(1 + p % 4)])) AS locks
        FROM range({PATHS}) r(p)
    """)
    con.execute(f"""
        CREATE TABLE ev AS
        WITH ops AS (
            SELECT t.th, k, hash(t.th, k) % {PATHS} AS p,
                   {t_base} + k * {OP_PERIOD} + (t.th * 37) % 500 AS t0
            FROM range(2, {THREADS + 2}) t(th), range({ops_per_thread}) o(k)
        ), steps AS (
            SELECT o.th, o.k, o.p, o.t0, pa.locks, len(pa.locks) AS d, unnest(range(2 * len(pa.locks))) AS i
            FROM ops o JOIN paths pa USING (p)
        )
        SELECT t0 + i * 100 AS ts, th,
               {LOCK_ID0} + CASE WHEN i < d THEN locks[i + 1] ELSE locks[2 * d - i] END AS obj,
               CASE WHEN i < d THEN 'acquire' ELSE 'release' END AS op,
               CASE WHEN i < d THEN {SITE_PATH0} + 4 * p + i END AS site
        FROM steps
        UNION ALL
        -- contention: every 20th operation waits 50 ns for its first lock
        SELECT t0 - 50, o.th, {LOCK_ID0} + pa.locks[1], 'wait', {SITE_PATH0} + 4 * o.p
        FROM ops o JOIN paths pa USING (p) WHERE o.k % 20 = 0
        UNION ALL
        SELECT ts, th, obj, op, site FROM extra
    """)
    tmp = path.with_suffix(".tmp")
    con.execute(f"""
        COPY (
            SELECT line FROM (
                SELECT line, 0 AS grp, ord AS a, 0 AS b, 0 AS c FROM pre
                UNION ALL
                SELECT '{{"k":"ev","ts":' || ts || ',"th":' || th || ',"obj":' || obj || ',"op":"' || op || '"'
                       || CASE WHEN site IS NULL THEN '' ELSE ',"site":' || site END || '}}',
                       1, ts // 1000000, th, ts  -- the writer flushes per-thread batches every ~1 ms
                FROM ev
            ) ORDER BY grp, a, b, c
        ) TO '{tmp}' (FORMAT csv, HEADER false, QUOTE '\x02', ESCAPE '\x02', DELIMITER '\x01')
    """)
    tmp.rename(path)


def measure(trace: Path, json_out: Path) -> None:
    """Child process: analyze and write JSON."""
    from analyzer.analysis import analyze
    from analyzer.report import json as json_report

    doc = analyze([trace], memory_limit=os.environ.get("LOCKSCOPE_BENCH_MEMORY", "2.5GB"))
    json_report.write(doc, json_out)


def phases(timings: dict[str, float]) -> str:
    """'load 14.1 (read events 6.2, ...), derive ..., rules ... (acquire_timeout 2.3, ...), report 0.0'."""
    parts = []
    for phase in ("load", "derive"):
        subs = [f"{k.split(':', 1)[1].removesuffix('_s').replace('_', ' ')} {v:.1f}"
                for k, v in timings.items() if k.startswith(phase + ":")]
        parts.append(f"{phase} {timings.get(phase + '_s', 0):.1f}" + (f" ({', '.join(subs)})" if subs else ""))
    rules = {k.split(":", 1)[1].removesuffix("_s"): v for k, v in timings.items() if k.startswith("rule:")}
    slow = [f"{k} {v:.1f}" for k, v in sorted(rules.items(), key=lambda kv: -kv[1]) if v >= 0.05]
    parts.append(f"rules {sum(rules.values()):.1f}" + (f" ({', '.join(slow)})" if slow else ""))
    parts.append(f"report {timings.get('report_s', 0):.1f}")
    return ", ".join(parts)


def check(doc: dict) -> list[str]:
    """Planted bugs that were not found (empty when all were)."""
    def lock_sets(kind: str) -> list[set[str]]:
        return [{lk["name"] for lk in f["locks"]} for f in doc["findings"] if f["kind"] == kind]

    potential = lock_sets("potential-deadlock") + lock_sets("deadlock")
    missing = []
    if {"L191", "L192"} not in potential:
        missing.append("2-lock inversion L191/L192")
    if {"L193", "L194", "L195"} not in potential:
        missing.append("3-lock cycle L193/L194/L195")
    if any(s & {"L197", "L198"} for s in potential):
        missing.append("gate-lock cycle L197/L198 wrongly reported as a potential deadlock")
    if {"L197", "L198"} not in lock_sets("guarded-cycle"):
        missing.append("gate-lock cycle L197/L198 not listed as guarded-cycle")
    if {"L199", "L200"} not in potential:
        missing.append("real deadlock L199/L200")
    others = [s for s in potential if not s <= {"L191", "L192", "L193", "L194", "L195", "L199", "L200"}]
    if others:
        missing.append(f"unexpected cycles: {others[:3]}")
    return missing


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--regenerate", action="store_true")
    ap.add_argument("--run", nargs=2, metavar=("TRACE", "JSON"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run:
        measure(Path(args.run[0]), Path(args.run[1]))
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    trace = OUT / f"synthetic-{args.events}-v{GEN_VERSION}.jsonl"
    if args.regenerate or not trace.exists():
        t = time.perf_counter()
        generate(trace, args.events)
        print(f"generated {trace} ({trace.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
    json_out = OUT / "findings.json"
    load_before = os.getloadavg()[0]
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--run", str(trace), str(json_out)])
    elapsed = time.perf_counter() - t
    if proc.returncode:
        print("analysis failed")
        return 1
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    rss = usage.ru_maxrss * 1024
    cpu = usage.ru_utime + usage.ru_stime
    doc = json.loads(json_out.read_text())
    n = doc["trace"]["events"]
    eps = n / elapsed
    print(f"events: {n:,}  time: {elapsed:.2f} s  throughput: {eps:,.0f} events/s  "
          f"peak RSS: {rss / 1024**2:,.0f} MB  findings: {len(doc['findings'])}")
    # CPU seconds say how much work was done; wall time also says how busy the shared machine was
    print(f"cpu: {cpu:.1f} s ({cpu / elapsed:.2f} cores busy on average)  "
          f"load average before: {load_before:.2f}")
    print("phases (s):", phases(doc.get("timings", {})))
    missing = check(doc)
    for m in missing:
        print(f"MISSED: {m}")
    ok = not missing and eps >= TARGET_EPS and rss <= TARGET_RSS
    print("all planted bugs found" if not missing else "planted bugs missed",
          "| targets met" if eps >= TARGET_EPS and rss <= TARGET_RSS else
          f"| target missed (>= {TARGET_EPS:,} events/s, <= {TARGET_RSS / 1024**3:.0f} GB)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
