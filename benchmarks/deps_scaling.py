"""Cost of the dependency step on the two trace shapes that made it quadratic.

* **hand-off**: a `threading.Lock` used as a signal between two threads, N times:
  the producer waits for it and acquires it (and then takes a state lock), the
  consumer releases it. Holds paired per actor never close here: each of the
  producer's later requests is made "holding" all the earlier ones. Timed for N = 10k and
  100k: the cost must grow like N (ratio about 10), not N² (100).
* **long holds**, shaped like a concurrent.futures test run: worker threads take a
  few locks at their start and keep them for the whole run (an executor's
  locks, a test's fixture), and a lock handed off to the main thread on each
  batch, while hundreds of thousands of other acquires happen in the same
  threads: every work item has its own lock (a future's condition) and each of
  its requests nests a shared queue lock inside it. Targets: <= 10 s and <= 1.5 GB
  peak RSS for >= 300k events.

Traces are generated (cached under benchmarks/out/), each analysis runs in a child
process (JSON output); printed: wall time, the dependency step's time, peak RSS
of that child, and the size of the `deps` table.

    python benchmarks/deps_scaling.py [--shape handoff|long-holds|all] [--regenerate]

Exit status 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson

OUT = Path(__file__).resolve().parent / "out"
GEN_VERSION = 2
HANDOFF_NS = (10_000, 100_000)
HANDOFF_MAX_RATIO = 20          # linear: about 10; quadratic: about 100
LONG_HOLD_WORKERS = 4
LONG_HOLD_KEPT = 3              # locks each worker keeps for the whole run
LONG_HOLD_ITEMS = 20_000        # work items per worker (2 requests, 4 lock events each)
LONG_HOLD_BATCH = 100           # items per batch (one hand-off of the batch lock to the main thread)
LONG_HOLD_TARGET_S = 10.0
LONG_HOLD_TARGET_RSS = 1.5 * 1024**3


class _Writer:
    """Just enough of a trace writer: ids, sites, 1 µs per event."""

    def __init__(self, run: str) -> None:
        self.lines: list[bytes] = []
        self.ts = 1_000
        self.next_id = 1
        self.sites: dict[int, int] = {}
        self.put({"k": "header", "format": "lockscope-trace", "version": 1, "run": run, "part": 0, "pid": 1,
                  "host": "bench", "runtime": "synthetic", "argv": [run], "cwd": "/srv", "clock": "monotonic",
                  "mono_ns": 0, "wall_ns": 1_795_640_400_000_000_000, "settings": {}})
        self.main = self.thread("MainThread", None)

    def put(self, rec: dict) -> None:
        self.lines.append(orjson.dumps(rec))

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def site(self, line: int) -> int:
        if line not in self.sites:
            self.sites[line] = self.new_id()
            self.put({"k": "site", "id": self.sites[line], "file": "/srv/app.py", "line": line, "func": "work"})
        return self.sites[line]

    def thread(self, name: str, parent: int | None) -> int:
        tid = self.new_id()
        self.put({"k": "thread", "id": tid, "name": name, "parent": parent, "ts": self.ts})
        if parent is not None:
            self.ev(parent, tid, "start", 1)
        return tid

    def lock(self, name: str, line: int) -> int:
        lid = self.new_id()
        self.put({"k": "lock", "id": lid, "type": "threading.Lock", "name": name, "reentrant": False,
                  "site": self.site(line), "ts": self.ts, "th": self.main})
        return lid

    def ev(self, th: int, obj: int, op: str, line: int | None = None) -> None:
        self.ts += 1_000
        rec = {"k": "ev", "ts": self.ts, "th": th, "obj": obj, "op": op}
        if line is not None:
            rec["site"] = self.site(line)
        self.put(rec)

    def write(self, path: Path) -> None:
        self.put({"k": "end", "ts": self.ts + 1, "reason": "exit"})
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(b"\n".join(self.lines) + b"\n")
        tmp.rename(path)


def handoff(path: Path, n: int) -> None:
    """A Lock acquired n times by `producer` and released each time by `consumer`;
    after each acquire the producer updates a state under another lock (so the
    held sets are not empty: with one lock only, DuckDB proves from column
    statistics that no dependency can exist and skips the join)."""
    w = _Writer(f"handoff-{n}")
    producer, consumer = w.thread("producer", w.main), w.thread("consumer", w.main)
    signal, state = w.lock("signal", 10), w.lock("state", 11)
    for i in range(n):
        if i:
            w.ev(producer, signal, "wait", 20)
        w.ev(producer, signal, "acquire", 20)
        w.ev(producer, state, "acquire", 21)
        w.ev(producer, state, "release")
        w.ev(consumer, signal, "release")
    w.write(path)


def long_holds(path: Path) -> None:
    """Workers that keep a few locks all along while doing many small nested sections."""
    w = _Writer("long-holds")
    queue_lock = w.lock("queue.mutex", 11)
    batch_lock = w.lock("batch", 12)
    workers = [w.thread(f"worker-{i}", w.main) for i in range(LONG_HOLD_WORKERS)]
    for i, th in enumerate(workers):
        for j in range(LONG_HOLD_KEPT):
            w.ev(th, w.lock(f"kept-{i}-{j}", 13 + j), "acquire", 30 + j)
    for item in range(LONG_HOLD_ITEMS):
        for th in workers:
            if item % LONG_HOLD_BATCH == 0:   # taken by the worker, released by the main thread
                w.ev(th, batch_lock, "acquire", 40)
                w.ev(w.main, batch_lock, "release")
            future = w.lock("future._condition", 20)
            w.ev(th, future, "acquire", 41)
            w.ev(th, queue_lock, "acquire", 42)
            w.ev(th, queue_lock, "release")
            w.ev(th, future, "release")
    w.write(path)


def measure(trace: Path, json_out: Path) -> None:
    """Child process: analyze `trace`, write the findings JSON plus the size of `deps`."""
    from analyzer.analysis import analyze
    from analyzer.report import json as json_report

    sizes = {}

    def count(doc, con) -> None:
        sizes["deps"] = con.execute("SELECT count(*) FROM deps").fetchone()[0]
        sizes["held"] = con.execute("SELECT coalesce(sum(len(held)), 0) FROM deps").fetchone()[0]

    doc = analyze([trace], fail_on="never", on_result=count)
    doc["bench"] = sizes
    json_report.write(doc, json_out)


def run_child(trace: Path) -> tuple[float, float, dict]:
    """(wall seconds, peak RSS bytes, findings document) of one analysis in a child process."""
    json_out = trace.with_suffix(".findings.json")
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--run", str(trace), str(json_out)])
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(f"analysis of {trace} failed (exit {proc.returncode})")
    return elapsed, usage.ru_maxrss * 1024, json.loads(json_out.read_text())


def report(label: str, elapsed: float, rss: float, doc: dict) -> None:
    t = doc["timings"]
    print(f"{label}: {doc['trace']['events']:,} events  time {elapsed:.2f} s  "
          f"(derive {t.get('derive_s', 0):.2f} s, of which deps {t.get('derive:deps_s', 0):.2f} s)  "
          f"peak RSS {rss / 1024**2:,.0f} MB  deps {doc['bench']['deps']:,} rows, "
          f"{doc['bench']['held']:,} held entries")


def trace_path(shape: str, n: int, regenerate: bool) -> Path:
    """The cached trace of `shape`, generated in a child process when missing (the
    analysis child must not inherit the generator's peak RSS: Linux keeps a
    process's high-water mark across fork and exec)."""
    path = OUT / (f"deps-handoff-{n}-v{GEN_VERSION}.jsonl" if shape == "handoff" else
                  f"deps-long-holds-v{GEN_VERSION}.jsonl")
    if regenerate or not path.exists():
        subprocess.run([sys.executable, __file__, "--generate", shape, str(n), str(path)], check=True)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=("handoff", "long-holds", "all"), default="all")
    ap.add_argument("--regenerate", action="store_true")
    ap.add_argument("--run", nargs=2, metavar=("TRACE", "JSON"), help=argparse.SUPPRESS)
    ap.add_argument("--generate", nargs=3, metavar=("SHAPE", "N", "TRACE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run:
        measure(Path(args.run[0]), Path(args.run[1]))
        return 0
    if args.generate:
        shape, n, path = args.generate
        handoff(Path(path), int(n)) if shape == "handoff" else long_holds(Path(path))
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    ok = True
    if args.shape in ("handoff", "all"):
        times = {}
        for n in HANDOFF_NS:
            trace = trace_path("handoff", n, args.regenerate)
            elapsed, rss, doc = run_child(trace)
            report(f"hand-off N={n:,}", elapsed, rss, doc)
            times[n] = doc["timings"]["derive:deps_s"], elapsed
        (d0, e0), (d1, e1) = times[HANDOFF_NS[0]], times[HANDOFF_NS[1]]
        ratio = e1 / e0
        print(f"hand-off: N x{HANDOFF_NS[1] // HANDOFF_NS[0]} -> time x{ratio:.1f} (deps step x{d1 / max(d0, 1e-3):.1f})"
              + ("" if ratio <= HANDOFF_MAX_RATIO else f"  TARGET MISSED (<= x{HANDOFF_MAX_RATIO})"))
        ok &= ratio <= HANDOFF_MAX_RATIO
    if args.shape in ("long-holds", "all"):
        trace = trace_path("long-holds", 0, args.regenerate)
        elapsed, rss, doc = run_child(trace)
        report("long holds", elapsed, rss, doc)
        met = elapsed <= LONG_HOLD_TARGET_S and rss <= LONG_HOLD_TARGET_RSS
        print("long holds: " + ("targets met" if met else
                                f"TARGET MISSED (<= {LONG_HOLD_TARGET_S:.0f} s, <= {LONG_HOLD_TARGET_RSS / 1024**3} GB)"))
        ok &= met
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
