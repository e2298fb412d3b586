"""The program behaves as without recording, at the level of the process: signals
and exit status under ``lockscope run``, fork, exit paths, thread lifetimes,
interrupted waits, the primitives' visible surface and bad options.

Each test runs the program in a subprocess (with a timeout), often once with and
once without recording, and compares."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from lockscope_tracecheck import Trace
from test_recorder_process import child_env, lockscope_cmd, traces, write

TIMEOUT = 60


def run_script(path: Path, cwd: Path, *, out: Path | None = None,
               python: str = sys.executable, **env: str) -> subprocess.CompletedProcess:
    """Run ``path`` with ``python``, recording into ``out`` (started in the script's
    own process, like the env-var hook) when given."""
    if out is not None:
        args = [python, "-c", _RECORDED_PRELUDE.format(out=str(out), path=str(path))]
    else:
        args = [python, str(path)]
    return subprocess.run(args, cwd=cwd, env=child_env(**env), capture_output=True,
                          text=True, timeout=TIMEOUT)


# Starts the recorder, then runs the script as __main__ (as ``python -m recorder`` does).
_RECORDED_PRELUDE = """\
import runpy, sys
import recorder
recorder.start({out!r}, flush_interval=0.05)
sys.argv = [{path!r}]
runpy.run_path({path!r}, run_name="__main__")
"""


def complete(trace: Trace) -> bool:
    return bool(trace.records) and trace.records[-1]["k"] == "end"


# ------------------------------------------------------------- lockscope run

def _interrupt(cmd: list[str], cwd: Path) -> tuple[int, str, str]:
    """Start ``cmd``, wait for its "ready" line, send SIGINT to it, return its exit
    status and its output."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=child_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("ready"), (first, proc.stderr.read() if proc.poll() else "")
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        return proc.returncode, first + out, err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_ctrl_c_reaches_the_program_under_lockscope_run(tmp_path):
    write(tmp_path / "hang.py", """
        import signal, threading, time
        print("ready", signal.getsignal(signal.SIGINT) is signal.default_int_handler,
              flush=True)
        lock = threading.Lock()
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:  # "hung": only Ctrl-C ends it early
            with lock:
                time.sleep(0.01)
        print("never interrupted")
    """)
    plain = _interrupt([sys.executable, "hang.py"], tmp_path)
    out = tmp_path / "out"
    recorded = _interrupt([*lockscope_cmd(), "run", "--out", str(out), "hang.py"], tmp_path)
    assert plain[0] == -signal.SIGINT  # Python re-kills itself with SIGINT
    assert plain[1] == "ready True\n" and "KeyboardInterrupt" in plain[2]
    assert recorded[0] == plain[0], recorded
    assert recorded[1] == plain[1]
    assert "KeyboardInterrupt" in recorded[2] and "lockscope" not in recorded[2]
    (trace,) = traces(out)
    assert complete(trace)
    assert trace.header["argv"] == ["hang.py"]


def test_lockscope_run_exit_status_equals_plain_python(tmp_path):
    write(tmp_path / "code.py", "import sys\nsys.exit(int(sys.argv[1]))\n")
    write(tmp_path / "kill.py", "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n")
    for args in (["code.py", "0"], ["code.py", "5"], ["code.py", "255"], ["kill.py"]):
        plain = subprocess.run([sys.executable, *args], cwd=tmp_path, env=child_env(),
                               capture_output=True, timeout=TIMEOUT)
        recorded = subprocess.run([*lockscope_cmd(), "run", "--out", str(tmp_path / "o"),
                                   *args], cwd=tmp_path, env=child_env(),
                                  capture_output=True, timeout=TIMEOUT)
        assert recorded.returncode == plain.returncode, (args, recorded.stderr)


# ------------------------------------------------------- thread lifetimes

_FREED_AT_ONCE = """
import gc, threading, weakref, sys
if {record}:
    import recorder
    recorder.start({out!r}, flush_interval=30)  # the writer will not drain meanwhile
seen = weakref.WeakKeyDictionary()
refs = []
for i in range(5):
    t = threading.Thread(target=lambda: threading.Lock().acquire(), name=f"worker-{{i}}")
    t.start()
    t.join()
    seen[t] = i
    refs.append(weakref.ref(t))
del t
gc.collect()
print(len(seen), sum(r() is not None for r in refs))
if {record}:
    recorder.flush()
"""


