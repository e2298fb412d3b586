"""Start-up with ``LOCKSCOPE_OUT``: nothing imported until the program imports threading,
then everything recorded as before, whichever module imported threading first."""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import sysconfig
from pathlib import Path

import pytest
from lockscope_tracecheck import ROOT
from test_recorder_process import run_python, traces, write

pytestmark = pytest.mark.skipif(
    not glob.glob(os.path.join(sysconfig.get_paths()["purelib"], "lockscope_startup.pth")),
    reason="lockscope is not installed into this interpreter's site-packages")

MODULES = "import sys; print(' '.join(sorted(sys.modules)))"


def test_pass_imports_nothing_of_the_recorder(tmp_path):
    out = tmp_path / "traces"
    plain = run_python(["-c", MODULES], tmp_path)
    traced = run_python(["-c", MODULES], tmp_path, LOCKSCOPE_OUT=str(out))
    assert plain.returncode == traced.returncode == 0, traced.stderr
    extra = set(traced.stdout.split()) - set(plain.stdout.split())
    assert extra == {"lockscope_startup"}
    assert traced.stderr == ""
    assert not out.exists()  # nothing to record, nothing written


def test_recording_threads_imports_no_asyncio_socket_or_secrets(tmp_path):
    code = "import threading, sys, recorder; print(recorder.is_recording()); " + MODULES
    plain = run_python(["-c", code], tmp_path)
    traced = run_python(["-c", code], tmp_path, LOCKSCOPE_OUT=str(tmp_path / "traces"))
    assert traced.returncode == 0 and traced.stderr == "", traced.stderr
    assert plain.stdout.split()[0] == "False" and traced.stdout.split()[0] == "True"
    # asyncio support waits for asyncio; run id and host name need neither socket nor secrets
    assert not set(traced.stdout.split()[1:]) & {
        "asyncio", "recorder._aio_tasks", "recorder._aio_sync", "recorder._aio_await",
        "socket", "secrets", "random", "hashlib"}


# What starting the recorder must not import: orjson (with dataclasses, inspect, uuid,
# platform, datetime, json), typing, and the parsers that name locks (ast, linecache with
# tokenize and re) -- tens of milliseconds for every process that imports threading.
NOT_AT_START = {"orjson", "typing", "dataclasses", "inspect", "uuid", "platform", "datetime",
                "json", "ast", "linecache", "tokenize", "re", "enum"}


def test_starting_the_recorder_imports_no_orjson_typing_or_parsers(tmp_path):
    out = tmp_path / "traces"
    code = ("import threading, sys; rec = sys.modules.get('recorder'); "
            "print(bool(rec and rec.is_recording())); " + MODULES)
    plain = run_python(["-c", code], tmp_path)
    traced = run_python(["-c", code], tmp_path, LOCKSCOPE_OUT=str(out))
    assert plain.returncode == traced.returncode == 0 and traced.stderr == "", traced.stderr
    assert plain.stdout.split()[0] == "False" and traced.stdout.split()[0] == "True"
    extra = set(traced.stdout.split()[1:]) - set(plain.stdout.split()[1:])
    assert "recorder._threading" in extra
    assert not extra & NOT_AT_START
    # The process recorded nothing, and still leaves a complete trace (header and end).
    (trace,) = traces(out)
    assert trace.header["argv"] == ["-c"]
    assert [r["k"] for r in trace.records] == ["header", "end"]


@pytest.mark.parametrize("argv, redacted", [([], False), (["--db-password=x"], True)])
def test_the_header_needs_re_only_for_a_command_line_that_may_hold_secrets(tmp_path, argv,
                                                                          redacted):
    out = tmp_path / "traces"
    script = write(tmp_path / "prog.py", """
        import sys, threading
        sys.modules["recorder"].flush()  # writes the header
        print("re" in sys.modules, "orjson" in sys.modules)
    """)
    res = run_python([str(script), *argv], tmp_path, LOCKSCOPE_OUT=str(out))
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert res.stdout.split() == [str(redacted), "False"]
    (trace,) = traces(out)
    assert trace.header["argv"][1:] == (["--db-password=***"] if redacted else [])


