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
