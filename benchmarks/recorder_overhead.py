"""How much the recorder costs the program it observes.

Run: ``python benchmarks/recorder_overhead.py [--quick]``.  Prints, from one run:

* micro: median ns per ``with lock: pass`` for a bare ``threading.Lock``, a traced
  lock, and a traced lock recording stacks (``stacks=8``), with ratios; plus the
  one-off cost of a call site seen for the first time;
* macro: 8 threads doing real work (JSON encode/decode, dict updates) at about
  20k lock operations per second, wall time with and without the recorder;
* sink: events per second the writer serialises and appends, and a sustained run
  (threads hammering locks with default settings) with its drop count.

The machine may be shared and noisy: bare and traced runs alternate, round after
round, and the figures are medians (ratios are medians of per-round ratios).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from time import perf_counter_ns, thread_time_ns

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import recorder  # noqa: E402
from recorder import _core  # noqa: E402

BareLock = threading.Lock  # the original: captured before any recording starts


def median(xs: list[float]) -> float:
    return statistics.median(xs)


# ----------------------------------------------------------------- micro

def ns_per_pair(lock, n: int) -> float:
    # CPU time of this thread: time spent descheduled on a busy machine is not ours.
    t0 = thread_time_ns()
    for _ in range(n):
        with lock:
            pass
    return (thread_time_ns() - t0) / n


def _pair_in_function(lock) -> None:
    with lock:
        pass


def ns_per_call_pair(lock, n: int) -> float:
    """``with lock:`` inside a function called each time: the usual shape in real code,
    where the recorder's sys._getframe materialises a new frame object per call."""
    f = _pair_in_function
    t0 = thread_time_ns()
    for _ in range(n):
        f(lock)
    return (thread_time_ns() - t0) / n


def ns_per_empty_loop(n: int) -> float:
    t0 = thread_time_ns()
    for _ in range(n):
        pass
    return (thread_time_ns() - t0) / n


def micro(out: str, rounds: int, n: int) -> dict:
    """Alternate bare / traced / traced-with-stacks, ``rounds`` times ``n`` pairs each.

    The writer is kept out of the timed loops (long flush interval, a flush after
    each): this is the cost paid inline by the thread that takes the lock; what
    the writer costs is measured by sink_throughput()."""
    bare = BareLock()
    res: dict[str, list[float]] = {"bare": [], "traced": [], "stacks": [], "loop": [],
                                   "bare_call": [], "traced_call": []}
    for _ in range(rounds):
        res["loop"].append(ns_per_empty_loop(n))
        res["bare"].append(ns_per_pair(bare, n))
        res["bare_call"].append(ns_per_call_pair(bare, n))
        for key, stacks in (("traced", 0), ("stacks", 8)):
            recorder.start(out, stacks=stacks, flush_interval=3600)
            lock = threading.Lock()
            ns_per_pair(lock, 10)  # the site is new once per run: intern it first
            ns_per_call_pair(lock, 10)
            recorder._sink.flush()
            res[key].append(ns_per_pair(lock, n))
            if not stacks:
                recorder._sink.flush()
                res["traced_call"].append(ns_per_call_pair(lock, n))
            recorder.stop()
    return {
        "loop_ns": median(res["loop"]),
        "bare_ns": median(res["bare"]),
        "traced_ns": median(res["traced"]),
        "stacks_ns": median(res["stacks"]),
        "traced_ratio": median([t / b for t, b in zip(res["traced"], res["bare"], strict=True)]),
        "stacks_ratio": median([t / b for t, b in zip(res["stacks"], res["bare"], strict=True)]),
        "bare_call_ns": median(res["bare_call"]),
        "traced_call_ns": median(res["traced_call"]),
        "call_ratio": median([t / b for t, b in zip(res["traced_call"], res["bare_call"],
                                                    strict=True)]),
    }


def new_site_cost(out: str, n_sites: int = 300) -> dict:
    """One-off cost of the first acquire at a call site never seen, with and without stacks."""
    src = "def run(lock):\n" + "".join("    with lock:\n        pass\n" for _ in range(n_sites))
    costs = {}
    for stacks in (0, 8):
        recorder.start(out, stacks=stacks, flush_interval=3600)
        ns = {}
        exec(compile(src, f"<generated sites {stacks}>", "exec"), ns)  # fresh code: new sites
        lock = threading.Lock()
        t0 = perf_counter_ns()
        ns["run"](lock)
        first = (perf_counter_ns() - t0) / n_sites
        t0 = perf_counter_ns()
        ns["run"](lock)
        again = (perf_counter_ns() - t0) / n_sites
        recorder.stop()
        costs[stacks] = first - again
    return {"new_site_ns": costs[0], "new_site_stacks_ns": costs[8]}


# ----------------------------------------------------------------- macro

def make_payload(size: int) -> dict:
    return {"user": "someone@example.com", "items": [
        {"id": i, "name": f"item-{i}", "price": i * 1.25, "tags": ["a", "b", "c"]}
        for i in range(size)]}


