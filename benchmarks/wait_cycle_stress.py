"""Stress trace for the wait-cycle rule.

An asyncio program at its worst for that rule: 200 tasks on one loop wait on
100 events while holding one of 50 locks, and signal random events while holding
random locks, so that nearly every (lock, event) pair forms a wait cycle through
many code paths. Generates the trace (cached under benchmarks/out/), runs the
analysis with only the wait-cycle rule, and prints the time and the number of
findings.

    python benchmarks/wait_cycle_stress.py [--events 1000000] [--regenerate]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import orjson

OUT = Path(__file__).resolve().parent / "out"
TASKS, EVENTS, LOCKS = 200, 100, 50
SITES = 1  # distinct code lines for each of acquire / wait / signal
GEN_VERSION = 2


def generate(path: Path, n_events: int, seed: int = 4) -> None:
    rnd = random.Random(seed)
    lines = [{"k": "header", "format": "lockscope-trace", "version": 1, "run": "stress", "part": 0, "pid": 1,
              "host": "bench", "runtime": "synthetic", "argv": ["stress"], "cwd": "/srv", "clock": "monotonic",
              "mono_ns": 0, "wall_ns": 1_795_640_400_000_000_000, "settings": {}},
             {"k": "thread", "id": 1, "name": "MainThread", "parent": None, "ts": 1}]
    for s in range(1, 3 * SITES + 1):
        lines.append({"k": "site", "id": s, "file": "/srv/stress.py", "line": s, "func": "work"})
    lock0, res0, task0 = 100, 200, 1000
    for i in range(LOCKS):
        lines.append({"k": "lock", "id": lock0 + i, "type": "asyncio.Lock", "name": f"L{i}", "reentrant": False,
                      "site": 1, "ts": 2, "th": 1})
    for i in range(EVENTS):
        lines.append({"k": "resource", "id": res0 + i, "type": "asyncio.Event", "name": f"E{i}", "site": 1,
                      "ts": 3, "th": 1})
    for i in range(TASKS):
        lines.append({"k": "task", "id": task0 + i, "name": f"worker-{i}", "parent": None, "th": 1, "loop": 1,
                      "site": 1, "ts": 4})
    ts = 1000
    n = 0
    out = [orjson.dumps(r) for r in lines]
    while n < n_events:
        task = task0 + rnd.randrange(TASKS)
        lock = lock0 + rnd.randrange(LOCKS)
        res = res0 + rnd.randrange(EVENTS)
        ops = [("acquire", lock, 1 + rnd.randrange(SITES), None)]
        if rnd.random() < 0.5:
            ops += [("wait-begin", res, SITES + 1 + rnd.randrange(SITES), None), ("wait-end", res, None, "ok")]
        else:
            ops += [("signal", res, 2 * SITES + 1 + rnd.randrange(SITES), "set")]
        ops.append(("release", lock, None, None))
        for op, obj, site, extra in ops:
            ts += 1000
            ev = {"k": "ev", "ts": ts, "th": 1, "task": task, "obj": obj, "op": op}
            if site is not None:
                ev["site"] = site
            if op == "wait-end":
                ev["outcome"] = extra
            elif op == "signal":
                ev["sig"] = extra
            out.append(orjson.dumps(ev))
            n += 1
    out.append(orjson.dumps({"k": "end", "ts": ts + 1, "reason": "exit"}))
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(b"\n".join(out) + b"\n")
    tmp.rename(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--regenerate", action="store_true")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    trace = OUT / f"wait-cycle-stress-{args.events}-v{GEN_VERSION}.jsonl"
    if args.regenerate or not trace.exists():
        generate(trace, args.events)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from analyzer.analysis import analyze

    t = time.perf_counter()
    doc = analyze([trace], rules=["wait-cycle"], fail_on="never")
    elapsed = time.perf_counter() - t
    kinds = [f for f in doc["findings"] if f["kind"] == "wait-cycle"]
    print(f"events: {doc['trace']['events']:,}  time: {elapsed:.2f} s  wait-cycle findings: {len(kinds)}  "
          f"(of which critical: {sum(f['severity'] == 'critical' for f in kinds)})")
    print("phases:", ", ".join(f"{k} {v:.2f}" for k, v in doc.get("timings", {}).items() if v >= 0.01))
    return 0


if __name__ == "__main__":
    sys.exit(main())