# Whether a child that is not asked to run in pure Python has the C accelerator.
C_BUILT = importlib.util.find_spec("recorder._speedups") is not None
BOTH_WAYS = pytest.mark.parametrize("pure", [False, True], ids=["as-built", "pure-python"])


@BOTH_WAYS
def test_a_plain_first_lock_imports_no_parser_and_orjson_only_without_c(tmp_path, pure):
    out = tmp_path / "traces"
    show = "print([m for m in ('ast', 'orjson') if m in sys.modules])\n"
    script = write(tmp_path / "prog.py", "import threading, sys\n" + show +
                   "registry_lock = threading.Lock()\n" + show +
                   "with registry_lock:\n"
                   "    pass\n")
    res = run_python([str(script)], tmp_path, LOCKSCOPE_OUT=str(out),
                     **({"LOCKSCOPE_PURE_PYTHON": "1"} if pure else {}))
    assert res.returncode == 0 and res.stderr == "", res.stderr
    # The first lock is named from its line's text (a plain assignment: no ast) and
    # starts the writer, which encodes records in C, or with orjson in pure Python
    # (which imports ast itself, through dataclasses and inspect).
    c = C_BUILT and not pure
    assert res.stdout.splitlines() == ["[]", "[]" if c else "['ast', 'orjson']"]
    (trace,) = traces(out)
    (lock,) = [d for d in trace.objects("lock") if d.get("expr") == "registry_lock"]
    assert trace.ops(lock["id"]) == {"acquire": 1, "release": 1}


@BOTH_WAYS
def test_ctrl_c_while_orjson_is_imported_is_the_programs_keyboardinterrupt(tmp_path, pure):
    # orjson is imported at the first lock, in the program's thread, where Ctrl-C can
    # land in it: orjson's native initialisation crashed (SIGSEGV) when an import it
    # made raised. A finder raises KeyboardInterrupt at the first import of
    # dataclasses, which orjson imports, as Ctrl-C would at that moment.
    out = tmp_path / "traces"
    script = write(tmp_path / "prog.py", """
        import sys

        class CtrlC:
            def find_spec(self, name, path=None, target=None):
                if name == "dataclasses":
                    sys.meta_path.remove(self)
                    raise KeyboardInterrupt
                return None

        sys.meta_path.insert(0, CtrlC())
        import threading
        try:
            first = threading.Lock()
            interrupted = False
        except KeyboardInterrupt:
            interrupted = True
        second = threading.Lock()
        for _ in range(3):
            with second:
                pass
        print(interrupted)
    """)
    res = run_python([str(script)], tmp_path, LOCKSCOPE_OUT=str(out),
                     **({"LOCKSCOPE_PURE_PYTHON": "1"} if pure else {}))
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    # (with the C accelerator orjson is never imported: nothing to interrupt)
    assert res.stdout.split() == ["False" if C_BUILT and not pure else "True"]
    (trace,) = traces(out)
    (second,) = [d for d in trace.objects("lock") if d.get("expr") == "second"]
    assert trace.ops(second["id"]) == {"acquire": 3, "release": 3}
    assert trace.records[-1]["k"] == "end"


PROGRAM = """
    import {first}
    import asyncio, logging, threading
    import recorder

    held = recorder.name(threading.Lock(), "held")
    with held:
        pass

    async def main():
        alock = recorder.name(asyncio.Lock(), "alock")
        async with alock:
            pass

    asyncio.run(main())
    print(hasattr(logging._lock, "_ls_id"), recorder.is_recording())  # a traced lock
"""


@pytest.mark.parametrize("first", ["threading", "queue", "logging", "asyncio",
                                   "concurrent.futures", "recorder"])
