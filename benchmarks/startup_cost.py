"""What ``LOCKSCOPE_OUT`` costs a Python process at start-up.

Run: ``python benchmarks/startup_cost.py [-n RUNS] [--python PATH]``.  Starts the
interpreter (by default the one running this script, which must have lockscope
installed) ``RUNS`` times for each program below, alternating a run without and a
run with ``LOCKSCOPE_OUT`` set, and prints the median wall time of each, their
difference and ratio, in wall time and in CPU time (user + system, steadier on a
loaded machine):

* ``-c pass``: the cost every Python process that inherits the variable pays
  (target: at most 5 ms over plain Python);
* ``-c "import threading"``: a program that uses threads, where recording starts.

Also prints, steadier on a loaded machine, the time ``python -X importtime`` gives
for ``import threading`` (where recording starts; the median of the runs), whether the
recorder's bytecode was cached (without ``.pyc`` files, e.g. under
``PYTHONDONTWRITEBYTECODE=1`` in a source checkout, every run compiles the recorder:
``python -m compileall recorder`` caches it, as ``pip install`` does), and the modules
imported at start-up with the variable set that plain Python does not import.  The
machine may be shared: runs alternate and figures are medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

try:
    import resource
except ImportError:  # Windows: wall time only
    resource = None

PROGRAMS = {
    "-c pass": ["-c", "pass"],
    "-c 'import threading'": ["-c", "import threading"],
}
SHOW_MODULES = "import sys; print(' '.join(sorted(sys.modules)))"
# Every run starts in an empty folder: ``-c`` puts the working directory first on
# sys.path, where a checkout's ``recorder`` would shadow the one --python has installed.
RUN_DIR: str | None = None  # set by main()
BYTECODE_CACHED = ("import importlib.util, os, recorder; "
                   "print(os.path.exists(importlib.util.cache_from_source(recorder.__file__)))")


def children_cpu() -> float:
    if resource is None:
        return float("nan")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(python: str, args: list[str], env: dict) -> tuple[float, float]:
    """Wall time and CPU time (user + system) in ms of one interpreter run."""
    cpu0, t0 = children_cpu(), time.perf_counter_ns()
    subprocess.run([python, *args], env=env, check=True, timeout=60, cwd=RUN_DIR,
                   stdout=subprocess.DEVNULL)
    return (time.perf_counter_ns() - t0) / 1e6, (children_cpu() - cpu0) * 1e3


def import_threading_ms(python: str, env: dict) -> float:
    """``import threading``'s cumulative time in ms as ``python -X importtime`` reports it."""
    err = subprocess.run([python, "-X", "importtime", "-c", "import threading"], env=env,
                         cwd=RUN_DIR, check=True, timeout=60, capture_output=True,
                         text=True).stderr
    for line in err.splitlines():
        fields = line.split("|")
        if len(fields) == 3 and fields[2].strip() == "threading" \
                and not fields[2].startswith("  "):
            return int(fields[1]) / 1000
    return float("nan")


def environments(out_dir: str) -> tuple[dict, dict]:
    plain = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSCOPE_")}
    return plain, dict(plain, LOCKSCOPE_OUT=out_dir)


def extra_modules(python: str, plain: dict, traced: dict) -> list[str]:
    def modules(env: dict) -> set[str]:
        out = subprocess.run([python, "-c", SHOW_MODULES], env=env, check=True, timeout=60,
                             cwd=RUN_DIR,
                             capture_output=True, text=True).stdout
        return set(out.split())

    return sorted(modules(traced) - modules(plain))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=40, help="runs of each kind (default 40)")
    ap.add_argument("--python", default=sys.executable, help="interpreter to measure")
    args = ap.parse_args()
    global RUN_DIR
    with tempfile.TemporaryDirectory(prefix="lockscope-startup-") as out_dir, \
            tempfile.TemporaryDirectory(prefix="lockscope-startup-cwd-") as RUN_DIR:
        plain, traced = environments(out_dir)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        version = subprocess.run([args.python, "-c", "import sys; print(sys.version.split()[0])"],
                                 env=plain, capture_output=True, text=True, timeout=60).stdout.strip()
        print(f"lockscope start-up cost  (python {version}, {os.cpu_count()} cpus, load {load:.1f}, "
              f"median of {args.runs} alternating runs each)")
        for label, prog in PROGRAMS.items():
            for env in (plain, traced):  # warm the file system caches
                run_once(args.python, prog, env)
            bare, rec = [], []
            for _ in range(args.runs):
                bare.append(run_once(args.python, prog, plain))
                rec.append(run_once(args.python, prog, traced))
            print(f"  {label}")
            for i, what in enumerate(("wall", "CPU ")):
                b = statistics.median(x[i] for x in bare)
                r = statistics.median(x[i] for x in rec)
                print(f"    {what}  without {b:6.1f} ms   with LOCKSCOPE_OUT {r:6.1f} ms   "
                      f"{r - b:+6.1f} ms   {r / b:4.2f}x")
        bare_imp, rec_imp = [], []
        for _ in range(args.runs):
            bare_imp.append(import_threading_ms(args.python, plain))
            rec_imp.append(import_threading_ms(args.python, traced))
        b, r = statistics.median(bare_imp), statistics.median(rec_imp)
        print(f"  import threading (-X importtime, median of {args.runs})\n"
              f"          without {b:6.1f} ms   with LOCKSCOPE_OUT {r:6.1f} ms   {r - b:+6.1f} ms")
        cached = subprocess.run([args.python, "-c", BYTECODE_CACHED], env=plain, timeout=60,
                                cwd=RUN_DIR,
                                capture_output=True, text=True).stdout.strip()
        print(f"  recorder bytecode cached (.pyc): {cached or 'unknown'}")
        extra = extra_modules(args.python, plain, traced)
        print(f"  modules at start-up with LOCKSCOPE_OUT, not without: {' '.join(extra) or 'none'}")


if __name__ == "__main__":
    main()
