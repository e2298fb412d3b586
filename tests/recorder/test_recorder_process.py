"""The recorder in whole processes: kill -9, fork, env-var start-up, lockscope run,
missing optional dependencies.  Every child runs with a timeout."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from lockscope_tracecheck import ROOT, Trace

TIMEOUT = 60


def child_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSCOPE_")}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"]
                                     if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


def run_python(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=child_env(**env),
                          capture_output=True, text=True, timeout=TIMEOUT)


def traces(out: Path) -> list[Trace]:
    """One Trace per run found in ``out`` (parts grouped by run)."""
    by_stem: dict[str, list[str]] = {}
    for path in glob.glob(str(out / "*.jsonl")):
        stem = Path(path).name.split("Z")[0]
        by_stem.setdefault(stem, []).append(path)
    return [Trace(paths) for paths in by_stem.values()]


def write(path: Path, code: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(code))
    return path


def test_sigkill_leaves_complete_parsable_lines(tmp_path):
    out = tmp_path / "traces"
    script = write(tmp_path / "victim.py", f"""
        import sys, threading, time
        import recorder
        # one file (no parts, no total cap, which would cut parts of a quarter of
        # it): the churn below can write over 128 MB before "ready"
        recorder.start({str(out)!r}, flush_interval=0.02, max_file_mb=0, max_total_mb=0)
        marker = recorder.name(threading.Lock(), "marker")
        for _ in range(100):
            with marker:
                pass
        busy = [recorder.name(threading.Lock(), f"busy-{{i}}") for i in range(4)]
        def churn(lock):
            while True:
                with lock:
                    pass
        for lock in busy:
            threading.Thread(target=churn, args=(lock,), daemon=True).start()
        # Wait (bounded) until the writer has put the marker's events on disk, by
        # itself: the test is that what was flushed survives SIGKILL.
        import glob, json
        deadline = time.monotonic() + 30
        def marker_events_on_disk():
            # the marker's records come first in the file: stop reading once seen
            marker_id, seen = None, 0
            for path in glob.glob({str(out / "*.jsonl")!r}):
                for line in open(path, encoding="utf-8"):
                    if marker_id is None and '"marker"' in line:
                        marker_id = json.loads(line)["id"]
                    elif marker_id is not None and f'"obj":{{marker_id}},' in line:
                        seen += 1
                        if seen >= 200:
                            return True
            return False
        while time.monotonic() < deadline and not marker_events_on_disk():
            time.sleep(0.05)
        time.sleep(0.1)  # and some of the churn
        print("ready", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, str(script)], env=child_env(),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(TIMEOUT) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    files = glob.glob(str(out / "*.jsonl"))
    assert len(files) == 1
    trace = Trace(files, allow_torn_tail=True)  # every complete line parses and validates
    assert trace.records[-1]["k"] != "end"  # killed: no end record
    marker = trace.one("lock", "marker")
    assert len(trace.evs(marker["id"], op="acquire")) == 100
    assert len(trace.evs(marker["id"], op="release")) == 100
    assert sum(len(trace.evs(lk["id"])) for lk in trace.objects("lock")
               if lk["name"].startswith("busy-")) > 100


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_writes_its_own_file(tmp_path):
    out = tmp_path / "traces"
    script = write(tmp_path / "forker.py", f"""
        import os, sys, threading
        import recorder
        recorder.start({str(out)!r}, flush_interval=0.05)
        before = recorder.name(threading.Lock(), "before-fork")
        with before:
            pass
        pid = os.fork()
        if pid == 0:
            mine = recorder.name(threading.Lock(), "child-only")
            for _ in range(7):
                with mine:
                    pass
            with before:  # inherited lock, used in the child
                pass
            t = threading.Thread(target=lambda: None, name="child-thread")
            t.start()
            t.join(10)
            sys.exit(0)  # normal exit: at-exit hook closes the child's file
        _, status = os.waitpid(pid, 0)
        with before:
            pass
        print(os.waitstatus_to_exitcode(status), pid)
    """)
    res = run_python([str(script)], tmp_path)
    assert res.returncode == 0, res.stderr
    code, child_pid = res.stdout.split()
    assert code == "0"
    runs = traces(out)
    assert len(runs) == 2
    by_pid = {t.header["pid"]: t for t in runs}
    child, parent = by_pid[int(child_pid)], by_pid[[p for p in by_pid if p != int(child_pid)][0]]
    assert child.header["parent_run"] == parent.header["run"]
    assert parent.header["parent_run"] is None
    assert child.header["run"] != parent.header["run"]
    assert child.records[-1]["k"] == "end" and parent.records[-1]["k"] == "end"
    mine = child.one("lock", "child-only")
    assert len(child.evs(mine["id"], op="acquire")) == 7
    assert parent.objects("lock", "child-only") == []
    # The lock made before the fork: the parent's file has its two holds, the child's
    # file only the child's own hold (no copy of the parent's buffered events).
    assert len(parent.evs(parent.one("lock", "before-fork")["id"], op="acquire")) == 2
    assert len(child.evs(child.one("lock", "before-fork")["id"], op="acquire")) == 1
    assert child.thread("child-thread")["parent"] is not None
    assert child.evs(child.thread("child-thread")["id"], op="join")
    # each process's own account of what recording cost it: its events only (none of
    # the parent's, counted before the fork or dropped from the child's buffers)
    for t in runs:
        taken = [r for r in t.records if r["k"] in ("ev", "name")]  # (a rename is an event too)
        assert t.records[-1]["cost"]["events"] == len(taken)
    assert child.records[-1]["cost"]["since"] > parent.records[-1]["cost"]["since"]
    assert 0 < child.records[-1]["cost"]["cpu_ns"] < parent.records[-1]["cost"]["cpu_ns"] + 10**9


