"""``lockscope run``: its command line, and running the program in a fresh interpreter.

The same parser serves ``lockscope run`` (with or without the analyzer installed) and
``python -m recorder``, which is what ``lockscope run`` executes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field

USAGE = "{prog} [OPTIONS] SCRIPT [ARGS]... | -m MODULE [ARGS]..."
HELP = """\
Usage: {usage}

  Run a Python program with the recorder on, as `python SCRIPT [ARGS]...` or
  `python -m MODULE [ARGS]...` would, and pass its exit status through.
  Subprocesses of the program are recorded too. Options go before SCRIPT or -m;
  everything after them is the program's own command line.

Arguments:
  SCRIPT       The program: a .py file (or a directory or zip file with a
               __main__.py), like `python SCRIPT`.
  -m MODULE    Run library module MODULE as a script, like `python -m MODULE`.
  ARGS         The program's arguments (its sys.argv[1:]).

Options:
  --out DIR    Directory for the trace files.  [default: {out}]
  --stacks N   Record N frames of stack the first time each call site is seen.
  --mode MODE  full (every event, the default) or summary (each distinct lock
               dependency once with counts, histograms, rare events: always-on use).
  -h, --help   Show this message and exit.
"""


CLOSED_PIPE_STATUS = 141  # 128 + SIGPIPE: what a shell shows for a tool the signal killed


class RunUsageError(Exception):
    """The ``run`` command line is wrong (one-line message, exit status 2)."""


@dataclass
class RunArgs:
    """A parsed ``run`` command line: what to run and how to record it."""

    out: str
    stacks: int | None = None
    mode: str | None = None
    module: str | None = None
    target: list[str] = field(default_factory=list)  # SCRIPT ARGS..., or the module's ARGS
    help: bool = False


def parse_run_args(argv: list[str], default_out: str) -> RunArgs:
    """Parse ``[OPTIONS] SCRIPT [ARGS]... | [OPTIONS] -m MODULE [ARGS]...``.

    Options end at the first argument that is not one (or after ``--``), as with
    ``python``: the rest belongs to the program."""
    args = RunArgs(out=default_out)
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            args.help = True
            return args
        if arg == "--":
            i += 1
            break
        if arg.startswith("-m") and arg != "-":
            name = arg[2:]
            if not name:
                if i + 1 >= len(argv):
                    raise RunUsageError("-m needs a module name")
                i += 1
                name = argv[i]
            args.module, args.target = name, argv[i + 1:]
            return args
        option, eq, value = arg.partition("=")
        if option in ("--out", "--stacks", "--mode"):
            if not eq:
                if i + 1 >= len(argv):
                    raise RunUsageError(f"{option} needs a value")
                i += 1
                value = argv[i]
            if option == "--out":
                args.out = value
            elif option == "--mode":
                if value not in ("full", "summary"):
                    raise RunUsageError(f"--mode must be 'full' or 'summary', not {value!r}")
                args.mode = value
            else:
                try:
                    args.stacks = int(value)
                except ValueError:
                    raise RunUsageError(f"--stacks wants a number, not {value!r}") from None
        elif arg.startswith("-") and arg != "-":
            raise RunUsageError(f"no such option: {arg}")
        else:
            break
        i += 1
    args.target = argv[i:]
    if not args.target:
        raise RunUsageError("give a SCRIPT or -m MODULE to run")
    return args


def run_command(argv: list[str], prog: str = "lockscope run") -> int:
    """The ``lockscope run`` command: parse ``argv``, then run the program (see
    :func:`run_program`); on a bad command line, a one-line message and status 2."""
    try:
        args = parse_run_args(argv, default_out="lockscope-traces")
    except RunUsageError as exc:
        sys.stderr.write(f"{prog}: {exc} (see '{prog} --help')\n")
        return 2
    if args.help:
        return print_help(USAGE.format(prog=prog), "lockscope-traces")
    return run_program(args.target, args.out, module=args.module, stacks=args.stacks, mode=args.mode)


def print_help(usage: str, out: str) -> int:
    """Print the help; 0, or 141 (128 + SIGPIPE) when the reader has gone (``| head``)."""
    try:
        sys.stdout.write(HELP.format(usage=usage, out=out))
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
        return CLOSED_PIPE_STATUS
    return 0


def silence_stdout() -> None:
    """Point standard output at the null device once its reader has gone: what is still
    buffered goes nowhere at exit, without a BrokenPipeError message."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # no real file descriptor (a test's capture): nothing to flush there


def run_program(target: list[str], out_dir: str, module: str | None = None,
                stacks: int | None = None, mode: str | None = None) -> int:
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
    if mode is not None:
        env["LOCKSCOPE_MODE"] = mode
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