def test_finished_threads_are_freed_at_once(tmp_path):
    results = {}
    for record in (False, True):
        out = tmp_path / "traces"
        res = subprocess.run([sys.executable, "-c", _FREED_AT_ONCE.format(record=record,
                                                                          out=str(out))],
                             cwd=tmp_path, env=child_env(), capture_output=True, text=True,
                             timeout=TIMEOUT)
        assert res.returncode == 0, res.stderr
        results[record] = res.stdout
    assert results[False] == "0 0\n"
    assert results[True] == results[False]
    # The thread records still carry what the Thread said, once it is gone.
    (trace,) = traces(tmp_path / "traces")
    workers = sorted((t["name"], t["daemon"], t["ident"] is not None, t["native_id"] is not None)
                     for t in trace.objects("thread") if t["name"].startswith("worker-"))
    assert workers == [(f"worker-{i}", False, True, True) for i in range(5)]


# ------------------------------------------------------------------- fork

_FORK_FROM_THREAD = """
import os, sys, threading, time
if {record}:
    import recorder
    recorder.start({out!r}, flush_interval=0.05)
with threading.Lock():
    pass
result = {{}}

def forker():
    pid = os.fork()
    if pid == 0:
        # the child: only this thread; it records, then its thread simply returns
        tasks = len(os.listdir("/proc/self/task"))
        lock = threading.Lock()
        for _ in range(3):
            with lock:
                pass
        print("child", tasks, flush=True)
        return
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            result["child"] = os.waitstatus_to_exitcode(status)
            return
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    result["child"] = "hung"

t = threading.Thread(target=forker)
t.start()
t.join(30)
print("parent", result, flush=True)
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs os.fork and /proc")
def test_fork_from_a_thread_child_exits_when_its_thread_ends(tmp_path):
    outputs = {}
    for record in (False, True):
        res = subprocess.run([sys.executable, "-c", _FORK_FROM_THREAD.format(
            record=record, out=str(tmp_path / "traces"))], cwd=tmp_path, env=child_env(),
            capture_output=True, text=True, timeout=TIMEOUT)
        assert res.returncode == 0 and res.stderr == "", res.stderr
        outputs[record] = sorted(res.stdout.splitlines())
    # exits at once with status 0, and had no thread of ours until it recorded
    assert outputs[False] == ["child 1", "parent {'child': 0}"]
    assert outputs[True] == outputs[False]
    runs = {t.header["parent_run"] is None: t for t in traces(tmp_path / "traces")}
    child, parent = runs[False], runs[True]
    assert child.header["parent_run"] == parent.header["run"]
    assert complete(child) and complete(parent)
    line = [n for n, text in enumerate(_FORK_FROM_THREAD.splitlines(), 1)
            if "lock = threading.Lock()" in text]
    (made,) = [lk for lk in child.objects("lock") if lk.get("site")
               and child.site(lk)[1] in line]
    assert len(child.evs(made["id"], op="acquire")) == 3


_FORK_COUNTS_THREADS = """
import os, sys, threading, time, warnings
warnings.simplefilter("default")
at_fork = []
# (registered first: runs before the recorder's own after-fork hook)
os.register_at_fork(after_in_parent=lambda: at_fork.append(
    len(os.listdir("/proc/self/task"))))
if {record}:
    import recorder
    recorder.start({out!r}, flush_interval=0.05)
with threading.Lock():
    pass
time.sleep(0.1)
before = len(os.listdir("/proc/self/task"))
for _ in range(5):
    pid = os.fork()
    if pid == 0:
        with threading.Lock():
            pass
        os._exit(0)
    os.waitpid(pid, 0)