def test_recording_starts_with_the_first_import_of_threading(tmp_path, first):
    out = tmp_path / "traces"
    script = write(tmp_path / "prog.py", PROGRAM.format(first=first))
    res = run_python([str(script)], tmp_path, LOCKSCOPE_OUT=str(out))
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    # logging's module-level lock is made right after threading is imported: traced too.
    assert res.stdout.split() == ["True", "True"]
    (trace,) = traces(out)
    held = trace.one("lock", "held")
    assert held["type"] == "threading.Lock"
    assert trace.ops(held["id"]) == {"acquire": 1, "release": 1}
    alock = trace.one("lock", "alock")
    assert alock["type"] == "asyncio.Lock"
    assert trace.ops(alock["id"]) == {"acquire": 1, "release": 1}
    (ev,) = trace.evs(alock["id"], op="acquire")
    assert ev.get("task") in {t["id"] for t in trace.objects("task")}
    assert trace.records[-1]["k"] == "end" and trace.records[-1]["reason"] == "exit"


# ------------------------------------------------ the lockscope command never records itself

def lockscope(args: list[str], cwd, **env: str):
    import shutil
    import subprocess
    import sys

    from test_recorder_process import TIMEOUT, child_env

    exe = shutil.which("lockscope", path=os.path.dirname(sys.executable))
    cmd = [exe] if exe else [sys.executable, "-c", "from analyzer.entry import main; main()"]
    return subprocess.run([*cmd, *args], cwd=cwd, env=child_env(**env), capture_output=True,
                          text=True, timeout=TIMEOUT)


SAMPLE = Path(__file__).resolve().parents[2] / "sample_traces" / "lock_order_threads-bug.jsonl"


@pytest.mark.parametrize("threading_at_startup", [False, True])
def test_lockscope_analyze_does_not_record_into_the_folder_it_analyzes(tmp_path,
                                                                       threading_at_startup):
    folder = tmp_path / "traces"
    folder.mkdir()
    (folder / SAMPLE.name).write_bytes(SAMPLE.read_bytes())
    env = {"LOCKSCOPE_OUT": str(folder)}
    if threading_at_startup:
        # Recording already started before the command runs (threading imported at
        # start-up): the command stops it and removes its file.
        write(tmp_path / "site" / "sitecustomize.py", "import threading\n")
        env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "site"), str(ROOT)])
    res = lockscope(["analyze", str(folder), "--json", str(tmp_path / "f.json")], tmp_path, **env)
    assert res.returncode == 1, res.stderr  # the sample holds a potential deadlock
    assert res.stderr == ""
    assert sorted(os.listdir(folder)) == [SAMPLE.name]
    analyzed = json.loads((tmp_path / "f.json").read_text())["trace"]["files"]
    assert [Path(f["path"]).name for f in analyzed] == [SAMPLE.name]


def test_lockscope_run_records_its_program_not_itself(tmp_path):
    exported, out = tmp_path / "exported", tmp_path / "out"
    exported.mkdir()
    script = write(tmp_path / "app.py", """
        import threading, recorder
        with recorder.name(threading.Lock(), "app-lock"):
            pass
    """)
    res = lockscope(["run", "--out", str(out), str(script)], tmp_path,
                    LOCKSCOPE_OUT=str(exported))
    assert res.returncode == 0, res.stderr
    assert os.listdir(exported) == []
    (trace,) = traces(out)
    assert trace.ops(trace.one("lock", "app-lock")["id"]) == {"acquire": 1, "release": 1}
    assert trace.header["argv"] == [str(script)]


SUBINTERPRETER = """
import threading
import time
import _testcapi
lock = threading.Lock()
with lock:
    pass
code = '''
import threading
lock = threading.Lock()
with lock:
    pass
{explicit}
'''
print(_testcapi.run_in_subinterp(code))
after = threading.Thread(target=lambda: None, name="after-subinterpreter")
after.start()
while after.is_alive():  # (ended before the join: a join that waits records its wait too)
    time.sleep(0.001)
after.join()
"""


