"""Run real test suites with and without lockscope recording and compare them.

CPython's own threading, queue, logging, asyncio and concurrent.futures suites (and,
with ``--third-party``, the tests of a few small threading/asyncio libraries) are run
twice per interpreter: once plain, once with ``LOCKSCOPE_OUT`` set so that the installed
``lockscope_startup.pth`` records every Python process the suite starts. Printed per
suite and Python: tests run, failures+errors without/with (and which tests differ),
wall time ratio, events recorded, dropped events, trace files, empty trace files,
files without an ``end`` record, stray processes and ``lockscope:`` messages on
stderr; then every error/critical finding of ``lockscope analyze`` on each recorded
trace folder, so that each can be judged.

Each interpreter gets a cached virtual environment under ``.real_suites/`` with this
worktree installed in editable mode (the recorder, its C accelerator, orjson)::

    python benchmarks/real_suites.py                      # every Python 3.10-3.13 found
    python benchmarks/real_suites.py --quick --python 3.12
    python benchmarks/real_suites.py --suite test_queue asyncio.test_locks \\
        --json-out out.json --md-out out.md --keep-traces traces/

A suite that runs past ``--timeout`` is stopped with SIGABRT first (``-X faulthandler``
prints every thread's stack to its stderr), then its whole process group is killed;
the test that was running is reported.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import glob
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".real_suites"
PYTHONS = ("3.10", "3.11", "3.12", "3.13")


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    target: str  # module for unittest, or a third-party project name
    quick: bool = False
    min_python: tuple[int, int] = (3, 10)
    runner: str = "unittest"  # or "pytest" (third-party projects)


CPYTHON_SUITES = (
    Suite("test_threading", "test.test_threading", quick=True),
    Suite("test_queue", "test.test_queue", quick=True),
    Suite("test_logging", "test.test_logging"),
    Suite("asyncio.test_locks", "test.test_asyncio.test_locks", quick=True),
    Suite("asyncio.test_queues", "test.test_asyncio.test_queues"),
    Suite("asyncio.test_tasks", "test.test_asyncio.test_tasks"),
    Suite("asyncio.test_taskgroups", "test.test_asyncio.test_taskgroups", min_python=(3, 11)),
    Suite("asyncio.test_timeouts", "test.test_asyncio.test_timeouts", min_python=(3, 11)),
    Suite("test_concurrent_futures", "test.test_concurrent_futures"),
)

# Small threading/asyncio-heavy projects whose sdists ship their tests; pinned so
# that results stay comparable. Extra packages their tests need are listed after.
THIRD_PARTY = {
    "cachetools": ("cachetools==5.5.0", ["pytest"]),
    "janus": ("janus==1.0.0", ["pytest", "pytest-asyncio<0.24"]),
}
THIRD_PARTY_SUITES = tuple(Suite(name, name, runner="pytest") for name in THIRD_PARTY)

SUITES = CPYTHON_SUITES + THIRD_PARTY_SUITES


# --------------------------------------------------------------------------- interpreters

def find_python(version: str) -> str | None:
    """Path of a working interpreter for ``version`` ("3.12") or for a given path."""
    if os.sep in version:
        # absolute (runs start in other folders) but not resolved (a venv's python is a link)
        return os.path.abspath(version) if os.access(version, os.X_OK) else None
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(glob.glob(os.path.expanduser(
        f"~/.pyenv/versions/{version}.*/bin/python{version}")), reverse=True)
    for exe in candidates:
        if not exe:
            continue
        try:  # pyenv shims exist for versions that are not selected: try each one
            out = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0:
            return exe
    return None


def _probe(python: str, code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSCOPE_")}
    return subprocess.run([python, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=env)


CHECK_INSTALL = (
    "import sys, sysconfig, recorder, recorder._speedups, orjson, os\n"
    "from recorder import _core\n"
    "print(os.path.dirname(os.path.dirname(recorder.__file__)))\n"
    "print(sysconfig.get_paths()['purelib'])\n"
    "print(_core.speedups is not None)\n"
    "print(recorder._speedups.__file__)\n"
)
# Files an editable install copies into site-packages (pyproject's force-include): a
# venv whose copies differ from the worktree's is reinstalled.
STARTUP_FILES = ("recorder/lockscope_startup.pth", "lockscope_startup.py")


def _install_current(check: subprocess.CompletedProcess) -> bool:
    if check.returncode != 0:
        return False
    source, purelib, accelerated, extension = check.stdout.split("\n")[:4]
    if Path(source).resolve() != ROOT:
        return False
    if accelerated != "True":  # built from an older _speedups.c: the recorder would
        return False           # run in pure Python (it refuses a stale build)
    # Built before a change of its C files that kept the API number: it would run,
    # but not the code of this worktree.
    sources = [*ROOT.glob("recorder/*.c"), ROOT / "hatch_build.py"]
    if os.path.getmtime(extension) < max(os.path.getmtime(f) for f in sources):
        return False
    for rel in STARTUP_FILES:
        mine, theirs = ROOT / rel, Path(purelib) / Path(rel).name
        if mine.exists() and (not theirs.exists() or theirs.read_bytes() != mine.read_bytes()):
            return False
    return True


def ensure_venv(base_python: str, log) -> tuple[str, str]:
    """A venv of ``base_python`` with this worktree installed editable: (python, X.Y)."""
    ver = _probe(base_python, "import sys; print('%d.%d' % sys.version_info[:2])").stdout.strip()
    venv = CACHE / f"venv-{ver}"
    python = str(venv / "bin" / "python")
    if os.path.exists(python):
        if _install_current(_probe(python, CHECK_INSTALL)):
            return python, ver
        shutil.rmtree(venv)
    log(f"creating {venv} (pip install -e {ROOT})")
    CACHE.mkdir(exist_ok=True)
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True, timeout=600)
    subprocess.run([python, "-m", "pip", "install", "-q", "-e", str(ROOT)], check=True,
                   timeout=1800)
    check = _probe(python, CHECK_INSTALL)
    if check.returncode != 0:
        raise RuntimeError(f"lockscope not importable in {venv}: {check.stderr.strip()}")
    if check.stdout.split("\n")[2] != "True":
        log(f"{venv}: the C accelerator did not build: the recorder runs in pure Python")
    return python, ver


def python_version(python: str) -> str:
    return _probe(python, "import sys; print('%d.%d' % sys.version_info[:2])").stdout.strip()


def available(python: str, suite: Suite) -> bool:
    if suite.runner != "unittest":
        return True
    # the longest importable prefix of the name (it may name a class or a test method)
    code = ("import importlib.util as u\n"
            f"parts = {suite.target!r}.split('.')\n"
            "def spec(n):\n"
            "    try:\n"
            "        return u.find_spec(n)\n"
            "    except ImportError:\n"
            "        return None\n"
            "print(any(spec('.'.join(parts[:i])) for i in range(len(parts), 1, -1)))\n")
    out = _probe(python, code)
    return out.returncode == 0 and out.stdout.strip() == "True"


# --------------------------------------------------------------------------- third party

def prepare_third_party(python: str, ver: str, name: str, log) -> Path:
    """Unpack the project's sdist (with its tests) and install its test deps: the test dir."""
    spec, deps = THIRD_PARTY[name]
    base = CACHE / "third-party" / ver / name
    done = base / ".ready"
    if done.exists():
        # the venv may have been rebuilt since: the test deps must be in it too
        modules = ", ".join(["pytest", name, *(d.split("<")[0].split("=")[0].replace("-", "_")
                                                for d in deps if d != "pytest")])
        if subprocess.run([python, "-c", f"import {modules}"], capture_output=True).returncode == 0:
            return Path(done.read_text())
        log(f"{ver}: installing {spec} {' '.join(deps)} into the rebuilt venv")
        subprocess.run([python, "-m", "pip", "install", "-q", spec, *deps], timeout=900,
                       check=True, capture_output=True, text=True)
        return Path(done.read_text())
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    log(f"{ver}: fetching {spec} sdist and installing {' '.join(deps)}")
    pip = {"check": True, "capture_output": True, "text": True}  # pip's output only on error
    subprocess.run([python, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                    "-d", str(base), spec], timeout=600, **pip)
    sdist = next(base.glob("*.tar.gz"))
    with tarfile.open(sdist) as tar:
        tar.extractall(base, filter="data") if sys.version_info >= (3, 12) else tar.extractall(base)
    src = next(p for p in base.iterdir() if p.is_dir())
    subprocess.run([python, "-m", "pip", "install", "-q", spec, *deps], timeout=900, **pip)
    done.write_text(str(src))
    return src