time.sleep(0.1)
print(before, at_fork, len(os.listdir("/proc/self/task")))
"""


def _pythons_with_orjson() -> list[str]:
    """This interpreter, and python3.12 / python3.13 where found with orjson
    importable (on PATH, in LOCKSCOPE_TEST_PYTHONS, or a .venv3.1x* beside the repo)."""
    import glob
    import shutil

    from lockscope_tracecheck import ROOT

    found = [sys.executable]
    candidates = [p for p in os.environ.get("LOCKSCOPE_TEST_PYTHONS", "").split(os.pathsep) if p]
    candidates += [shutil.which(n) or "" for n in ("python3.12", "python3.13")]
    candidates += sorted(glob.glob(str(ROOT / ".venv3.1[2-9]*" / "bin" / "python")))
    for exe in candidates:
        if not exe or exe in found:
            continue
        try:
            ok = subprocess.run([exe, "-c", "import sys, orjson; assert sys.version_info >= (3, 12)"],
                                capture_output=True, timeout=TIMEOUT).returncode == 0
        except OSError:
            ok = False
        if ok:
            found.append(exe)
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs os.fork and /proc")
@pytest.mark.parametrize("python", _pythons_with_orjson(),
                         ids=lambda p: "this" if p == sys.executable else p)
def test_fork_of_a_threadless_program_sees_one_thread_and_no_warning(tmp_path, python):
    """The writer stops around fork(): at the fork the program is single-threaded (so
    3.12+ prints no multi-threaded-fork DeprecationWarning), and it runs again after."""
    outputs = {}
    for record in (False, True):
        res = subprocess.run([python, "-c", _FORK_COUNTS_THREADS.format(
            record=record, out=str(tmp_path / "traces"))], cwd=tmp_path,
            env=child_env(LOCKSCOPE_PURE_PYTHON="" if python == sys.executable else "1"),
            capture_output=True, text=True, timeout=TIMEOUT)
        assert res.returncode == 0, res.stderr
        assert res.stderr == ""  # no DeprecationWarning
        outputs[record] = res.stdout.split(" ", 1)
    assert outputs[False] == ["1", "[1, 1, 1, 1, 1] 1\n"]
    assert outputs[True] == ["2", "[1, 1, 1, 1, 1] 2\n"]  # ours, running before and after
    runs = traces(tmp_path / "traces")
    assert len(runs) == 6 and all(complete(t) for t in runs)


# --------------------------------------------------------- multiprocessing

def _wait_complete(out: Path, deadline_s: float = 20) -> list[Path]:
    """The trace files in ``out`` once each ends with an ``end`` record (helper
    processes such as the resource tracker finish just after the program)."""
    import time

    deadline = time.monotonic() + deadline_s
    while True:
        files = sorted(out.glob("*.jsonl"))
        done = [f for f in files if f.read_bytes().rstrip().rsplit(b"\n", 1)[-1]
                .startswith(b'{"k":"end"')]
        if len(done) == len(files) or time.monotonic() > deadline:
            return files
        time.sleep(0.05)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork and forkserver need POSIX")
@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_multiprocessing_children_leave_complete_traces_and_their_bug_is_found(
        tmp_path, method):
    import json
    import shutil

    from lockscope_tracecheck import ROOT

    shutil.copy(ROOT / "tests" / "recorder" / "mp_lock_order_app.py", tmp_path / "app.py")
    out = tmp_path / "traces"
    res = subprocess.run([*lockscope_cmd(), "run", "--out", str(out), "app.py", method],
                         cwd=tmp_path, env=child_env(), capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["pool", "executor", "exit", "codes", "0"]
    files = _wait_complete(out)
    for f in files:
        assert f.stat().st_size > 0, f"empty trace {f.name}"
    runs = traces(out)
    assert all(complete(t) for t in runs), [t.header["argv"] for t in runs if not complete(t)]
    # the program's own trace: the one no other process of the run started (pids wrap
    # around, so the lowest pid need not be the program's)
    pids = {t.header["pid"] for t in runs}
    main = [t for t in runs if t.header["ppid"] not in pids and t.header["argv"][1:] == [method]]
    assert len(main) == 1
    # the three workers (Process, Pool, ProcessPoolExecutor) each took both locks
    workers = {t.header["run"] for t in runs
               if [lk for lk in t.objects("lock") if lk.get("site")
                   and t.site(lk)[:2] == (str(tmp_path / "app.py"), 14)
                   and t.evs(lk["id"], op="acquire")]}
    assert len(workers) == 3 and main[0].header["run"] not in workers
    report = tmp_path / "findings.json"
    res = subprocess.run([*lockscope_cmd(), "analyze", str(out), "-q", "--json", str(report)],
                         cwd=tmp_path, env=child_env(), capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert "Traceback" not in res.stderr
    findings = json.loads(report.read_text())
    assert all(p["ended"] for p in findings["trace"]["processes"])
    found = {f["run"] for f in findings["findings"] if f["kind"] == "potential-deadlock"
             and sorted(lk["created_at"] for lk in f["locks"]) == ["app.py:14", "app.py:15"]}
    assert found == workers


# ---------------------------------------------------------------- options

_BAD_OPTION = """
import sys, threading
import recorder
rec = recorder.start({args})
with threading.Lock():
    pass
