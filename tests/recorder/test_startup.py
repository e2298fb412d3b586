"""Start-up with ``LOCKSCOPE_OUT``: nothing imported until the program imports threading,
then everything recorded as before, whichever module imported threading first."""

from __future__ import annotations

import glob
import os
import sysconfig

import pytest
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
    print(type(logging._lock).__module__, recorder.is_recording())
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
    assert res.stdout.split() == ["recorder._threading", "True"]
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
