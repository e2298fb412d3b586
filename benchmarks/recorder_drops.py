"""Events lost by the recorder at default settings, on workloads that produce events
faster than one writer thread may drain them.

``python benchmarks/recorder_drops.py`` runs each workload in its own process
(``--scenario NAME`` runs one) and prints, per workload, the events that reached the
trace, the events dropped and the lost share:

* ``busy128`` — 128 threads, each doing 10,000 ``with lock:`` around a small dict
  update on one of 16 shared locks;
* ``cpu3`` — 3 threads, each doing 300,000 ``with lock: pass`` back to back;
* ``lone_after_burst`` — 600 threads start and finish (a few lock operations each),
  then one thread does 5,000 ``with lock: pass`` (10,000 events) while the writer
  sleeps (``flush_interval`` 3600 s, so only the buffer decides what is kept).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import recorder  # noqa: E402


def _count(files: list[str]) -> tuple[int, int]:
    events = dropped = 0
    for path in files:
        with open(path, "rb") as fh:
            for line in fh:
                if line.startswith(b'{"k":"ev"'):
                    events += 1
                elif line.startswith(b'{"k":"dropped"'):
                    dropped += json.loads(line)["count"]
    return events, dropped


def _run_threads(n: int, target, *args) -> None:
    threads = [threading.Thread(target=target, args=(k, *args)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def busy128(out: str) -> dict:
    recorder.start(out)
    locks = [threading.Lock() for _ in range(16)]
    shared: dict = {}

    def work(k: int) -> None:
        lock = locks[k % 16]
        for i in range(10_000):
            with lock:
                shared[k] = i

    t0 = time.perf_counter()
    _run_threads(128, work)
    return {"seconds": time.perf_counter() - t0, "files": recorder.stop()}


def cpu3(out: str) -> dict:
    recorder.start(out)
    locks = [threading.Lock() for _ in range(3)]

    def work(k: int) -> None:
        lock = locks[k]
        for _ in range(300_000):
            with lock:
                pass

    t0 = time.perf_counter()
    _run_threads(3, work)
    return {"seconds": time.perf_counter() - t0, "files": recorder.stop()}


def lone_after_burst(out: str) -> dict:
    recorder.start(out, flush_interval=3600)
    lock = threading.Lock()

    def short(k: int) -> None:
        with lock:
            pass

    _run_threads(600, short)
    recorder.flush()  # the burst's events are written; the buffers are empty again

    def lone(k: int) -> None:
        for _ in range(5_000):
            with lock:
                pass

    t0 = time.perf_counter()
    _run_threads(1, lone)
    return {"seconds": time.perf_counter() - t0, "files": recorder.stop()}


SCENARIOS = {"busy128": busy128, "cpu3": cpu3, "lone_after_burst": lone_after_burst}


def run_one(name: str) -> dict:
    with tempfile.TemporaryDirectory() as out:
        res = SCENARIOS[name](out)
        events, dropped = _count(res["files"])
    return {"scenario": name, "seconds": round(res["seconds"], 2), "events": events,
            "dropped": dropped, "lost_pct": round(100 * dropped / max(1, events + dropped), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", choices=sorted(SCENARIOS))
    args = ap.parse_args()
    if args.scenario:
        print(json.dumps(run_one(args.scenario)))
        return
    print(f"recorder drops at default settings (python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f})")
    for name in SCENARIOS:
        proc = subprocess.run([sys.executable, __file__, "--scenario", name],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode:
            print(f"  {name:18} failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(proc.stdout)
        print(f"  {name:18} {r['events']:>9} events written, {r['dropped']:>9} dropped "
              f"({r['lost_pct']:.1f} % lost) in {r['seconds']:.2f} s")


if __name__ == "__main__":
    main()