print(rec.active, recorder.is_recording(), flush=True)
"""


@pytest.mark.parametrize("args, setting", [
    ("123", None),                                  # out_dir not a path: the default folder
    ("'t', stacks='x'", ("stacks", 8)),
    ("'t', stacks=-2", ("stacks", 8)),
    ("'t', flush_interval=0", ("flush_interval", 0.01)),   # would spin: clamped
    ("'t', flush_interval=-1", ("flush_interval", 0.25)),
    ("'t', flush_interval=float('nan')", ("flush_interval", 0.25)),
    ("'t', flush_interval='fast'", ("flush_interval", 0.25)),
    ("'t', flush_interval=1e12", ("flush_interval", 3600.0)),
    ("'t', max_file_mb='big'", ("max_file_mb", 64.0)),
    ("'t', max_buffer_events=0", ("max_buffer_events", 1_000_000)),
    ("'t', max_total_mb=-5", ("max_total_mb", 512.0)),
    ("'t', min_free_mb='lots'", ("min_free_mb", None)),
])
def test_invalid_start_options_warn_once_and_fall_back(tmp_path, args, setting):
    res = subprocess.run([sys.executable, "-c", _BAD_OPTION.format(args=args)], cwd=tmp_path,
                         env=child_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "True True\n"
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("lockscope: "), res.stderr
    (trace,) = traces(tmp_path / ("lockscope-traces" if setting is None else "t"))
    assert complete(trace)
    if setting is not None:
        assert trace.header["settings"][setting[0]] == setting[1]


def test_zero_flush_interval_from_the_environment_is_clamped(tmp_path):
    import glob

    from test_recorder_process import sysconfig_purelib

    if not glob.glob(os.path.join(sysconfig_purelib(), "lockscope_startup.pth")):
        pytest.skip("lockscope is not installed into this interpreter's site-packages")
    res = subprocess.run([sys.executable, "-c", "import threading\n"
                          "with threading.Lock(): pass"],
                         cwd=tmp_path, env=child_env(LOCKSCOPE_OUT=str(tmp_path / "t"),
                                                     LOCKSCOPE_FLUSH_INTERVAL="0"),
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("lockscope: ") == 1 and "flush_interval" in res.stderr
    (trace,) = traces(tmp_path / "t")
    assert trace.header["settings"]["flush_interval"] == 0.01


# ------------------------------------------------------- interrupted waits

_INTERRUPTED = """
import os, queue, signal, sys, threading, time
if {record}:
    import recorder
    recorder.start({out!r}, flush_interval=0.05)
    label = recorder.name
else:
    def label(obj, name):
        return obj

class Interrupted(Exception):
    pass

def handler(signum, frame):
    raise Interrupted()

signal.signal(signal.SIGUSR1, handler)
MAIN = threading.get_ident()

def interrupt_when_blocked():
    # the main thread is blocked once its innermost frame sits on one instruction
    last, same = None, 0
    while same < 10:
        f = sys._current_frames().get(MAIN)
        key = (id(f), f.f_lasti) if f is not None else None
        same, last = (same + 1 if key == last else 0), key
        time.sleep(0.005)
    os.kill(os.getpid(), signal.SIGUSR1)

