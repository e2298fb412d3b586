"""Run a program under the recorder in a fresh interpreter (``lockscope run``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def run_program(target: list[str], out_dir: str, module: str | None = None,
                stacks: int | None = None) -> int:
    """Run ``script.py args`` (or ``-m module args``) with recording on; return its exit status.

    The child gets ``LOCKSCOPE_OUT`` so that its own subprocesses are recorded too
    (through the start-up hook installed with lockscope)."""
    env = dict(os.environ)
    out_dir = os.path.abspath(out_dir)
    env["LOCKSCOPE_OUT"] = out_dir
    if stacks is not None:
        env["LOCKSCOPE_STACKS"] = str(stacks)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "recorder", "--out", out_dir]
    if stacks is not None:
        cmd += ["--stacks", str(stacks)]
    cmd += ["-m", module, *target] if module else ["--", *target]
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the child gets Ctrl-C and decides
    try:
        code = subprocess.call(cmd, env=env)
    finally:
        signal.signal(signal.SIGINT, old)
    return 128 - code if code < 0 else code