@pytest.mark.parametrize("explicit", ["", "import recorder; print(recorder.start().active)"])
def test_a_subinterpreter_is_not_recorded(tmp_path, explicit):
    """The recorder and its C accelerator are per process: a subinterpreter that
    imports threading starts no second recording (on 3.12 one crashed the process
    with SIGSEGV, on 3.13 it left an empty trace file)."""
    pytest.importorskip("_testcapi")
    out = tmp_path / "traces"
    script = write(tmp_path / "prog.py", SUBINTERPRETER.format(explicit=explicit))
    res = run_python([str(script)], tmp_path, LOCKSCOPE_OUT=str(out))
    assert res.returncode == 0, res.stderr
    if explicit:
        assert res.stdout == "False\n0\n"
        assert res.stderr == ("lockscope: not recording in a subinterpreter "
                              "(only the main interpreter is recorded)\n")
    else:
        assert res.stdout == "0\n" and res.stderr == ""
    (path,) = out.glob("*.jsonl")
    (trace,) = traces(out)
    assert trace.records[-1]["k"] == "end"
    # the main interpreter's recording goes on as before (the accelerator's state
    # is its own, not replaced by the subinterpreter's recorder)
    after = trace.thread("after-subinterpreter")["id"]
    assert sorted(e["op"] for e in trace.evs(obj=after)) == ["end", "join", "start"]


@BOTH_WAYS
def test_queue_is_traced_from_the_programs_own_import_and_never_imported_by_recording(
        tmp_path, pure):
    """Recording does not import queue (1 ms at start-up); the program's own import of
    it, after recording started, gets a traced SimpleQueue and Queue's locks owned
    by their Queue, as when queue was imported first."""
    out = tmp_path / "traces"
    script = write(tmp_path / "prog.py", """
        import sys, threading
        print('queue' in sys.modules)
        from queue import Queue, SimpleQueue
        q = Queue()
        q.put(1)
        q.get()
        sq = SimpleQueue()
        sq.put(2)
        sq.get()
        print(type(sq).__module__)
    """)
    res = run_python([str(script)], tmp_path, LOCKSCOPE_OUT=str(out),
                     **({"LOCKSCOPE_PURE_PYTHON": "1"} if pure else {}))
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert res.stdout.splitlines() == ["False", "recorder._simplequeue"]
    (trace,) = traces(out)
    roles = {r["role"] for r in trace.objects("resource") if r.get("type") == "queue.Queue"}
    assert "not_empty" in roles
    [sq] = [r for r in trace.objects("resource") if r.get("type") == "queue.SimpleQueue"]
    assert dict(trace.ops(sq["id"])) == {"signal": 1}  # (the get did not wait)


# Standard modules that recording must not import at start-up (each costs the program
# 0.2-10 ms at every start): it imports their C parts, or waits for the program's own.
NOT_AT_START_UP = {"weakref", "queue", "heapq", "math", "contextvars", "ast", "linecache",
                   "tokenize", "re", "typing", "asyncio", "concurrent.futures", "json",
                   "dataclasses", "inspect", "orjson", "_contextvars"}
if C_BUILT:  # (json's C escaper serves the pure-Python encoder)
    NOT_AT_START_UP.add("_json")


def test_recording_imports_no_costly_standard_module_at_start_up(tmp_path):
    show = "import sys, threading\nprint(sorted(sys.modules))\n"
    script = write(tmp_path / "prog.py", show)
    bare = run_python([str(script)], tmp_path)
    traced = run_python([str(script)], tmp_path, LOCKSCOPE_OUT=str(tmp_path / "traces"))
    assert bare.returncode == 0 and traced.returncode == 0, traced.stderr
    added = set(json.loads(traced.stdout.replace("'", '"'))) - set(json.loads(
        bare.stdout.replace("'", '"')))
    assert "recorder._threading" in added
    assert not added & NOT_AT_START_UP