def case(name, block):
    t = threading.Thread(target=interrupt_when_blocked)
    t.start()
    try:
        block()
        print(name, "returned")
    except Interrupted:
        print(name, "interrupted")
    t.join()

release = threading.Event()
def hold(lock):
    def holder():
        with lock:
            release.wait()
    t = threading.Thread(target=holder, name="holder")
    t.start()
    while not (lock.locked() if hasattr(lock, "locked") else not lock._is_owned()):
        time.sleep(0.001)
    return t

lock = label(threading.Lock(), "lock")
lock.acquire()
case("lock", lock.acquire)
case("lock-timeout", lambda: lock.acquire(timeout=30))
lock.release()
rlock = label(threading.RLock(), "rlock")
holder = hold(rlock)
case("rlock", rlock.acquire)
sem = label(threading.Semaphore(0), "sem")
case("semaphore", sem.acquire)
cond = label(threading.Condition(), "cond")
def cond_wait():
    with cond:
        cond.wait()
case("condition", cond_wait)
event = label(threading.Event(), "event")
case("event", event.wait)
q = label(queue.Queue(), "queue")
case("queue", q.get)
case("join", holder.join)
release.set()
holder.join()
print("done")
"""


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX signals")
def test_waits_interrupted_by_an_exception_are_recorded_as_such(tmp_path):
    outputs = {}
    for record in (False, True):
        res = subprocess.run([sys.executable, "-c", _INTERRUPTED.format(
            record=record, out=str(tmp_path / "traces"))], cwd=tmp_path, env=child_env(),
            capture_output=True, text=True, timeout=TIMEOUT)
        assert res.returncode == 0, res.stderr
        outputs[record] = res.stdout
    cases = ["lock", "lock-timeout", "rlock", "semaphore", "condition", "event", "queue",
             "join"]
    assert outputs[False] == "".join(f"{c} interrupted\n" for c in cases) + "done\n"
    assert outputs[True] == outputs[False]
    (trace,) = traces(tmp_path / "traces")
    main = trace.evs(trace.one("lock", "lock")["id"])[0]["th"]

    def ops(obj_id):
        return [(e["op"], e.get("outcome"), e.get("error"))
                for e in trace.evs(obj_id, th=main) if e["op"] != "signal"]

    interrupted_wait = [("wait", None, None), ("cancel", None, "Interrupted")]
    assert ops(trace.one("lock", "lock")["id"]) == [
        ("acquire", None, None), *interrupted_wait, *interrupted_wait, ("release", None, None)]
    assert ops(trace.one("lock", "rlock")["id"]) == interrupted_wait
    assert ops(trace.one("lock", "sem")["id"]) == interrupted_wait
    interrupted_resource = [("wait-begin", None, None), ("wait-end", "error", "Interrupted")]
    assert ops(trace.one("resource", "cond")["id"]) == interrupted_resource
    assert ops(trace.one("resource", "event")["id"]) == interrupted_resource
    assert ops(trace.one("resource", "queue")["id"])[-2:] == interrupted_resource
    holder = trace.thread("holder")["id"]
    assert ops(holder)[-3:] == [*interrupted_resource, ("join", None, None)]


# ------------------------------------------------- the primitives' surface

_SURFACE = """
import threading, warnings
if {record}:
    import recorder
    recorder.start({out!r})

def outcome(f):
    try:
        return repr(f())
    except BaseException as exc:
        return f"{{type(exc).__name__}}: {{exc}}"

for make in (threading.Lock, threading.RLock):
    for args, kwargs in [(("yes",), {{}}), ((0,), {{}}), (("",), {{}}), ((None,), {{}}),
                         ((1.5,), {{}}), (([],), {{}}), ((1, 0.01), {{}}), ((False, 1), {{}}),
                         ((True, -2), {{}}), ((1, None), {{}}), ((), {{"timeout": "x"}}),
                         ((), {{"blocking": "yes"}}), ((True, 1e100), {{}})]:
        lock = make()
        def attempt():
            got = lock.acquire(*args, **kwargs)
            if got:
                lock.release()
            return got
        print("acquire", args, kwargs, outcome(attempt))
    held = make()
    held.acquire()
    print("held", outcome(lambda: held.acquire(False)), outcome(lambda: held.acquire(0)))
