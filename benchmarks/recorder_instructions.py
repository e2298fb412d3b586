"""Instructions per ``with lock:`` / ``async with lock:`` pair, counted by callgrind.

Wall and CPU times on a shared machine move with its load; instruction counts do
not.  This runs small programs under ``valgrind --tool=callgrind`` (if installed)
with 0 and N pairs, and prints the instructions per pair for bare, traced (the C
accelerator) and traced in pure Python (LOCKSCOPE_PURE_PYTHON=1), with ratios.
The writer is kept out (its flush interval is an hour; the buffer is dropped
unwritten): this is the cost inline in the thread that takes the lock.

    python benchmarks/recorder_instructions.py [--pairs 50000]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROGRAM = r"""
import asyncio, os, sys, tempfile, threading
sys.path.insert(0, {root!r})
import recorder
mode, kind, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode != "bare":
    recorder.start(tempfile.mkdtemp(), flush_interval=3600, max_buffer_events=10**8)
if kind == "threading":
    lock = threading.Lock()
    def run():
        for _ in range(n):
            with lock:
                pass
    run()
else:
    async def main():
        lock = asyncio.Lock()
        for _ in range(n):
            async with lock:
                pass
    asyncio.run(main())
if mode != "bare":
    for st in list(recorder._core.states):
        if st._buf is not None:
            st._buf.clear()
    recorder.stop()
"""


def instructions(mode: str, kind: str, n: int) -> int:
    env = dict(os.environ)
    if mode == "pure":
        env["LOCKSCOPE_PURE_PYTHON"] = "1"
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         "-c", PROGRAM.format(root=str(ROOT)), mode, kind, str(n)],
        env=env, capture_output=True, text=True, check=True)
    m = re.search(r"refs:\s+([\d,]+)", proc.stderr)
    if m is None:
        raise SystemExit("callgrind printed no instruction count")
    return int(m.group(1).replace(",", ""))


def per_pair(mode: str, kind: str, n: int) -> float:
    return (instructions(mode, kind, n) - instructions(mode, kind, 0)) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=50_000)
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    from recorder import _core
    if _core.speedups is None:
        print("note: the C accelerator is not built here; 'traced' is pure Python too")
    print(f"instructions per pair, callgrind, {args.pairs} pairs "
          f"(python {sys.version.split()[0]}):")
    for kind, what in (("threading", "with threading.Lock()"), ("asyncio", "async with asyncio.Lock()")):
        bare = per_pair("bare", kind, args.pairs)
        traced = per_pair("traced", kind, args.pairs)
        pure = per_pair("pure", kind, args.pairs)
        print(f"  {what:26s} bare {bare:7.0f}   traced {traced:7.0f} ({traced / bare:.2f}x, "
              f"+{traced - bare:.0f})   pure Python {pure:7.0f} ({pure / bare:.2f}x, "
              f"+{pure - bare:.0f})")


if __name__ == "__main__":
    main()
