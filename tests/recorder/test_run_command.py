"""`lockscope run` behaves like `python`: the same tracebacks, `__main__`, `sys.argv` and
`sys.path[0]`; one line (exit 2) for a program that cannot be found; its own help.
Every program runs in a real subprocess, under `python` and under `lockscope run`."""

from __future__ import annotations

import glob
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from test_recorder_process import child_env, lockscope_cmd

TIMEOUT = 60


def write(path: Path, code: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(code))
    return path


def python(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=child_env(),
                          capture_output=True, text=True, timeout=TIMEOUT)


def lockscope_run(args: list[str], cwd: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*lockscope_cmd(), "run", "--out", str(out), *args], cwd=cwd,
                          env=child_env(), capture_output=True, text=True, timeout=TIMEOUT)


def assert_same(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`python ARGS` and `lockscope run ARGS` print the same and exit alike."""
    plain = python(args, cwd)
    traced = lockscope_run(args, cwd, cwd / "traces")
    assert traced.stderr == plain.stderr
    assert traced.stdout == plain.stdout
    assert traced.returncode == plain.returncode
    return traced


RAISES = """
    import threading

    def check(n):
        raise ValueError(f"bad {n}")

    def in_thread():
        raise RuntimeError("thread failed")

    t = threading.Thread(target=in_thread, name="worker")
    t.start()
    t.join()
    try:
        check(1)
    except ValueError as exc:
        raise KeyError("wrapped") from exc
"""


def test_script_traceback_is_pythons(tmp_path):
    write(tmp_path / "app.py", RAISES)
    res = assert_same(["app.py"], tmp_path)
    assert res.returncode == 1
    assert "runpy" not in res.stderr and "recorder" not in res.stderr
    assert res.stderr.count('File "' + str(tmp_path / "app.py")) == 4
    assert glob.glob(str(tmp_path / "traces" / "*.jsonl"))  # it was recorded


def test_module_traceback_is_pythons(tmp_path):
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "app.py", RAISES)
    res = assert_same(["-m", "pkg.app"], tmp_path)
    assert res.returncode == 1 and "recorder" not in res.stderr
    # python -m itself shows its two runpy frames, and so do we: no more
    assert res.stderr.count("<frozen runpy>") == 2


def test_syntax_error_is_shown_as_python_does(tmp_path):
    write(tmp_path / "bad.py", "x = (\n")
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "bad.py", "x = (\n")
    res = assert_same(["bad.py"], tmp_path)
    assert "SyntaxError" in res.stderr and "Traceback" not in res.stderr
    assert_same(["-m", "pkg.bad"], tmp_path)


def test_keyboard_interrupt_and_exit_codes_are_pythons(tmp_path):
    write(tmp_path / "interrupted.py", "def f():\n    raise KeyboardInterrupt\nf()\n")
    res = assert_same(["interrupted.py"], tmp_path)
    assert res.returncode == -2 or res.returncode == 130  # killed by SIGINT, as python
    write(tmp_path / "exits.py", "import sys\nsys.exit('stopped here')\n")
    res = assert_same(["exits.py"], tmp_path)
    assert res.returncode == 1 and res.stderr == "stopped here\n"


def test_program_hook_gets_the_programs_frames_only(tmp_path):
    write(tmp_path / "hooked.py", """
        import sys, traceback
        def hook(t, v, tb):
            frames = traceback.extract_tb(tb)
            print("hook:", [(f.name, f.lineno) for f in frames], file=sys.stderr)
        sys.excepthook = hook
        def f():
            raise ValueError
        f()
    """)
    res = assert_same(["hooked.py"], tmp_path)
    assert res.stderr == "hook: [('<module>', 9), ('f', 8)]\n"


MAIN_INFO = '''
    """the docstring"""
    import sys
    print(__name__, __file__, __doc__, __package__, __spec__ and __spec__.name,
          type(__loader__).__name__, globals().get("__cached__"))
    print(sys.argv)
    print(sys.path[0])
    print(sorted(globals()))
    print(sys.modules["__main__"] is sys.modules[__name__])
    import pickle
    class Thing:
        pass
    print(type(pickle.loads(pickle.dumps(Thing()))).__module__)
'''


def test_main_module_argv_and_path_are_pythons(tmp_path):
    write(tmp_path / "sub" / "info.py", MAIN_INFO)
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "info.py", MAIN_INFO)
    write(tmp_path / "zipped" / "__main__.py", MAIN_INFO)
    res = assert_same(["sub/info.py", "a", "--b"], tmp_path)
    assert res.stdout.splitlines()[1:3] == ["['sub/info.py', 'a', '--b']", str(tmp_path / "sub")]
    res = assert_same(["-m", "pkg.info", "x"], tmp_path)
    assert res.stdout.splitlines()[1] == repr([str(tmp_path / "pkg" / "info.py"), "x"])
    assert_same(["zipped", "y"], tmp_path)  # a directory with a __main__.py


@pytest.mark.parametrize("args, message", [
    (["missing.py"], "can't open file '{cwd}/missing.py': [Errno 2] No such file or directory"),
    (["-m", "missing"], "No module named missing"),
    (["-m", "pkg"], "No module named pkg.__main__; 'pkg' is a package and cannot be directly executed"),
    (["-m", "nopkg.mod"], "Error while finding module specification for 'nopkg.mod' "
                          "(ModuleNotFoundError: No module named 'nopkg')"),
])
def test_a_program_that_cannot_be_found_is_one_line(tmp_path, args, message):
    write(tmp_path / "pkg" / "__init__.py", "")
    out = tmp_path / "traces"
    res = lockscope_run(args, tmp_path, out)
    assert res.stderr == "lockscope run: " + message.format(cwd=tmp_path) + "\n"
    assert res.returncode == 2 and res.stdout == ""
    plain = python(args, tmp_path)  # python's message is the same, after its own name
    assert plain.stderr == f"{sys.executable}: " + message.format(cwd=tmp_path) + "\n"
    assert not glob.glob(str(out / "*"))  # the program never started: no trace left


def test_run_help_documents_script_module_and_args(tmp_path):
    for args in (["run", "--help"], ["run", "-h"]):
        res = subprocess.run([*lockscope_cmd(), *args], cwd=tmp_path, env=child_env(),
                             capture_output=True, text=True, timeout=TIMEOUT)
        assert res.returncode == 0 and res.stderr == ""
        lines = res.stdout.splitlines()
        assert lines[0] == "Usage: lockscope run [OPTIONS] SCRIPT [ARGS]... | -m MODULE [ARGS]..."
        for documented in ("SCRIPT ", "-m MODULE ", "ARGS ", "--out DIR ", "--stacks N "):
            assert any(line.startswith("  " + documented) for line in lines), documented
    # options after SCRIPT are the program's, --help included
    write(tmp_path / "echo.py", "import sys\nprint(sys.argv[1:])\n")
    res = lockscope_run(["echo.py", "--help", "-m", "x"], tmp_path, tmp_path / "t")
    assert res.returncode == 0 and res.stdout == "['--help', '-m', 'x']\n"


@pytest.mark.parametrize("args, message", [
    ([], "give a SCRIPT or -m MODULE to run"),
    (["--bogus", "app.py"], "no such option: --bogus"),
    (["--stacks", "many", "app.py"], "--stacks wants a number, not 'many'"),
    (["-m"], "-m needs a module name"),
])
def test_run_usage_errors_are_one_line(tmp_path, args, message):
    res = subprocess.run([*lockscope_cmd(), "run", *args], cwd=tmp_path, env=child_env(),
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr == f"lockscope run: {message} (see 'lockscope run --help')\n"


def test_python_m_recorder_takes_the_same_command_line(tmp_path):
    write(tmp_path / "app.py", "import sys\nprint(sys.argv)\n")
    env = child_env()
    res = subprocess.run([sys.executable, "-m", "recorder", "--out=t", "--stacks=2", "app.py", "-x"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 0 and res.stdout == "['app.py', '-x']\n", res.stderr
    assert glob.glob(str(tmp_path / "t" / "*.jsonl"))
    res = subprocess.run([sys.executable, "-m", "recorder", "--help"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert res.stdout.startswith("Usage: python -m recorder [OPTIONS] SCRIPT [ARGS]...")


def test_program_on_stdin_and_in_a_zip_file(tmp_path):
    program = MAIN_INFO + "    raise ValueError('from stdin')\n"
    source = textwrap.dedent(program)
    plain = subprocess.run([sys.executable, "-", "a"], input=source, cwd=tmp_path, env=child_env(),
                           capture_output=True, text=True, timeout=TIMEOUT)
    traced = subprocess.run([*lockscope_cmd(), "run", "--out", str(tmp_path / "t"), "-", "a"],
                            input=source, cwd=tmp_path, env=child_env(), capture_output=True,
                            text=True, timeout=TIMEOUT)
    assert (traced.stdout, traced.stderr, traced.returncode) == (plain.stdout, plain.stderr, 1)
    assert 'File "<stdin>", line 14' in traced.stderr
    with zipfile.ZipFile(tmp_path / "app.zip", "w") as zf:
        zf.writestr("__main__.py", textwrap.dedent(MAIN_INFO))
    res = assert_same(["app.zip", "z"], tmp_path)
    assert res.stdout.splitlines()[1] == "['app.zip', 'z']"
