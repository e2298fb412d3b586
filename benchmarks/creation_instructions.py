"""Instructions per primitive creation (``threading.Lock()``, ``self.lock = Lock()``,
``Condition()``, ``queue.Queue()``, ``ThreadPoolExecutor.submit``'s Future), counted by
callgrind, bare and traced.

Creation happens once per object, not per operation, but programs that make an
object per request (a Future per job, a Queue per call) pay it each time.  Every
creation here is at a site already seen (the per-site caches are warm): this is the
steady cost.  ``--root`` compares another checkout of the recorder (its
``recorder/`` must be importable from there: a built C accelerator in place).

    python benchmarks/creation_instructions.py [--n 20000] [--root PATH]
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
import concurrent.futures, queue, sys, tempfile, threading
sys.path.insert(0, {root!r})
import recorder
mode, kind, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode != "bare":
    recorder.start(tempfile.mkdtemp(), flush_interval=3600, max_buffer_events=10**8)
class Account:
    def __init__(self):
        self.lock = threading.Lock()
def make_lock():
    lock = threading.Lock()
make = {{"lock": make_lock, "attr": Account, "condition": threading.Condition,
        "queue": queue.Queue, "future": concurrent.futures.Future}}[kind]
make()  # the site is seen once before counting
for _ in range(n):
    make()
if mode != "bare":
    for st in list(recorder._core.states):
        if st._buf is not None:
            st._buf.clear()
    recorder.stop()
"""

KINDS = {"lock": "lock = threading.Lock()", "attr": "self.lock = threading.Lock()",
         "condition": "threading.Condition()", "queue": "queue.Queue()",
         "future": "concurrent.futures.Future()"}


def instructions(root: Path, mode: str, kind: str, n: int) -> int:
    env = dict(os.environ)
    if mode == "pure":
        env["LOCKSCOPE_PURE_PYTHON"] = "1"
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         "-c", PROGRAM.format(root=str(root)), mode, kind, str(n)],
        env=env, capture_output=True, text=True, check=True, timeout=1800)
    m = re.search(r"refs:\s+([\d,]+)", proc.stderr)
    if m is None:
        raise SystemExit("callgrind printed no instruction count")
    return int(m.group(1).replace(",", ""))


def per_creation(root: Path, mode: str, kind: str, n: int) -> float:
    return (instructions(root, mode, kind, n) - instructions(root, mode, kind, 0)) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--root", type=Path, default=ROOT, help="the checkout whose recorder is measured")
    ap.add_argument("--kinds", default=",".join(KINDS))
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    print(f"instructions per creation, callgrind, {args.n} creations "
          f"(python {sys.version.split()[0]}, recorder from {args.root}):")
    for kind in args.kinds.split(","):
        bare = per_creation(args.root, "bare", kind, args.n)
        traced = per_creation(args.root, "traced", kind, args.n)
        print(f"  {KINDS[kind]:30s} bare {bare:8.0f}   traced {traced:8.0f} ({traced / bare:.1f}x)")


if __name__ == "__main__":
    main()
