"""Cost of recording one ``async with lock:`` pair (asyncio.Lock, uncontended).

Untraced and traced rounds alternate in one process and one event loop (so machine
noise hits both alike); each figure is a median over the rounds::

    python benchmarks/recorder_overhead_asyncio.py [--rounds 15] [--pairs 20000] [--json]

Two rows, both with the recorder's default writer running (flushing every 0.25 s):

* ``wall``: elapsed time per pair, the real cost to the program — it includes the
  writer thread's CPU, which under the GIL is taken from the program;
* ``loop thread CPU``: CPU time of the event loop's thread only (what recording adds
  on the hot path itself, without the writer and without time stolen by other jobs).
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


async def _pairs(lock: asyncio.Lock, n: int) -> tuple[float, float]:
    w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
    for _ in range(n):
        async with lock:
            pass
    return (time.perf_counter_ns() - w0) / n, (time.thread_time_ns() - c0) / n


async def _bench(rounds: int, pairs: int) -> list[dict]:
    plain = _aio_sync._OrigLock()
    traced = _aio_sync.Lock()  # made while recording: traced
    samples: dict[str, list[tuple[float, float]]] = {"untraced": [], "traced": []}
    await _pairs(plain, pairs // 10)  # warm up both paths
    await _pairs(traced, pairs // 10)
    for _ in range(rounds):
        samples["untraced"].append(await _pairs(plain, pairs))
        samples["traced"].append(await _pairs(traced, pairs))
    rows = []
    for i, label in ((0, "wall"), (1, "loop thread CPU")):
        u = statistics.median(s[i] for s in samples["untraced"])
        t = statistics.median(s[i] for s in samples["traced"])
        rows.append({"row": f"asyncio.Lock async with ({label})", "untraced_ns": round(u, 1),
                     "traced_ns": round(t, 1), "extra_ns": round(t - u, 1),
                     "rounds": rounds, "pairs_per_round": pairs})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--pairs", type=int, default=20000)
    ap.add_argument("--json", action="store_true", help="print one JSON object per row")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        # Default writer settings; a buffer large enough that nothing is dropped.
        recorder.start(out, max_buffer_events=50_000_000)
        try:
            rows = asyncio.run(_bench(args.rounds, args.pairs))
        finally:
            recorder.stop()
    for r in rows:
        if args.json:
            print(json.dumps(r))
        else:
            print(f"{r['row']}: untraced {r['untraced_ns']:.0f} ns/pair, "
                  f"traced {r['traced_ns']:.0f} ns/pair, extra {r['extra_ns']:.0f} ns/pair "
                  f"(median of {args.rounds} rounds)")


if __name__ == "__main__":
    main()