def work_iteration(payload: dict, lock, shared: dict, i: int) -> None:
    doc = json.loads(json.dumps(payload))
    key = doc["items"][i % len(doc["items"])]["name"]
    with lock:
        shared[key] = shared.get(key, 0) + 1


def calibrate(target_ops_per_s: float) -> int:
    """Payload size for which one iteration takes 1/target seconds of CPU (the GIL
    serialises the 8 threads, so that gives about ``target`` lock operations/s when
    the process has a core to itself)."""
    lock, shared = BareLock(), {}
    size = 8
    for _ in range(12):
        payload = make_payload(size)
        n = 200
        t0 = time.thread_time()
        for i in range(n):
            work_iteration(payload, lock, shared, i)
        per_iter = (time.thread_time() - t0) / n
        want = 1 / target_ops_per_s
        if abs(per_iter - want) / want < 0.1:
            break
        size = max(1, round(size * want / per_iter))
    return size


def run_workload(size: int, iters_per_thread: int, n_threads: int = 8) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) for ``n_threads`` threads of
    ``iters_per_thread`` iterations each.  The CPU time includes the recorder's writer.
    Locks and threads are created inside, so a traced run traces them."""
    payload = make_payload(size)
    locks = [threading.Lock() for _ in range(4)]
    shared: dict = {}
    go = threading.Event()

    def worker(k: int) -> None:
        go.wait()
        lock = locks[k % len(locks)]
        for i in range(iters_per_thread):
            work_iteration(payload, lock, shared, i)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    t0, c0 = time.perf_counter(), time.process_time()
    go.set()
    for t in threads:
        t.join()
    if recorder.is_recording():
        recorder._sink.flush()  # the writer's work for this run counts
    return time.perf_counter() - t0, time.process_time() - c0


def macro(out: str, rounds: int, seconds: float) -> dict:
    size = calibrate(20_000)
    iters = max(50, round(20_000 * seconds / 8))
    run_workload(size, iters // 10)  # warm up
    bare, traced, bare_cpu, traced_cpu = [], [], [], []
    dropped = 0
    for _ in range(rounds):
        wall, cpu = run_workload(size, iters)
        bare.append(wall)
        bare_cpu.append(cpu)
        recorder.start(out)  # default settings: the writer flushes as in production
        wall, cpu = run_workload(size, iters)
        traced.append(wall)
        traced_cpu.append(cpu)
        files = recorder.stop()
        dropped += count_dropped(files)
    ops = 8 * iters
    return {
        "payload_items": size,
        "ops": ops,
        "bare_s": median(bare),
        "traced_s": median(traced),
        "bare_cpu_s": median(bare_cpu),
        "traced_cpu_s": median(traced_cpu),
        "bare_ops_per_s": ops / median(bare),
        "overhead_pct": 100 * (median([t / b for t, b in zip(traced, bare, strict=True)]) - 1),
        "cpu_overhead_pct": 100 * (median([t / b for t, b in
                                           zip(traced_cpu, bare_cpu, strict=True)]) - 1),
        "cpu_overhead_of_medians_pct": 100 * (median(traced_cpu) / median(bare_cpu) - 1),
        "wall_overhead_of_medians_pct": 100 * (median(traced) / median(bare) - 1),
        # Noise on a shared machine only ever adds time: the fastest rounds are the
        # least disturbed ones.
        "cpu_overhead_of_min_pct": 100 * (min(traced_cpu) / min(bare_cpu) - 1),
        "dropped": dropped,
    }


def count_dropped(files: list[str]) -> int:
    total = 0
    for path in files:
        with open(path, "rb") as fh:
            for line in fh:
                if line.startswith(b'{"k":"dropped"'):
                    total += json.loads(line)["count"]
    return total


# ------------------------------------------------------------------ sink

def sink_throughput(out: str, n_events: int) -> dict:
    """Events per second the writer turns into JSON lines and appends to the file."""
    recorder.start(out, flush_interval=3600, max_buffer_events=n_events * 2)
    sink = recorder._sink
    _core.set_waker(None)  # no early wake: this thread drains everything below
    locks = [threading.Lock() for _ in range(8)]
    for i in range(n_events // 2):
        with locks[i & 7]:
            pass
    buffered = sum(len(st._buf or ()) for st in _core.states)
    t0 = thread_time_ns()  # flush() runs here, in this thread
    sink.flush()
    drain_s = (thread_time_ns() - t0) / 1e9
    recorder.stop()
    return {"drain_events_per_s": buffered / drain_s, "ns_per_event": drain_s * 1e9 / buffered}


def paced_run(out: str, rate: float, seconds: float, n_threads: int = 4) -> tuple[float, int]:
    """``n_threads`` threads produce lock events at ``rate`` events/s in total for
    ``seconds``, with default recorder settings.  Returns (events/s that reached the
    file, events dropped)."""
    recorder.start(out)
    locks = [threading.Lock() for _ in range(n_threads)]
    burst = 50  # pairs: 100 events
    period = 2 * burst * n_threads / rate  # seconds per burst for each thread
    t_end = time.perf_counter() + seconds

    def produce(lock) -> None:
        next_t = time.perf_counter()
        while next_t < t_end:
            for _ in range(burst):
                with lock:
                    pass
            next_t += period
            delay = next_t - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    threads = [threading.Thread(target=produce, args=(lk,)) for lk in locks]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    files = recorder.stop()
    events = 0
    for path in files:
        with open(path, "rb") as fh:
            events += sum(1 for line in fh if line.startswith(b'{"k":"ev","ts"'))
    return events / elapsed, count_dropped(files)


def sustained(out: str, seconds: float) -> dict:
    """The highest event rate (doubling from 25k/s) that the sink takes without a drop."""
    best, rate, first_drop, producers_maxed = 0.0, 25_000.0, None, False
    while rate <= 3_200_000:
        achieved, dropped = paced_run(out, rate, seconds)
        if dropped:
            first_drop = (rate, achieved, dropped)
            break
        best = achieved
        if achieved < 0.8 * rate:  # the producers cannot go faster on this machine
            producers_maxed = True
            break
        rate *= 2
    return {"sustained_events_per_s": best, "first_drop": first_drop,
            "producers_maxed": producers_maxed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds (a smoke test)")
    args = ap.parse_args()
    rounds, n, macro_rounds, macro_s = (5, 5_000, 3, 0.3) if args.quick else (25, 20_000, 9, 1.0)
    with tempfile.TemporaryDirectory() as out:
        m = micro(out, rounds, n)
        s = new_site_cost(out)
        mac = macro(out, macro_rounds, macro_s)
        sink = sink_throughput(out, 200_000 if not args.quick else 20_000)
        sus = sustained(out, 1.5 if not args.quick else 0.5)
    print(f"lockscope recorder overhead  (python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f})")
    print(f"micro, thread CPU time, median of {rounds} interleaved rounds of {n} "
          "`with lock: pass`:")
    print(f"  empty loop iteration       {m['loop_ns']:8.0f} ns   (included in the figures below)")
    print(f"  bare threading.Lock pair   {m['bare_ns']:8.0f} ns")
    print(f"  traced Lock pair           {m['traced_ns']:8.0f} ns   {m['traced_ratio']:.1f}x bare")
    print(f"  traced Lock pair, stacks=8 {m['stacks_ns']:8.0f} ns   {m['stacks_ratio']:.1f}x bare")
    print(f"  same, inside a called function: bare {m['bare_call_ns']:.0f} ns, traced "
          f"{m['traced_call_ns']:.0f} ns ({m['call_ratio']:.1f}x; includes the call)")
    print(f"  first use of a new site    {s['new_site_ns']:8.0f} ns once"
          f"   ({s['new_site_stacks_ns']:.0f} ns with stacks=8)")
    print(f"macro, 8 threads, JSON encode/decode + dict updates ({mac['payload_items']} items), "
          f"{mac['ops']} lock operations, median of {macro_rounds} interleaved rounds:")
    print(f"  bare   {mac['bare_s'] * 1000:8.1f} ms wall, {mac['bare_cpu_s'] * 1000:8.1f} ms CPU"
          f"  ({mac['bare_ops_per_s']:.0f} lock ops/s)")
    print(f"  traced {mac['traced_s'] * 1000:8.1f} ms wall, {mac['traced_cpu_s'] * 1000:8.1f} ms CPU")
    print(f"  overhead, median of per-round ratios: CPU {mac['cpu_overhead_pct']:+.1f} %, "
          f"wall {mac['overhead_pct']:+.1f} %  (dropped events: {mac['dropped']})")
    print(f"  overhead, ratio of medians:           CPU {mac['cpu_overhead_of_medians_pct']:+.1f} %,"
          f" wall {mac['wall_overhead_of_medians_pct']:+.1f} %")
    print(f"  overhead, ratio of fastest rounds:    CPU {mac['cpu_overhead_of_min_pct']:+.1f} %")
    per_op = (m["traced_call_ns"] - m["bare_call_ns"]) + 2 * sink["ns_per_event"]
    print(f"  cost model: {per_op / 1000:.1f} us CPU per lock operation (hot path inside a "
          f"function + 2 events written) = {per_op * 20_000 / 1e7:.1f} % of a core "
          "at 20k lock ops/s")
    print("sink:")
    print(f"  writer drains              {sink['drain_events_per_s']:10.0f} events/s "
          f"(serialise + append, thread CPU: {sink['ns_per_event']:.0f} ns per event)")
    print(f"  sustained without drops    {sus['sustained_events_per_s']:10.0f} events/s "
          "(4 threads paced, default settings"
          + ("; the producers' own limit)" if sus["producers_maxed"] else ")"))
    if sus["first_drop"]:
        rate, achieved, dropped = sus["first_drop"]
        print(f"  first drops at a target of {rate:.0f} events/s ({achieved:.0f}/s written, "
              f"{dropped} dropped)")


if __name__ == "__main__":
    main()