# --------------------------------------------------------------------------- running

@dataclasses.dataclass
class RunResult:
    mode: str  # "off" or "on"
    returncode: int | None
    wall_s: float
    timed_out: bool
    tests_run: int | None
    failed: list[str]
    skipped: int | None
    hung: list[str]  # tests that were still running at the timeout, in order
    stray_processes: int
    lockscope_messages: list[str]
    warning_lines: int
    stderr_tail: str
    traces: dict | None = None
    crashed: list = dataclasses.field(default_factory=list)  # [test, signal]: process died in it


def session_members(sid: int) -> list[int]:
    """Pids of the processes still alive in session ``sid`` (Linux /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[3]) == sid:  # state, ppid, pgrp, session
            pids.append(int(entry))
    return pids


def _default_sigint() -> None:
    """SIGINT at its default in the suite, whatever shell started this script: one that
    ignores it (nohup, a background job) makes _thread.interrupt_main() do nothing, and
    test_threading's InterruptMainTests then fail with and without recording."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# A helper the suite started that notices its end by itself (multiprocessing's
# resource tracker and forkserver read EOF on a pipe of the test process) has this
# long to exit before it counts as a stray process: the harness killed them while
# they were flushing their last words, a race lost more often with recording (its
# exit flush takes a millisecond or two).
STRAY_GRACE_S = 3.0