cond = threading.Condition()
with cond, warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    cond.notifyAll()
print("notifyAll", [(w.category.__name__, str(w.message)) for w in caught])
# notify and notify_all (in C while recording) fail as the originals do
with cond:
    for name, args, kwargs in [("notify", (1, 2), {{}}), ("notify", (), {{"x": 1}}),
                               ("notify", (1,), {{"n": 2}}), ("notify_all", (1,), {{}}),
                               ("notify_all", (), {{"n": 1}}), ("notify", (0,), {{}}),
                               ("notify", (), {{"n": 3}})]:
        print(name, args, kwargs, outcome(lambda: getattr(cond, name)(*args, **kwargs)))
print("unowned", outcome(cond.notify), outcome(cond.notify_all))
# arguments to RLock() are deprecated from 3.13 on: the warning names the caller's line
for args, kwargs in [((1,), {{}}), ((), {{"a": 1}})]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        made = outcome(lambda: type(threading.RLock(*args, **kwargs)).__name__)
    print("rlock args", made, [(w.category.__name__, str(w.message), w.filename) for w in caught])
for make in (threading.Lock, threading.RLock, threading.Condition, threading.Semaphore,
             threading.BoundedSemaphore):
    t = type(make())
    print("type", make.__name__, repr(t), t.__module__, t.__name__, t.__qualname__)
    print("new", make.__name__, outcome(lambda: type(t()).__name__))
# the lock type refuses subclasses (threading.Lock is that type from 3.13)
for base in (type(threading.Lock()), threading.Lock):
    print("subclass", outcome(lambda: type("MyLock", (base,), {{}}).__name__))
# pickled by reference (a multiprocessing Manager's registry holds threading.Lock)
import pickle
for obj in (threading.Lock, type(threading.Lock()), type(threading.RLock()),
            threading.Condition, threading.Semaphore, threading.BoundedSemaphore):
    print("pickle", obj.__name__, outcome(lambda: pickle.loads(pickle.dumps(obj))))
# what test.support.check__all__ sees as threading's own API
print("api", sorted(n for n, v in vars(threading).items() if not n.startswith("_")
                    and getattr(v, "__module__", None) in ("threading", "_thread")))
"""


@pytest.mark.parametrize("python", _pythons_with_orjson(),
                         ids=lambda p: "this" if p == sys.executable else p)
def test_primitives_behave_and_present_themselves_as_the_originals(tmp_path, python):
    outputs = {}
    for record in (False, True):
        res = subprocess.run([python, "-c", _SURFACE.format(record=record,
                                                             out=str(tmp_path / "t"))],
                             cwd=tmp_path, env=child_env(), capture_output=True, text=True,
                             timeout=TIMEOUT)
        assert res.returncode == 0 and res.stderr == "", res.stderr
        outputs[record] = res.stdout.splitlines()
    assert len(outputs[False]) == 2 * 14 + 1 + 7 + 1 + 2 + 10 + 2 + 6 + 1
    assert outputs[True] == outputs[False]
    assert [line for line in outputs[True] if "notifyAll" in line] == [
        "notifyAll [('DeprecationWarning', 'notifyAll() is deprecated, use notify_all() "
        "instead')]"]


_FORK_TWICE_FROM_A_THREAD = """
import os, threading, time
if {record}:
    import recorder
    recorder.start({out!r}, flush_interval=0.05)

def wait(pid):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return "hung"

def forker():
    pid = os.fork()
    if pid == 0:  # in the child this thread is threading's main thread, yet a Thread
        with threading.Lock():
            pass
        grandchild = os.fork()
        if grandchild == 0:
            with threading.Lock():
                pass
            return
        print("grandchild", wait(grandchild), flush=True)
        return
    print("child", wait(pid), flush=True)