def test_import_recorder_without_analyzer_dependencies(tmp_path):
    out = tmp_path / "traces"
    code = textwrap.dedent(f"""
        import sys
        BLOCKED = ("duckdb", "plotly", "typer", "networkx", "rich", "analyzer")
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{{name}} is blocked in this test")
                return None
        sys.meta_path.insert(0, Block())
        for name in list(sys.modules):
            if name.split(".")[0] in BLOCKED:
                del sys.modules[name]
        import threading, recorder
        with recorder.start({str(out)!r}):
            with recorder.name(threading.Lock(), "works"):
                pass
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not loaded, loaded
        print("ok")
    """)
    res = run_python(["-c", code], tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"
    (trace,) = traces(out)
    assert trace.one("lock", "works")


def test_env_var_records_locks_created_at_import_time(tmp_path):
    if not glob.glob(os.path.join(sysconfig_purelib(), "lockscope_startup.pth")):
        pytest.skip("lockscope is not installed into this interpreter's site-packages")
    out = tmp_path / "env-traces"
    write(tmp_path / "registry.py", """
        import threading
        REGISTRY_LOCK = threading.Lock()  # created at import time
        def register():
            with REGISTRY_LOCK:
                pass
    """)
    script = write(tmp_path / "service.py", """
        import recorder, registry
        registry.register()
        registry.register()
        print(recorder.is_recording())
    """)
    res = run_python([str(script)], tmp_path, LOCKSCOPE_OUT=str(out), LOCKSCOPE_STACKS="3",
                     LOCKSCOPE_FLUSH_INTERVAL="0.05")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "True"
    (trace,) = traces(out)
    assert trace.header["settings"]["stacks"] == 3
    made = [lk for lk in trace.objects("lock") if lk.get("site")
            and trace.site(lk)[:2] == (str(tmp_path / "registry.py"), 3)]
    assert len(made) == 1
    acq = trace.evs(made[0]["id"], op="acquire")
    assert len(acq) == 2
    assert {trace.site(e) for e in acq} == {(str(tmp_path / "registry.py"), 5, "register")}
    assert trace.records[-1] == {**trace.records[-1], "k": "end", "reason": "exit"}


def test_env_var_with_unwritable_directory_warns_once_and_runs(tmp_path):
    if not glob.glob(os.path.join(sysconfig_purelib(), "lockscope_startup.pth")):
        pytest.skip("lockscope is not installed into this interpreter's site-packages")
    (tmp_path / "file").write_text("x")
    res = run_python(["-c", "import threading\nwith threading.Lock(): print('ran')"],
                     tmp_path, LOCKSCOPE_OUT=str(tmp_path / "file" / "sub"))
    assert res.returncode == 0 and res.stdout.strip() == "ran"
    assert res.stderr.count("lockscope:") == 1 and "recording disabled" in res.stderr


def sysconfig_purelib() -> str:
    import sysconfig

    return sysconfig.get_paths()["purelib"]


def lockscope_cmd() -> list[str]:
    exe = shutil.which("lockscope", path=os.path.dirname(sys.executable))
    if exe:
        return [exe]
    return [sys.executable, "-c", "from analyzer.cli import app; app()"]


def test_lockscope_run_script_passes_exit_code_and_records(tmp_path):
    write(tmp_path / "app.py", """
        import sys, threading
        lock = threading.Lock()
        def work():
            with lock:
                pass
        ts = [threading.Thread(target=work) for _ in range(3)]
        for t in ts: t.start()
        for t in ts: t.join(10)
        print("args", sys.argv[1:])
        sys.exit(7)
    """)
    out = tmp_path / "run-out"
    res = subprocess.run([*lockscope_cmd(), "run", "--out", str(out), "app.py", "--flag", "x"],
                         cwd=tmp_path, env=child_env(), capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert res.returncode == 7, res.stderr
    assert "args ['--flag', 'x']" in res.stdout
    (trace,) = traces(out)
    assert trace.header["argv"][1:] == ["--flag", "x"]
    lock = [lk for lk in trace.objects("lock") if lk.get("site")
            and trace.site(lk)[:2] == (str(tmp_path / "app.py"), 3)]
    assert len(lock) == 1
    assert len(trace.evs(lock[0]["id"], op="acquire")) == 3
    assert len(trace.evs(op="start")) == 3 and len(trace.evs(op="join")) == 3


def test_lockscope_run_module_passes_exit_code_and_records(tmp_path):
    write(tmp_path / "pkgx" / "__init__.py", "")
    write(tmp_path / "pkgx" / "job.py", """
        import sys, threading
        cond = threading.Condition()
        with cond:
            cond.wait(0.01)
        raise SystemExit(int(sys.argv[1]))
    """)
    out = tmp_path / "mod-out"
    res = subprocess.run([*lockscope_cmd(), "run", "--out", str(out), "-m", "pkgx.job", "3"],
                         cwd=tmp_path, env=child_env(), capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert res.returncode == 3, res.stderr
    (trace,) = traces(out)
    cond = trace.one("resource", type_="threading.Condition")
    assert [e["outcome"] for e in trace.evs(cond["id"], op="wait-end")] == ["timeout"]
    assert trace.site(trace.evs(cond["id"], op="wait-begin")[0])[1:] == (5, "<module>")


def test_lockscope_run_reports_a_crash_exit_code(tmp_path):
    write(tmp_path / "boom.py", "raise RuntimeError('boom')\n")
    res = subprocess.run([*lockscope_cmd(), "run", "--out", str(tmp_path / "o"), "boom.py"],
                         cwd=tmp_path, env=child_env(), capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert res.returncode == 1 and "RuntimeError: boom" in res.stderr
    (trace,) = traces(tmp_path / "o")
    assert trace.records[-1]["k"] == "end"


def test_python_m_recorder_without_env(tmp_path):
    write(tmp_path / "app.py", "import threading\nwith threading.RLock():\n    pass\n")
    res = run_python(["-m", "recorder", "--out", "t", "app.py"], tmp_path)
    assert res.returncode == 0, res.stderr
    (trace,) = traces(tmp_path / "t")
    assert trace.one("lock", type_="threading.RLock")
    res = run_python(["-m", "recorder", "missing.py"], tmp_path)
    assert res.returncode == 2 and "can't open file" in res.stderr
    assert "Traceback" not in res.stderr