def _left_running(session: int, grace: float) -> list[int]:
    """The members of ``session`` (but its leader) still running after ``grace``
    seconds."""
    deadline = time.monotonic() + grace
    while True:
        left = [p for p in session_members(session) if p != session]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def run_command(cmd: list[str], cwd: Path, env: dict, timeout: float, stall: float,
                out_path: Path) -> tuple[int | None, float, bool, int]:
    """Run ``cmd`` in its own session, its output into ``out_path``.

    It is stopped (SIGABRT, so that faulthandler prints every thread's stack, then
    SIGKILL) when it runs longer than ``timeout`` or prints nothing for ``stall``
    seconds (a verbose test run prints a line per test). Returns (exit status or None
    when stopped, wall seconds, stopped, stray processes killed).
    """
    with open(out_path, "wb") as out:
        start = last_progress = time.monotonic()
        size = 0
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=_default_sigint)
        timed_out = False
        while True:
            try:
                proc.wait(timeout=1)
                break
            except subprocess.TimeoutExpired:
                now = time.monotonic()
                if os.path.getsize(out_path) != size:
                    size, last_progress = os.path.getsize(out_path), now
                if now - start > timeout or now - last_progress > stall:
                    timed_out = True
                    break
        wall = time.monotonic() - start
        if timed_out:
            proc.send_signal(signal.SIGABRT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        stray = _left_running(proc.pid, 0 if timed_out else STRAY_GRACE_S)
        for pid in stray:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    return (None if timed_out else proc.returncode), wall, timed_out, len(stray)


UNITTEST_RAN = re.compile(r"^Ran (\d+) tests? in [\d.]+s$", re.M)
UNITTEST_FAILED = re.compile(r"^(?:FAIL|ERROR): (.+)$", re.M)
UNITTEST_SKIPPED = re.compile(r"^(?:OK|FAILED) \(.*?\bskipped=(\d+)", re.M)
UNITTEST_STARTED = re.compile(r"^(test\w*) \(([\w.]+)\)", re.M)
UNITTEST_VERBOSE_BAD = re.compile(r"^(test\w* \([\w.]+\)).*? \.\.\. (?:FAIL|ERROR)$", re.M)
PYTEST_SUMMARY = re.compile(r"^=+ (.*?) in [\d.]+s(?: \(.*\))? =+$", re.M)
PYTEST_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.M)
PYTEST_STARTED = re.compile(r"^(\S+::\S+) ", re.M)


def _as_id(description: str) -> str:
    """'test_x (mod.Cls.test_x) [subtest]' -> 'mod.Cls.test_x [subtest]' (3.10 style too)."""
    m = re.match(r"(\w+) \(([\w.]+)\)(.*)$", description)
    return test_id(f"{m[1]} ({m[2]})") + m[3] if m else description


def parse_unittest(text: str) -> tuple[int | None, list[str], int | None, str | None]:
    ran = UNITTEST_RAN.findall(text)
    failed = UNITTEST_FAILED.findall(text)
    if not ran:  # stopped before the summary: the verbose result lines are all there is
        failed = UNITTEST_VERBOSE_BAD.findall(text)
    failed = [_as_id(f) for f in failed]
    skipped = UNITTEST_SKIPPED.findall(text)
    started = UNITTEST_STARTED.findall(text)
    last = f"{started[-1][0]} ({started[-1][1]})" if started else None
    return (int(ran[-1]) if ran else None, sorted(set(failed)),
            int(skipped[-1]) if skipped else (0 if ran else None), last)


