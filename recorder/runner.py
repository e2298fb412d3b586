"""Run a program under the recorder in a fresh interpreter (``lockscope run``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def run_program(target: list[str], out_dir: str, module: str | None = None,
                stacks: int | None = None) -> int:
    """Run ``script.py args`` (or ``-m module args``) with recording on; return its exit status.

    On POSIX the interpreter is exec'd in place of this process, so the program gets
    the terminal's signals (Ctrl-C) and its exit status, death by a signal included,
    exactly as under plain ``python``; this function then never returns.  The child gets
    ``LOCKSCOPE_OUT`` so that its own subprocesses are recorded too (through the
    start-up hook installed with lockscope)."""
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
    if os.name == "posix":
        _exec(cmd, env)
    # Elsewhere a child it is; Ctrl-C reaches it through the console, not from us.
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = subprocess.call(cmd, env=env)
    finally:
        signal.signal(signal.SIGINT, old)
    return 128 - code if code < 0 else code


def _exec(cmd: list[str], env: dict) -> None:
    """Replace this process by ``cmd`` (returns only if exec failed)."""
    _finish_own_recording()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    try:
        os.execve(cmd[0], cmd, env)
    except OSError as exc:
        sys.stderr.write(f"lockscope run: cannot start {cmd[0]} ({exc.strerror or exc})\n")
        raise SystemExit(127) from None


def _finish_own_recording() -> None:
    """When this CLI process itself records (LOCKSCOPE_OUT exported), close its trace
    properly: exec skips the interpreter's exit hooks."""
    rec = sys.modules.get("recorder")
    if rec is not None and rec.is_recording():
        rec.stop()