t = threading.Thread(target=forker)
t.start()
t.join(60)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_again_from_a_forked_thread_child(tmp_path):
    outputs = {}
    for record in (False, True):
        res = subprocess.run([sys.executable, "-c", _FORK_TWICE_FROM_A_THREAD.format(
            record=record, out=str(tmp_path / "traces"))], cwd=tmp_path, env=child_env(),
            capture_output=True, text=True, timeout=TIMEOUT)
        assert res.returncode == 0 and res.stderr == "", res.stderr
        outputs[record] = res.stdout
    assert outputs[False] == "grandchild 0\nchild 0\n"
    assert outputs[True] == outputs[False]
    runs = traces(tmp_path / "traces")
    assert len(runs) == 3 and all(complete(t) for t in runs)


_KILLED_CHILD = """
import glob, os, signal, threading, time
import recorder
recorder.start({out!r}, flush_interval=30)  # no flush by the clock during this test
with threading.Lock():
    pass
pid = os.fork()
if pid == 0:
    with threading.Lock():
        pass
    time.sleep(60)
    os._exit(0)
deadline = time.monotonic() + 20
path = None
while time.monotonic() < deadline and path is None:
    for p in glob.glob(os.path.join({out!r}, f"*-{{pid}}-*.jsonl")):
        with open(p, "rb") as f:  # its header is written at once; wait for its events
            if b'"op":"acquire"' in f.read():
                path = p
    time.sleep(0.01)
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
print("written" if path else "empty")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_killed_early_leaves_no_empty_trace(tmp_path):
    out = tmp_path / "traces"
    res = subprocess.run([sys.executable, "-c", _KILLED_CHILD.format(out=str(out))],
                         cwd=tmp_path, env=child_env(), capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "written\n"
    child = {t.header["parent_run"] is None: t for t in traces(out)}[False]
    assert not complete(child)  # killed: no end record, but its header and first events
    assert child.evs(op="acquire")


_FIRST_EVENTS_AT_ONCE = """
import glob, os, signal, threading, time, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # (fork with the writer running)
import recorder
slow_start = recorder._ensure_writer

def ensure_writer_then_wait():
    # (a writer asked to drain as it starts drains before the event that started
    # it is buffered: the race a loaded machine lost, made certain)
    slow_start()
    time.sleep(0.3)

recorder._ensure_writer = ensure_writer_then_wait
recorder.start({out!r}, flush_interval=30)  # no flush by the clock during this test
with threading.Lock():
    pass
pid = os.fork()
if pid == 0:  # (a new file, opened by its first event, as a pool worker's)
    with threading.Lock():
        pass
    time.sleep(60)
    os._exit(0)
