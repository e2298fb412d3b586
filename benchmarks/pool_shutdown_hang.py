"""How often CPython's ProcessPoolExecutor shutdown deadlock (gh-125451) hangs, with and
without recording.

CPython's ``test_concurrent_futures.test_deadlock...test_shutdown_deadlock_pickle``
hangs now and then on 3.12.0-3.12.7 and 3.13.0: the executor's manager thread holds
the executor's ``_shutdown_lock`` while it joins the queue feeder thread, and the feeder
thread, handling the task that could not be pickled, waits for that lock
(``_SafeQueue._on_queue_feeder_error``).  Fixed upstream in 3.12.8 and 3.13.1.

This script runs that test's steps (a pool of 2 workers; a task; a task that fails to
pickle; ``shutdown(wait=False)``; the future's result; the manager thread joined) over
and over, ``--per-process`` times in each child process, alternating a child without
and a child with ``LOCKSCOPE_OUT`` set, until each mode has done ``-n`` iterations.  A
child that makes no progress for ``--hang-after`` seconds is hung: faulthandler prints
its threads (kept with ``--keep-hangs DIR``), it exits, and what is left of its session
is killed.  ``--cpython-fix`` applies gh-125451's fix in the children first.  Prints
the iterations and hangs of each mode::

    python benchmarks/pool_shutdown_hang.py --python .venv313/bin/python -n 300
    python benchmarks/pool_shutdown_hang.py --python .venv313/bin/python -n 300 --cpython-fix
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import shutil
import signal
import subprocess
import sys
import tempfile


class ErrorAtPickle:
    """A task argument that cannot be pickled (as in CPython's test)."""

    def __reduce__(self):  # noqa: ANN204
        from pickle import PicklingError

        raise PicklingError("Error in pickle")


def apply_cpython_fix() -> None:
    """gh-125451's fix: the wakeup pipe gets its own lock and the feeder thread no
    longer takes the executor's shutdown lock."""
    import threading
    from concurrent.futures import process

    wakeup = process._ThreadWakeup
    init = wakeup.__init__

    def __init__(self):  # noqa: ANN001, ANN202
        init(self)
        self._lock = threading.Lock()

    def close(self):  # noqa: ANN001, ANN202
        with self._lock:
            if not self._closed:
                self._closed = True
                self._writer.close()
                self._reader.close()

    def wake(self):  # noqa: ANN001, ANN202
        with self._lock:
            if not self._closed:
                self._writer.send_bytes(b"")

    wakeup.__init__, wakeup.close, wakeup.wakeup = __init__, close, wake

    def _on_queue_feeder_error(self, e, obj):  # noqa: ANN001, ANN202
        if not isinstance(obj, process._CallItem):
            return super(process._SafeQueue, self)._on_queue_feeder_error(e, obj)
        tb = process.format_exception(type(e), e, e.__traceback__)
        e.__cause__ = process._RemoteTraceback('\n"""\n{}"""'.format("".join(tb)))
        work_item = self.pending_work_items.pop(obj.work_id, None)
        self.thread_wakeup.wakeup()
        if work_item is not None:
            work_item.future.set_exception(e)

    process._SafeQueue._on_queue_feeder_error = _on_queue_feeder_error


def child(iterations: int, hang_after: float, method: str) -> None:
    """The test's steps ``iterations`` times; prints a line after each."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from pickle import PicklingError

    ctx = mp.get_context(method)
    for i in range(iterations):
        faulthandler.dump_traceback_later(hang_after, exit=True)
        with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as executor:
            executor.submit(id, 42).result()
            manager = executor._executor_manager_thread
            future = executor.submit(id, ErrorAtPickle())
            executor.shutdown(wait=False)
            try:
                future.result()
            except PicklingError:
                pass
        manager.join()
        print(i + 1, flush=True)
    faulthandler.cancel_dump_traceback_later()


def session_members(sid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[3]) == sid:
                    pids.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return pids


def run_child(args: argparse.Namespace, record: bool, count: int, work: str) -> tuple[int, bool]:
    """(iterations done, hung) of one child."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSCOPE_")}
    traces = os.path.join(work, "traces")
    shutil.rmtree(traces, ignore_errors=True)
    if record:
        env["LOCKSCOPE_OUT"] = traces
    cmd = [args.python, os.path.abspath(__file__), "--child", str(count),
           "--hang-after", str(args.hang_after), "--method", args.method]
    if args.cpython_fix:
        cmd.append("--cpython-fix")
    out_path, err_path = os.path.join(work, "out"), os.path.join(work, "err")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        # Files, not pipes: a hung worker process would keep a pipe open.
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, start_new_session=True)
        try:
            proc.wait(timeout=count * 60 + args.hang_after + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pid in session_members(proc.pid):  # the pool's workers and forkserver, if left
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    with open(out_path) as f:
        done = sum(1 for line in f if line.strip().isdigit())
    with open(err_path) as f:
        errors = f.read()
    hung = "Timeout (" in errors
    if hung and args.keep_hangs:
        os.makedirs(args.keep_hangs, exist_ok=True)
        name = f"{'rec' if record else 'off'}-{os.getpid()}-{len(os.listdir(args.keep_hangs))}"
        with open(os.path.join(args.keep_hangs, name + ".txt"), "w") as f:
            f.write(errors)
    elif proc.returncode != 0:
        sys.stderr.write(f"child failed ({proc.returncode}): {errors[-2000:]}\n")
    return done + hung, hung


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=sys.executable, help="interpreter (lockscope installed)")
    ap.add_argument("-n", type=int, default=300, help="iterations per mode (default 300)")
    ap.add_argument("--per-process", type=int, default=50, help="iterations per child")
    ap.add_argument("--hang-after", type=float, default=10.0, help="seconds (default 10)")
    ap.add_argument("--method", default="forkserver", help="multiprocessing start method")
    ap.add_argument("--cpython-fix", action="store_true", help="apply gh-125451's fix first")
    ap.add_argument("--keep-hangs", metavar="DIR", help="keep the hung children's stacks")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        if args.cpython_fix:
            apply_cpython_fix()
        child(args.child, args.hang_after, args.method)
        return
    stats = {False: [0, 0], True: [0, 0]}  # record -> [iterations, hangs]
    with tempfile.TemporaryDirectory(prefix="lockscope-pool-hang-") as work:
        while min(done for done, _ in stats.values()) < args.n:
            for record, (done, _) in stats.items():
                if done < args.n:
                    n, hung = run_child(args, record, min(args.per_process, args.n - done), work)
                    stats[record][0] += n
                    stats[record][1] += hung
    for record, (done, hangs) in stats.items():
        print(f"{'with' if record else 'without'} recording: {hangs} hangs in {done} iterations"
              f" ({100 * hangs / max(done, 1):.1f} %)")


if __name__ == "__main__":
    main()