def parse_pytest(text: str) -> tuple[int | None, list[str], int | None, str | None]:
    summary = PYTEST_SUMMARY.findall(text)
    counts = {}
    if summary:
        for num, what in re.findall(r"(\d+) (\w+)", summary[-1]):
            counts[what] = int(num)
    run = sum(counts.get(k, 0) for k in ("passed", "failed", "error", "errors", "xfailed",
                                         "xpassed")) if summary else None
    started = PYTEST_STARTED.findall(text)
    return (run, sorted(set(PYTEST_FAILED.findall(text))),
            counts.get("skipped", 0) if summary else None, started[-1] if started else None)


def scan_traces(folder: Path) -> dict:
    """Events, dropped events, files, empty files and files without an ``end`` record."""
    stats = {"files": 0, "bytes": 0, "events": 0, "dropped": 0, "dropped_records": 0,
             "empty_files": [], "no_end_files": [], "corrupt_lines": 0}
    for path in sorted(folder.rglob("*.jsonl*")):
        if not (path.name.endswith(".jsonl") or path.name.endswith(".jsonl.gz")):
            continue
        stats["files"] += 1
        size = path.stat().st_size
        stats["bytes"] += size
        if size == 0:
            stats["empty_files"].append(path.name)
            continue
        opener = gzip.open if path.name.endswith(".gz") else open
        last_kind = None
        with opener(path, "rb") as f:
            for line in f:
                if line.startswith(b'{"k":"ev"'):
                    stats["events"] += 1
                    last_kind = "ev"
                    continue
                try:
                    rec = json.loads(line)
                    kind = rec["k"]
                except (ValueError, KeyError, TypeError):
                    stats["corrupt_lines"] += 1
                    continue
                last_kind = kind
                if kind == "ev":
                    stats["events"] += 1
                elif kind == "dropped":
                    stats["dropped"] += int(rec.get("count", 0))
                    stats["dropped_records"] += 1
        if last_kind != "end":
            stats["no_end_files"].append(path.name)
    return stats


def base_env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LOCKSCOPE_") and k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


# Runs the tests of a unittest target that come after the given test id in the
# loader's order (the rest of a suite after a test that hung); class and module
# fixtures still run.
RESUMING_RUNNER = """
import sys, unittest
target, after = sys.argv[1:3]
def flat(suite):
    for t in suite:
        yield from (flat(t) if isinstance(t, unittest.TestSuite) else (t,))
tests = list(flat(unittest.defaultTestLoader.loadTestsFromName(target)))
ids = [t.id() for t in tests]
rest = tests[ids.index(after) + 1:] if after in ids else tests
result = unittest.TextTestRunner(verbosity=2).run(unittest.TestSuite(rest))
sys.exit(not result.wasSuccessful())
"""


def test_id(started: str) -> str:
    """unittest id of a verbose start line: 'test_x (mod.Cls.test_x)' or 'test_x (mod.Cls)'."""
    name, _, where = started.partition(" (")
    where = where.rstrip(")")
    return where if where.endswith("." + name) else f"{where}.{name}"


def suite_command(python: str, suite: Suite, third_party_dir: Path | None,
                  stopped: list[str]) -> list[str]:
    """The command that runs the suite, or the rest of it after the tests in ``stopped``
    (hung or crashed; pytest: the whole suite without them)."""
    if suite.runner == "pytest":
        return [python, "-X", "faulthandler", "-m", "pytest", "-v", "-rfE", "-p",
                "no:cacheprovider", "--rootdir", str(third_party_dir),
                str(third_party_dir / "tests"), *(f"--deselect={t}" for t in stopped)]
    if stopped:
        return [python, "-X", "faulthandler", "-c", RESUMING_RUNNER, suite.target, stopped[-1]]
    return [python, "-X", "faulthandler", "-m", "unittest", "-v", suite.target]


