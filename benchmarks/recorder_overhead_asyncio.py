"""Cost of recording one ``async with lock:`` pair (asyncio.Lock, uncontended).

Runs untraced and traced rounds interleaved in one process (so machine noise hits
both alike) and prints the median nanoseconds per pair of each and the difference,
once with the background writer running (the real cost) and once with it idle
(the part paid on the event loop's thread)::

    python benchmarks/recorder_overhead_asyncio.py [--rounds 15] [--pairs 20000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import recorder  # noqa: E402
from recorder import _aio_sync  # noqa: E402


async def _pairs(lock: asyncio.Lock, n: int) -> int:
    t0 = time.perf_counter_ns()
    for _ in range(n):
        async with lock:
            pass
    return time.perf_counter_ns() - t0


async def _bench(rounds: int, pairs: int, row: str) -> dict:
    plain = _aio_sync._OrigLock()
    traced = _aio_sync.Lock()  # made while recording: traced
    untraced_ns, traced_ns = [], []
    await _pairs(plain, pairs // 10)  # warm up both paths
    await _pairs(traced, pairs // 10)
    for _ in range(rounds):
        untraced_ns.append(await _pairs(plain, pairs) / pairs)
        traced_ns.append(await _pairs(traced, pairs) / pairs)
    u, t = statistics.median(untraced_ns), statistics.median(traced_ns)
    return {"row": row, "untraced_ns": round(u, 1), "traced_ns": round(t, 1),
            "extra_ns": round(t - u, 1), "rounds": rounds, "pairs_per_round": pairs}


def _measure(rounds: int, pairs: int, flush_interval: float, row: str) -> dict:
    with tempfile.TemporaryDirectory() as out:
        # A large buffer: nothing is dropped.
        recorder.start(out, flush_interval=flush_interval, max_buffer_events=50_000_000)
        try:
            return asyncio.run(_bench(rounds, pairs, row))
        finally:
            recorder.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--pairs", type=int, default=20000)
    ap.add_argument("--json", action="store_true", help="print one JSON object per row")
    args = ap.parse_args()
    rows = [
        # The honest figure: the background writer runs and competes for the GIL.
        _measure(args.rounds, args.pairs, 0.1, "asyncio.Lock async with"),
        # The part paid on the loop thread itself (writer idle until stop).
        _measure(args.rounds, args.pairs, 3600.0,
                 "asyncio.Lock async with (loop thread only, writer idle)"),
    ]
    for result in rows:
        if args.json:
            print(json.dumps(result))
        else:
            print(f"{result['row']}: untraced {result['untraced_ns']:.0f} ns/pair, "
                  f"traced {result['traced_ns']:.0f} ns/pair, "
                  f"extra {result['extra_ns']:.0f} ns/pair (median of {args.rounds} rounds)")


if __name__ == "__main__":
    main()
