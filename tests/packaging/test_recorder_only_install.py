"""A production install: the built wheel with orjson only (``pip install lockscope``
without the ``analyzer`` extra) records programs; the analyzer's dependencies are absent
and ``lockscope`` says how to get them.  Also a pytest project with
``filterwarnings = error`` where lockscope's pytest plugin is installed.

The wheel is built from a copy of this checkout and installed into a fresh virtual environment
(pip reads packages from its configured index or cache)."""

from __future__ import annotations

import glob
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANALYZER_DEPENDENCIES = ("duckdb", "typer", "plotly", "networkx")
TIMEOUT = 60
PIP_TIMEOUT = 600


def clean_env(**extra: str) -> dict:
    # Nothing of this test run (recording, xdist worker, pytest options) reaches the
    # programs and pytest sessions run in the fresh environment.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LOCKSCOPE_", "PYTEST_"))
           and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def check(cmd: list, timeout: float = PIP_TIMEOUT) -> None:
    res = subprocess.run([str(c) for c in cmd], env=clean_env(), capture_output=True,
                         text=True, timeout=timeout)
    assert res.returncode == 0, f"{cmd}: {res.stdout}{res.stderr}"


class Install:
    def __init__(self, base: Path) -> None:
        self.base = base
        dist, src = base / "dist", base / "src"
        # Built from a copy: the build compiles the C accelerator in place, next to its
        # source, which must not replace the one this checkout's tests are using.
        shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "__pycache__", "*.so", "*.pyd", ".pytest_cache"))
        check([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, src])
        (self.wheel,) = glob.glob(str(dist / "lockscope-*.whl"))
        venv = base / "venv"
        check([sys.executable, "-m", "venv", venv])
        self.bin = venv / ("Scripts" if os.name == "nt" else "bin")
        self.python = self.bin / "python"
        check([self.python, "-m", "pip", "install", "-q", "--no-deps", self.wheel])
        check([self.python, "-m", "pip", "install", "-q", "orjson", "pytest"])

    def run(self, args: list, cwd: Path, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(a) for a in args], cwd=cwd, env=clean_env(**env),
                              capture_output=True, text=True, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def install(tmp_path_factory) -> Install:
    return Install(tmp_path_factory.mktemp("recorder-only"))


def write(path: Path, code: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(code))
    return path


def read_trace(out: Path) -> list[dict]:
    (path,) = glob.glob(str(out / "*.jsonl"))
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def named_lock_ops(records: list[dict], name: str) -> list[str]:
    (lock,) = [r for r in records if r["k"] == "lock" and r.get("name") == name]
    return [r["op"] for r in records if r["k"] == "ev" and r["obj"] == lock["id"]]


APP = """
    import threading
    import recorder

    lock = recorder.name(threading.Lock(), "app-lock")

    def work():
        with lock:
            pass

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
"""


def test_the_wheel_requires_orjson_only(install):
    with zipfile.ZipFile(install.wheel) as whl:
        (meta,) = [n for n in whl.namelist() if n.endswith(".dist-info/METADATA")]
        lines = whl.read(meta).decode().splitlines()
    required = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Requires-Dist:")]
    assert [r for r in required if "extra ==" not in r] == ["orjson>=3.9"]
    for dep in ANALYZER_DEPENDENCIES:
        assert any(r.startswith(dep) and "extra == 'analyzer'" in r for r in required), dep


def test_analyzer_dependencies_are_not_importable(install, tmp_path):
    probe = ("from importlib.util import find_spec; "
             f"print([m for m in {ANALYZER_DEPENDENCIES!r} if find_spec(m)])")
    res = install.run([install.python, "-c", probe], tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_records_with_lockscope_out(install, tmp_path):
    script = write(tmp_path / "app.py", APP)
    res = install.run([install.python, script], tmp_path, LOCKSCOPE_OUT=str(tmp_path / "out"))
    assert res.returncode == 0 and res.stderr == "", res.stderr
    records = read_trace(tmp_path / "out")
    assert named_lock_ops(records, "app-lock") == ["acquire", "release"] * 3
    assert records[-1]["k"] == "end" and records[-1]["reason"] == "exit"


def test_records_with_python_m_recorder(install, tmp_path):
    script = write(tmp_path / "app.py", APP)
    res = install.run([install.python, "-m", "recorder", "--out", tmp_path / "out", script],
                      tmp_path)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert named_lock_ops(read_trace(tmp_path / "out"), "app-lock") == ["acquire", "release"] * 3


def test_lockscope_run_works_without_the_analyzer(install, tmp_path):
    script = write(tmp_path / "app.py", APP + "    raise SystemExit(3)\n")
    res = install.run([install.bin / "lockscope", "run", "--out", tmp_path / "out", script],
                      tmp_path)
    assert res.returncode == 3 and res.stderr == "", res.stderr
    assert named_lock_ops(read_trace(tmp_path / "out"), "app-lock") == ["acquire", "release"] * 3


def test_lockscope_version_and_run_help_without_the_analyzer(install, tmp_path):
    res = install.run([install.bin / "lockscope", "--version"], tmp_path)
    expected = f"lockscope {importlib.metadata.version('lockscope')}\n"  # the same sources
    assert res.returncode == 0 and res.stdout == expected and res.stderr == ""
    res = install.run([install.bin / "lockscope", "run", "--help"], tmp_path)
    assert res.returncode == 0 and res.stderr == ""
    assert res.stdout.startswith("Usage: lockscope run [OPTIONS] SCRIPT [ARGS]... | -m MODULE")
    res = install.run([install.bin / "lockscope", "run", "-m", "missing_module"], tmp_path)
    assert res.returncode == 2 and res.stderr == "lockscope run: No module named missing_module\n"


def test_lockscope_analyze_says_what_to_install(install, tmp_path):
    res = install.run([install.bin / "lockscope", "analyze", tmp_path], tmp_path)
    assert res.returncode == 2
    assert res.stdout == ""
    assert len(res.stderr.splitlines()) == 1
    assert "pip install 'lockscope[analyzer]'" in res.stderr


# ------------------------------------------- pytest projects with filterwarnings = error

@pytest.mark.parametrize("how", ["python -m pytest", "threading imported before pytest"])
def test_pytest_with_warnings_as_errors_starts_under_lockscope_out(install, tmp_path, how):
    project = tmp_path / "project"
    write(project / "pytest.ini", "[pytest]\nfilterwarnings = error\n")
    write(project / "test_one.py", """
        import threading

        def test_lock():
            with threading.Lock():
                pass
    """)
    if how == "python -m pytest":
        cmd = [install.python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    else:  # the recorder is already running when pytest marks modules for rewriting
        cmd = [install.python, "-c", "import threading, pytest; "
               "raise SystemExit(pytest.main(['-q', '-p', 'no:cacheprovider']))"]
    res = install.run(cmd, project, LOCKSCOPE_OUT=str(tmp_path / "out"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 passed" in res.stdout
    assert glob.glob(str(tmp_path / "out" / "*.jsonl"))  # and the session was recorded


def test_pytest_lockscope_without_the_analyzer_says_what_to_install(install, tmp_path):
    project = tmp_path / "project"
    write(project / "test_one.py", "def test_nothing():\n    pass\n")
    res = install.run([install.python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                       "--lockscope"], project)
    assert res.returncode != 0
    (line,) = [ln for ln in res.stdout.splitlines() if ln.startswith("lockscope:")]
    assert "the analyzer is not installed" in line
    assert line.endswith("pip install 'lockscope[analyzer]'")
    assert "Traceback" not in res.stdout + res.stderr