def run_suite(python: str, suite: Suite, mode: str, timeout: float, stall: float, work: Path,
              third_party_dir: Path | None, max_hangs: int = 2,
              recording_mode: str = "full") -> RunResult:
    """Run the suite; after a hang, go on with the tests after the one that hung (up to
    ``max_hangs`` times; pytest: the whole suite without it) so that a hang does not
    hide the rest of the suite."""
    cwd = work / f"cwd-{mode}"
    traces = work / f"traces-{mode}"
    cwd.mkdir()
    traces.mkdir()
    env = base_env()
    if mode == "on":
        env["LOCKSCOPE_OUT"] = str(traces)
        env["LOCKSCOPE_MODE"] = recording_mode
    parse = parse_unittest if suite.runner == "unittest" else parse_pytest
    hung: list[str] = []
    crashed: list[list[str]] = []  # [test, signal name]
    stopped: list[str] = []  # hung or crashed, in order
    failed: set[str] = set()
    messages: list[str] = []
    warnings = stray_total = started_before = 0
    wall_total = 0.0
    texts = []
    for attempt in range(max_hangs + 1):
        out_path = work / f"output-{mode}-{attempt}.txt"
        cmd = suite_command(python, suite, third_party_dir, stopped)
        rc, wall, timed_out, stray = run_command(cmd, cwd, env, timeout, stall, out_path)
        text = out_path.read_text(errors="replace")
        texts.append(text)
        wall_total += wall
        stray_total += stray
        tests_run, attempt_failed, skipped, last = parse(text)
        failed |= set(attempt_failed)
        messages += [ln for ln in text.splitlines() if ln.startswith("lockscope:")]
        warnings += sum(1 for ln in text.splitlines() if re.search(r"\b\w*Warning: ", ln))
        stopped_in = None if last is None else (
            test_id(last) if suite.runner == "unittest" else last)
        killed = tests_run is None and rc is not None and rc < 0  # a crash: SIGSEGV, SIGABRT
        if not (timed_out or killed) or stopped_in is None or stopped_in in stopped:
            break
        stopped.append(stopped_in)
        if timed_out:
            hung.append(stopped_in)
        else:
            crashed.append([stopped_in, signal.Signals(-rc).name])
        if suite.runner == "unittest":  # the tests started before, the one stopped in too
            started_before += len(UNITTEST_STARTED.findall(text))
        if attempt == max_hangs:
            tests_run = None  # still hanging: the last attempt has no summary
    if tests_run is not None:
        tests_run += started_before if suite.runner == "unittest" else len(hung) + len(crashed)
    tail = texts[-1][-4000:] if (timed_out or tests_run is None) else ""
    result = RunResult(mode, rc, round(wall_total, 2), bool(hung) or timed_out, tests_run,
                       sorted(failed), skipped, hung, stray_total, messages, warnings, tail,
                       crashed=crashed)
    if mode == "on":
        result.traces = scan_traces(traces)
    return result


def analyze(lockscope: str, traces: Path, out_json: Path, timeout: float,
            memory_limit: str) -> dict:
    """``lockscope analyze --json`` on one trace folder: its error/critical findings."""
    cmd = [lockscope, "analyze", "--quiet", "--fail-on", "never", "--json", str(out_json),
           "--memory-limit", memory_limit, str(traces)]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=base_env())
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:.0f} s",
                "wall_s": round(time.monotonic() - start, 1), "findings": []}
    wall = round(time.monotonic() - start, 1)
    if proc.returncode not in (0, 1) or not out_json.exists():
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines()
                 if ln.strip() and not ln.strip().startswith("http")]
        return {"ok": False, "error": f"exit {proc.returncode} after {wall} s: "
                f"{lines[-1].strip() if lines else ''}",
                "wall_s": wall, "findings": []}
    doc = json.loads(out_json.read_text())
    findings = []
    short = re.compile(r"/\S*?/lib/python3\.\d+/")  # stdlib paths, shown from test/...
    for f in doc.get("findings", []):
        if f.get("severity") not in ("error", "critical"):
            continue
        findings.append({
            "kind": f["kind"], "severity": f["severity"], "title": short.sub("", f["title"]),
            "count": f.get("count"),
            "locks": [short.sub("", f"{lk.get('name') or lk.get('type')}@{lk.get('created_at')}")
                      for lk in f.get("locks", [])],
            "sites": [short.sub("", s["site"] if isinstance(s, dict) else s)
                      for s in f.get("sites", [])][:6],
        })
    return {"ok": True, "wall_s": wall, "summary": doc.get("summary"),
            "warnings": doc.get("trace", {}).get("warnings", []), "findings": findings}


# --------------------------------------------------------------------------- reporting

def compare(off: RunResult, on: RunResult) -> dict:
    """Tests that failed, errored or hung in one mode only."""
    bad_off = set(off.failed) | set(off.hung) | {c[0] for c in off.crashed}
    bad_on = set(on.failed) | set(on.hung) | {c[0] for c in on.crashed}
    return {
        "only_with_recording": sorted(bad_on - bad_off),
        "only_without_recording": sorted(bad_off - bad_on),
        "wall_ratio": round(on.wall_s / off.wall_s, 2) if off.wall_s > 0 else None,
    }


