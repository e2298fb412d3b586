"""Instructions per thread started and ended, counted by callgrind.

A thread per request (``ThreadingHTTPServer``, ``socketserver.ThreadingMixIn``) pays
what recording costs a thread's life on every request: its state, its start, its
binding, its end.  This starts threads one after the other (each ends before the
next starts, as a server's short requests do), each taking ``locks`` lock pairs
(a ``Lock`` and an ``RLock``, the handler's and logging's), and prints the
instructions per thread for bare, full and summary mode, from runs of two sizes
(start-up and exit cancel out).  No timed drains (the flush interval is an hour):
the writer still takes the events when its buffers fill, and at the end, so every
event's own cost is counted, but not a drain per quarter second that callgrind's
slow-down would multiply.

    python benchmarks/thread_instructions.py [--threads 1000 4000] [--locks 0 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROGRAM = r"""
import os, sys, threading, _thread
sys.path.insert(0, {root!r})
n, locks = int(sys.argv[1]), int(sys.argv[2])
if os.environ.get("LOCKSCOPE_OUT"):
    import recorder
    recorder.start(os.environ["LOCKSCOPE_OUT"], mode=os.environ["LOCKSCOPE_MODE"],
                   flush_interval=3600)
lock, rlock = threading.Lock(), threading.RLock()
done = _thread.allocate_lock()  # (untraced: the handshake is not what is measured)

def work():
    for _ in range(locks):
        with lock:
            pass
        with rlock:
            pass
    done.release()

for _ in range(n):
    done.acquire()
    threading.Thread(target=work, daemon=True).start()
    done.acquire()
    done.release()
"""


def instructions(mode: str, n: int, locks: int) -> int:
    env = dict(os.environ)
    for k in ("LOCKSCOPE_OUT", "LOCKSCOPE_MODE"):
        env.pop(k, None)
    env["PYTHONHASHSEED"] = "0"
    with tempfile.TemporaryDirectory(prefix="lockscope-threads-") as d:
        if mode != "bare":
            env["LOCKSCOPE_OUT"], env["LOCKSCOPE_MODE"] = d, mode
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
             "-c", PROGRAM.format(root=str(ROOT)), str(n), str(locks)],
            env=env, capture_output=True, text=True, check=True)
    m = re.search(r"refs:\s+([\d,]+)", proc.stderr)
    if m is None:
        raise SystemExit("callgrind printed no instruction count")
    return int(m.group(1).replace(",", ""))


def per_thread(mode: str, sizes: list[int], locks: int) -> float:
    lo, hi = sizes
    return (instructions(mode, hi, locks) - instructions(mode, lo, locks)) / (hi - lo)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs=2, default=[1000, 4000],
                    help="the two run sizes (threads)")
    ap.add_argument("--locks", type=int, nargs="+", default=[0, 2],
                    help="lock pairs (a Lock and an RLock each) every thread takes")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    print(f"instructions per thread, callgrind, runs of {args.threads[0]} and "
          f"{args.threads[1]} threads (python {sys.version.split()[0]}):")
    for locks in args.locks:
        bare = per_thread("bare", args.threads, locks)
        cells = [f"bare {bare / 1e3:6.1f}k"]
        for mode in ("full", "summary"):
            traced = per_thread(mode, args.threads, locks)
            cells.append(f"{mode} {traced / 1e3:6.1f}k (+{(traced - bare) / 1e3:.1f}k)")
        print(f"  {locks} lock pair(s) a thread:  " + "   ".join(cells), flush=True)


if __name__ == "__main__":
    main()