began = time.monotonic()
found = None
while time.monotonic() - began < 10 and found is None:
    for p in glob.glob(os.path.join({out!r}, f"*-{{pid}}-*.jsonl")):
        if b'"op":"acquire"' in open(p, "rb").read():
            found = time.monotonic() - began
    time.sleep(0.01)
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
print("not written" if found is None else f"written after {{found:.1f}} s")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("pure", [False, True])
def test_a_new_files_first_events_are_written_at_once(tmp_path, pure):
    """The writer of a new file writes its first events at once (a process killed
    early leaves them), not at the end of the flush interval: it is woken by the
    first event buffered, not when it starts, which let it drain before that event
    was in its buffer (on 3.13, under load, a forked child's first events waited
    30 s: test_forked_child_killed_early_leaves_no_empty_trace failed 4 times in 15)."""
    out = tmp_path / "traces"
    env = child_env(**({"LOCKSCOPE_PURE_PYTHON": "1"} if pure else {}))
    res = subprocess.run([sys.executable, "-c", _FIRST_EVENTS_AT_ONCE.format(out=str(out))],
                         cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("written after"), res.stdout  # (not 30 s later)


_FORK_CHILD_RESETS_ITS_LOOP = """
import asyncio.events, os, sys, threading, time, warnings
warnings.simplefilter("ignore", DeprecationWarning)
import recorder
recorder.start({out!r}, flush_interval=0.05)
threads = [threading.Thread(target=time.sleep, args=(0.3,)) for _ in range(4)]
for t in threads:
    t.start()
pid = os.fork()
if pid == 0:
    # what asyncio's own after-fork hook does on 3.12+ (CPython's
    # test_clear_threads_states_after_fork failed on 3.13 with recording)
    asyncio.events._set_running_loop(None)
    os._exit(51 if len(sys._current_frames()) == 1 else 52)
_, status = os.waitpid(pid, 0)
for t in threads:
    t.join()
print(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_that_resets_its_event_loop_has_one_thread(tmp_path):
    """Setting no running loop registers nothing: the child's writer thread starts
    only when the child records."""
    res = subprocess.run([sys.executable, "-c", _FORK_CHILD_RESETS_ITS_LOOP.format(
        out=str(tmp_path / "traces"))], cwd=tmp_path, env=child_env(),
        capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "51\n"


_FORK_IN_A_THREADED_PROGRAM = """
import os, sys, threading, time, warnings
warnings.simplefilter("ignore", DeprecationWarning)
import recorder
recorder.start({out!r}, flush_interval=0.05)
stop = threading.Event()
other = threading.Thread(target=stop.wait)
other.start()
with threading.Lock():
    pass
time.sleep(0.1)
writer = recorder._sink._writer_native_id
def fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
forker = threading.Thread(target=fork)
forker.start()
forker.join()
stop.set()
other.join()
print(writer == recorder._sink._writer_native_id)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_in_a_program_with_threads_does_not_wait_for_the_writer(tmp_path):
    """fork() warns of the program's own threads anyway, so the writer is not stopped
    (and restarted) around it: stopping it delayed the fork, and CPython's
    test_3_join_in_forked_from_thread, which races a fork from a thread against the
    main thread's exit, failed on 3.12 with recording."""
    res = subprocess.run([sys.executable, "-c", _FORK_IN_A_THREADED_PROGRAM.format(
        out=str(tmp_path / "traces"))], cwd=tmp_path, env=child_env(),
        capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "True\n"
    runs = traces(tmp_path / "traces")
    assert len(runs) == 2 and all(complete(t) for t in runs)


_CHILD_CRASHES_AT_ITS_FIRST_EVENT = """
import os, signal, threading
import recorder
recorder.start({out!r}, flush_interval=5)
with threading.Lock():
    pass
for _ in range(5):
    pid = os.fork()
    if pid == 0:
        with threading.Lock():  # its first event starts its recording...
            pass
        os.kill(os.getpid(), signal.SIGKILL)  # ... and it dies at once (a crashing worker)
    os.waitpid(pid, 0)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_that_dies_at_its_first_event_leaves_a_header(tmp_path):
    """CPython's test_concurrent_futures crashes pool workers on purpose: on 3.10 six
    of them left empty trace files (the header waited for the writer's first flush)."""
    out = tmp_path / "traces"
    res = subprocess.run([sys.executable, "-c", _CHILD_CRASHES_AT_ITS_FIRST_EVENT.format(
        out=str(out))], cwd=tmp_path, env=child_env(), capture_output=True, text=True,
        timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr
    files = sorted(out.glob("*.jsonl"))
    assert len(files) == 6
    assert [f.name for f in files if f.stat().st_size == 0] == []
    children = [t for t in traces(out) if t.header["parent_run"] is not None]
    assert len(children) == 5


@pytest.mark.parametrize("how", ["script", "-c"])
def test_process_that_dies_at_its_first_event_leaves_a_header(tmp_path, how):
    """The same for a new interpreter started with LOCKSCOPE_OUT (a spawned or
    forkserver worker: `python -c ...`), whose header used to wait for the first flush."""
    out = tmp_path / "traces"
    code = ("import os, signal, threading\nwith threading.Lock():\n    pass\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    args = ["-c", code] if how == "-c" else [str(write(tmp_path / "worker.py", code))]
    for _ in range(3):
        res = subprocess.run([sys.executable, *args], cwd=tmp_path,
                             env=child_env(LOCKSCOPE_OUT=str(out), LOCKSCOPE_FLUSH_INTERVAL="5"),
                             capture_output=True, text=True, timeout=TIMEOUT)
        assert res.returncode == -signal.SIGKILL, res.stderr
    files = sorted(out.glob("*.jsonl"))
    assert len(files) == 3
    assert [f.name for f in files if f.stat().st_size == 0] == []