def _fails(r: dict) -> str:
    if r["tests_run"] is None:
        return "HANG" if r["timed_out"] else f"crash (exit {r['returncode']})"
    return (f"{len(r['failed'])}" + (f" +{len(r['hung'])} HANG" if r["hung"] else "")
            + (f" +{len(r.get('crashed', []))} CRASH" if r.get("crashed") else ""))


def row_cells(entry: dict) -> list[str]:
    if entry.get("skipped"):
        return [entry["python"], entry["suite"], "—", entry["skipped"], "", "", "", "", "", "",
                "", ""]
    off, on, tr = entry["off"], entry["on"], entry["on"]["traces"]
    tests = on["tests_run"] if on["tests_run"] is not None else off["tests_run"]
    return [entry["python"], entry["suite"], "?" if tests is None else str(tests),
            f"{_fails(off)} / {_fails(on)}",
            f"{entry['compare']['wall_ratio']}x" if entry["compare"]["wall_ratio"] else "?",
            f"{tr['events']:,}", f"{tr['dropped']:,}", str(tr["files"]),
            str(len(tr["empty_files"])), str(len(tr["no_end_files"])),
            str(len(on["lockscope_messages"])),
            f"{off['stray_processes']} / {on['stray_processes']}"]


HEADERS = ["python", "suite", "tests", "fail+err off / on", "wall on/off", "events",
           "dropped", "trace files", "empty files", "no end", "lockscope: msgs",
           "stray procs off / on"]


def print_row(entry: dict) -> None:
    cells = row_cells(entry)
    print("  ".join(f"{c:>{w}}" for c, w in zip(cells, (5, 24, 5, 10, 7, 10, 8, 5, 5, 5, 4, 6),
                                                 strict=True)), flush=True)


def details_lines(entry: dict) -> list[str]:
    """The particulars behind one table row, as markdown bullet lines."""
    if entry.get("skipped"):
        return []
    lines = []
    off, on = entry["off"], entry["on"]
    cmp_ = entry["compare"]
    for label, r in (("without recording", off), ("with recording", on)):
        for test in r["hung"]:
            lines.append(f"- HANG {label}: `{test}` still running at the timeout (stopped; "
                         "the suite went on with the tests after it)")
        for test, sig in r.get("crashed", []):
            lines.append(f"- CRASH {label}: the process died of {sig} in `{test}` (the suite "
                         "went on with the tests after it)")
        if r["tests_run"] is None:
            lines.append(f"- {label}: no test summary (exit {r['returncode']})")
    if cmp_["only_with_recording"]:
        lines.append("- fail or hang only with recording: "
                     + ", ".join(f"`{t}`" for t in cmp_["only_with_recording"]))
    if cmp_["only_without_recording"]:
        lines.append("- fail or hang only without recording: "
                     + ", ".join(f"`{t}`" for t in cmp_["only_without_recording"]))
    both = sorted(set(off["failed"]) & set(on["failed"]))
    if both:
        lines.append("- fail in both runs: " + ", ".join(f"`{t}`" for t in both))
    tr = on["traces"]
    for key, label in (("empty_files", "empty trace files"),
                       ("no_end_files", "trace files without an end record")):
        if tr[key]:
            shown = ", ".join(f"`{n}`" for n in tr[key][:8])
            more = f" and {len(tr[key]) - 8} more" if len(tr[key]) > 8 else ""
            lines.append(f"- {label}: {shown}{more}")
    if tr["dropped"]:
        lines.append(f"- dropped events: {tr['dropped']:,} in {tr['dropped_records']} "
                     "`dropped` records")
    for msg in sorted(set(on["lockscope_messages"])):
        n = on["lockscope_messages"].count(msg)
        lines.append(f"- stderr: `{msg}`" + (f" (x{n})" if n > 1 else ""))
    if on["warning_lines"] != off["warning_lines"]:
        lines.append(f"- lines with a `...Warning: ` in the output: {off['warning_lines']} without, "
                     f"{on['warning_lines']} with recording")
    if on["stray_processes"] or off["stray_processes"]:
        lines.append(f"- processes still running after the suite ended (killed): "
                     f"{off['stray_processes']} without, {on['stray_processes']} with recording")
    an = entry.get("analysis")
    if an is not None:
        if not an["ok"]:
            lines.append(f"- analysis failed: {an['error']}")
        else:
            lines.append(f"- analysis ({an['wall_s']} s): {an['summary']}")
            for f in an["findings"]:
                lines.append(f"  - **{f['severity']} {f['kind']}** (x{f['count']}): {f['title']}; "
                             f"locks {', '.join(f['locks']) or '-'}; sites "
                             f"{', '.join(f['sites']) or '-'}")
    return lines


def markdown(result: dict) -> str:
    meta = result["meta"]
    label = meta.get("label") or meta["commit"]
    out = [f"# Real suites with and without lockscope recording ({label})", "",
           f"Run {meta['started']} to {meta['finished']} on {meta['cpus']} CPUs "
           f"(load average at start {meta['load']}), timeout {meta['timeout_s']:.0f} s per "
           f"suite run or {meta.get('stall_timeout_s', 0):.0f} s without output, "
           f"command `{meta['command']}`.", "",
           "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for entry in result["runs"]:
        out.append("| " + " | ".join(row_cells(entry)) + " |")
    out += ["", "## Details", ""]
    for entry in result["runs"]:
        lines = details_lines(entry)
        if lines:
            out += [f"### {entry['suite']} on {entry['python']}", "", *lines, ""]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- main

def git_commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def select_suites(args) -> list[Suite]:
    if args.suite:
        by_name = {s.name: s for s in SUITES} | {s.target: s for s in SUITES}
        # Any other dotted unittest name (a module, class or test of the `test` package)
        # runs as given, e.g. test.test_threading.ThreadJoinOnShutdown
        by_name |= {n: Suite(n, n) for n in args.suite if n.startswith("test.")}
        unknown = [n for n in args.suite if n not in by_name]
        if unknown:
            sys.exit(f"real_suites: unknown suite(s) {', '.join(unknown)}; known: "
                     + ", ".join(s.name for s in SUITES) + ", or any test.* unittest name")
        return [by_name[n] for n in args.suite]
    chosen = [s for s in CPYTHON_SUITES if s.quick or not args.quick]
    if args.third_party:
        chosen += THIRD_PARTY_SUITES
    return chosen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", nargs="+", default=list(PYTHONS),
                    help="versions (3.12) or interpreter paths; default: each of 3.10-3.13 found")
    ap.add_argument("--no-venv", action="store_true",
                    help="use the given interpreters as they are (lockscope already installed)")
    ap.add_argument("--suite", nargs="+", help="suites by name: "
                    + ", ".join(s.name for s in SUITES))
    ap.add_argument("--quick", action="store_true",
                    help="only the short suites: " + ", ".join(s.name for s in SUITES if s.quick))
    ap.add_argument("--third-party", action="store_true",
                    help="also the tests of " + ", ".join(THIRD_PARTY))
    ap.add_argument("--recording-mode", choices=("full", "summary"), default="full",
                    help="the recorder's mode in the recorded runs (LOCKSCOPE_MODE)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per suite run")
    ap.add_argument("--stall-timeout", type=float, default=180,
                    help="a run that prints nothing for this many seconds is hung")
    ap.add_argument("--max-hangs", type=int, default=4,
                    help="after a hang or crash, go on with the tests after the one it happened in, "
                    "at most this many times")
    ap.add_argument("--no-analyze", action="store_true", help="skip lockscope analyze")
    ap.add_argument("--lockscope", default=None,
                    help="lockscope command for the analysis (default: the project's .venv)")
    ap.add_argument("--analyze-timeout", type=float, default=900)
    ap.add_argument("--memory-limit", default="2GB", help="analyzer's DuckDB memory limit")
    ap.add_argument("--keep-traces", type=Path, help="copy each recorded trace folder here "
                    "(DIR/3.X/suite/), and each run's output (DIR/3.X/suite.output-*.txt)")
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--md-out", type=Path)
    ap.add_argument("--label", help="what was measured, for the markdown title "
                    "(default: the worktree's commit)")
    ap.add_argument("--render", type=Path, nargs="+", metavar="JSON",
                    help="only write --md-out (and --json-out) from earlier --json-out files; "
                    "a later file's run of the same suite and Python replaces an earlier one")
    return ap.parse_args(argv)


def lockscope_command(args) -> str:
    if args.lockscope:
        return args.lockscope
    local = ROOT / ".venv" / "bin" / "lockscope"
    return str(local) if local.exists() else (shutil.which("lockscope") or "lockscope")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def log(msg: str) -> None:
        print(f"real_suites: {msg}", file=sys.stderr, flush=True)

    if args.render:
        result = merge([json.loads(p.read_text()) for p in args.render])
        if args.label:
            result["meta"]["label"] = args.label
        write_outputs(args, result, finished=False)
        return 0
    suites = select_suites(args)
    result = {"meta": {
        "commit": git_commit(), "label": args.label, "command": " ".join(["real_suites.py", *(argv or sys.argv[1:])]),
        "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(), "load": round(os.getloadavg()[0], 1),
        "timeout_s": args.timeout, "stall_timeout_s": args.stall_timeout, "pythons": {}},
        "runs": []}
    print("  ".join(f"{h:>{w}}" for h, w in zip(
        ["py", "suite", "tests", "fails", "ratio", "events", "dropped", "files", "empty",
         "noend", "msgs", "stray"], (5, 24, 5, 10, 7, 10, 8, 5, 5, 5, 4, 6), strict=True)))
    for want in args.python:
        base = find_python(want)
        if base is None:
            log(f"python {want}: not found, skipped")
            continue
        try:
            python, ver = (base, python_version(base)) if args.no_venv else ensure_venv(base, log)
        except (subprocess.SubprocessError, RuntimeError, OSError) as exc:
            log(f"python {want}: cannot install lockscope ({exc}), skipped")
            continue
        result["meta"]["pythons"][ver] = _probe(python, "import sys; print(sys.version)"
                                                ).stdout.strip()
        for suite in suites:
            entry = {"python": ver, "suite": suite.name, "target": suite.target}
            ver_t = tuple(int(x) for x in ver.split("."))
            if ver_t < suite.min_python:
                entry["skipped"] = f"needs {suite.min_python[0]}.{suite.min_python[1]}+"
            elif not available(python, suite):
                entry["skipped"] = "not shipped with this interpreter"
            if entry.get("skipped"):
                result["runs"].append(entry)
                print_row(entry)
                continue
            try:
                tp_dir = (prepare_third_party(python, ver, suite.target, log)
                          if suite.runner == "pytest" else None)
            except (subprocess.SubprocessError, OSError, StopIteration) as exc:
                detail = getattr(exc, "stderr", None) or ""
                entry["skipped"] = f"could not be prepared ({exc} {detail[-300:]})"
                result["runs"].append(entry)
                print_row(entry)
                continue
            with tempfile.TemporaryDirectory(prefix="real_suites-") as tmp:
                work = Path(tmp)
                for mode in ("off", "on"):
                    log(f"{ver} {suite.name}: running {'with' if mode == 'on' else 'without'} "
                        "recording")
                    entry[mode] = dataclasses.asdict(
                        run_suite(python, suite, mode, args.timeout, args.stall_timeout, work,
                                  tp_dir, args.max_hangs, args.recording_mode))
                entry["compare"] = compare(RunResult(**entry["off"]), RunResult(**entry["on"]))
                traces = work / "traces-on"
                if args.keep_traces:
                    dest = args.keep_traces / ver / suite.name
                    if dest.exists():
                        shutil.rmtree(dest)
                    shutil.copytree(traces, dest)
                    for output in work.glob("output-*.txt"):  # the suites' own output
                        shutil.copy(output, dest.parent / f"{suite.name}.{output.name}")
                if not args.no_analyze and entry["on"]["traces"]["files"]:
                    log(f"{ver} {suite.name}: lockscope analyze")
                    entry["analysis"] = analyze(lockscope_command(args), traces,
                                                work / "findings.json", args.analyze_timeout,
                                                args.memory_limit)
            result["runs"].append(entry)
            print_row(entry)
            for line in details_lines(entry):
                print(f"        {line}")
            write_outputs(args, result)  # as it goes, so a long run can be followed
    write_outputs(args, result)
    return 0


def merge(results: list[dict]) -> dict:
    """One result from several; runs keep the first file's order, later ones replace."""
    merged = {"meta": dict(results[0]["meta"]), "runs": []}
    index: dict[tuple[str, str], int] = {}
    for res in results:
        merged["meta"]["pythons"] = {**merged["meta"].get("pythons", {}),
                                     **res["meta"].get("pythons", {})}
        for entry in res["runs"]:
            key = (entry["python"], entry["suite"])
            if key in index:
                merged["runs"][index[key]] = entry
            else:
                index[key] = len(merged["runs"])
                merged["runs"].append(entry)
    if len(results) > 1:
        merged["meta"]["command"] = " + ".join(r["meta"]["command"] for r in results)
        merged["meta"]["started"] = min(r["meta"]["started"] for r in results)
        merged["meta"]["finished"] = max(r["meta"].get("finished") or "" for r in results)
    return merged


def write_outputs(args, result: dict, finished: bool = True) -> None:
    if finished:
        result["meta"]["finished"] = datetime.datetime.now(
            datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    for path, text in ((args.json_out, lambda: json.dumps(result, indent=1) + "\n"),
                       (args.md_out, lambda: markdown(result))):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text())


if __name__ == "__main__":
    sys.exit(main())
