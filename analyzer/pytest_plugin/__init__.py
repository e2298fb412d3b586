"""pytest plugin: ``pytest --lockscope`` records the test session and fails it on
lock-order cycles between tests (see docs/pytest-plugin.md).

Registered through the ``pytest11`` entry point as ``lockscope`` (disable with
``-p no:lockscope``).  Inert unless ``--lockscope`` or ``lockscope = true`` is
given: then it starts the recorder before conftest files are imported, wraps
each test (setup, call and teardown) in a recorder segment of kind ``test``, and
at the end of the session analyzes the trace with every test as its own actor.
DuckDB, typer and plotly are imported only at that point.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .report import LEVELS, at_or_above, failing, report_lines
from .trace import TraceMark, attribute_tests, cut_since, mark_now, read_test_windows

PLUGIN_NAME = "lockscope-session"
_EARLY = pytest.StashKey["_Recording | None"]()


# ------------------------------------------------------------------ options

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lockscope", "lockscope: lock-order analysis of the test run")
    group.addoption("--lockscope", action="store_true", default=None, dest="lockscope",
                    help="record lock activity of the whole session and fail on potential "
                         "deadlocks between tests (ini: lockscope = true)")
    group.addoption("--lockscope-out", dest="lockscope_out", metavar="DIR", default=None,
                    help="keep the trace files in DIR (default: a temporary directory, removed)")
    group.addoption("--lockscope-json", dest="lockscope_json", metavar="FILE", default=None,
                    help="write the findings JSON to FILE (usable as a --lockscope-baseline)")
    group.addoption("--lockscope-html", dest="lockscope_html", metavar="FILE", default=None,
                    help="write the HTML report to FILE")
    group.addoption("--lockscope-fail-on", dest="lockscope_fail_on", default=None,
                    choices=LEVELS, help="fail the session when a finding of this severity or "
                                         "worse exists (default: error)")
    group.addoption("--lockscope-baseline", dest="lockscope_baseline", metavar="FILE",
                    default=None, help="findings JSON of known findings: they do not fail the run")
    group.addoption("--lockscope-group-by", dest="lockscope_group_by", default=None,
                    choices=("instance", "site"),
                    help="lock identity: its creation site (default; lockdep-style lock classes, which also match across xdist workers) or each lock object")
    group.addoption("--lockscope-long-hold", dest="lockscope_long_hold", metavar="DURATION",
                    default=None, help="report holds longer than this (default 100ms)")
    group.addoption("--lockscope-stacks", dest="lockscope_stacks", metavar="N", default=None,
                    type=int, help="stack frames recorded per call site (default 8)")
    parser.addini("lockscope", type="bool", default=False,
                  help="record and analyze every run, as with --lockscope")
    for name, what in (("lockscope_out", "directory to keep the traces in"),
                       ("lockscope_json", "findings JSON file to write"),
                       ("lockscope_html", "HTML report file to write"),
                       ("lockscope_fail_on", "critical|error|warning|info|never (default error)"),
                       ("lockscope_baseline", "findings JSON of known findings"),
                       ("lockscope_group_by", "site|instance (default site)"),
                       ("lockscope_long_hold", "long-hold threshold (default 100ms)"),
                       ("lockscope_stacks", "stack frames recorded per call site (default 8)")):
        parser.addini(name, type="string", default="", help=f"lockscope: {what}")


@dataclass(frozen=True)
class Settings:
    """The plugin's options after merging the command line over the ini file."""

    enabled: bool
    out: str | None = None
    json: str | None = None
    html: str | None = None
    fail_on: str = "error"
    baseline: str | None = None
    group_by: str = "site"
    long_hold: str = "100ms"
    stacks: int = 8


def read_settings(config: pytest.Config, ns=None) -> Settings:
    """Settings from `ns` (the parsed options; early in start-up, the known args)."""
    ns = ns if ns is not None else config.option

    def ini(name: str) -> str:
        try:
            return str(config.getini(name) or "").strip()
        except (ValueError, KeyError):
            return ""

    def path(cli_name: str, ini_name: str) -> str | None:
        value = getattr(ns, cli_name, None)
        if value:
            return os.path.abspath(os.fspath(value))
        value = ini(ini_name)
        if not value:
            return None
        base = config.inipath.parent if config.inipath else config.rootpath
        return str((Path(base) / value).resolve())

    def choice(cli_name: str, allowed: tuple, default: str) -> str:
        value = getattr(ns, cli_name, None) or ini(cli_name) or default
        if value not in allowed:
            raise pytest.UsageError(f"{cli_name} = {value!r}: must be one of {', '.join(allowed)}")
        return value

    enabled = getattr(ns, "lockscope", None)
    if enabled is None:
        try:
            enabled = bool(config.getini("lockscope"))
        except (ValueError, KeyError):
            enabled = False
    stacks = getattr(ns, "lockscope_stacks", None)
    if stacks is None:
        raw = ini("lockscope_stacks") or "8"
        try:
            stacks = int(raw)
        except ValueError:
            raise pytest.UsageError(f"lockscope_stacks = {raw!r}: not a number") from None
    return Settings(
        enabled=bool(enabled),
        out=path("lockscope_out", "lockscope_out"),
        json=path("lockscope_json", "lockscope_json"),
        html=path("lockscope_html", "lockscope_html"),
        fail_on=choice("lockscope_fail_on", LEVELS, "error"),
        baseline=path("lockscope_baseline", "lockscope_baseline"),
        group_by=choice("lockscope_group_by", ("instance", "site"), "site"),
        long_hold=getattr(ns, "lockscope_long_hold", None) or ini("lockscope_long_hold") or "100ms",
        stacks=max(0, stacks),
    )


# --------------------------------------------------------------- recording

class _Recording:
    """The recorder as this plugin runs it: started by us, or found running.

    Child processes the session starts record too: while we record, the environment
    has ``LOCKSCOPE_OUT`` (and ``LOCKSCOPE_STACKS``), so every Python subprocess writes
    its own trace there; at the end, the trace files that appeared in that
    directory during the session are analyzed with ours."""

    def __init__(self, out: str | None, stacks: int) -> None:
        import recorder

        self.temp = out is None
        self.out = out or tempfile.mkdtemp(prefix="lockscope-pytest-")
        self.error: str | None = None
        self.owned = not recorder.is_recording()
        self.saved_env: dict[str, str | None] | None = None
        # where the session's child processes write, and what was there before
        self.child_dir = self.out if self.owned else os.environ.get("LOCKSCOPE_OUT")
        self.before = _trace_files_in(self.child_dir)
        if self.owned:
            try:
                os.makedirs(self.out, exist_ok=True)
            except OSError as exc:  # said in the summary (pytest captures the warnings)
                self.error = f"cannot write traces to {self.out}: {exc.strerror or exc}"
                self.owned = False
            else:
                self.owned = recorder.start(self.out, stacks=stacks).active
                if not self.owned:
                    self.error = f"the recorder could not start writing to {self.out}"
            if self.owned:
                self.saved_env = {k: os.environ.get(k) for k in _CHILD_ENV}
                os.environ.update({"LOCKSCOPE_OUT": self.out, "LOCKSCOPE_STACKS": str(stacks)})
        self.files: list[str] = []
        self.stopped = False

    @property
    def active(self) -> bool:
        import recorder

        return not self.stopped and recorder.is_recording()

    def stop(self) -> list[str]:
        """Stop (if we started it) and return complete trace files to analyze:
        ours and those of the child processes started meanwhile."""
        import recorder

        if self.stopped:
            return self.files
        self.stopped = True
        own: list[str] = []
        if self.owned:
            self.files = own = recorder.stop()
            self._restore_env()
        elif recorder.is_recording() and recorder.trace_files():
            # Someone else's recording goes on: analyze a snapshot that ends now.
            recorder.flush()
            own = recorder.trace_files()
            self.files = cut_since(own, TraceMark(0, 0), self.out)
        mine = {os.path.abspath(f) for f in own + self.files}
        self.files += [f for f in sorted(_trace_files_in(self.child_dir) - self.before) if f not in mine]
        return self.files

    def _restore_env(self) -> None:
        for key, value in (self.saved_env or {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self.saved_env = None

    def cleanup(self) -> None:
        self._restore_env()
        if self.temp:
            shutil.rmtree(self.out, ignore_errors=True)


_CHILD_ENV = ("LOCKSCOPE_OUT", "LOCKSCOPE_STACKS")


def _trace_files_in(directory: str | None) -> set[str]:
    """Absolute paths of the trace files under `directory` (none if it does not exist)."""
    if not directory or not os.path.isdir(directory):
        return set()
    found = set()
    for root, _dirs, names in os.walk(directory):
        found.update(os.path.abspath(os.path.join(root, n)) for n in names
                     if n.endswith((".jsonl", ".jsonl.gz")))
    return found


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput") or bool(os.environ.get("PYTEST_XDIST_WORKER"))


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser, args) -> None:
    """Start recording before conftest files (and what they import) create their locks."""
    ns = early_config.known_args_namespace
    settings = read_settings(early_config, ns)
    if not settings.enabled or getattr(ns, "collectonly", False):
        return
    xdist_controller = not _is_worker(early_config) and (
        getattr(ns, "numprocesses", None) or getattr(ns, "dist", "no") not in ("no", None))
    if xdist_controller:
        return  # the workers record; the controller only analyzes
    early_config.stash[_EARLY] = _Recording(settings.out, settings.stacks)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    early = config.stash.get(_EARLY, None)
    settings = read_settings(config)
    if not settings.enabled or config.option.collectonly:
        if early is not None:
            early.stop()
            early.cleanup()
        return
    worker = _is_worker(config)
    controller = not worker and getattr(config.option, "dist", "no") != "no"
    if controller and early is not None:  # started before xdist decided; not needed here
        early.stop()
        early.cleanup()
        early = None
    if not controller and early is None:
        early = _Recording(settings.out, settings.stacks)
    role = "controller" if controller else "worker" if worker else "single"
    config.pluginmanager.register(LockscopeSession(config, settings, role, early), PLUGIN_NAME)


class LockscopeSession:
    """Per-session state: segments per test, and the analysis at the end."""

    def __init__(self, config: pytest.Config, settings: Settings, role: str,
                 recording: _Recording | None) -> None:
        self.config = config
        self.settings = settings
        self.role = role
        self.recording = recording
        self.marks: dict[str, TraceMark] = {}
        self.worker_files: list[str] = []
        self.worker_dirs: list[str] = []
        self.worker_errors: dict[str, list[str]] = {}  # message -> worker ids
        self.doc: dict | None = None
        self.error: str | None = None
        self.written: list[str] = []

    # -------------------------------------------------------- per test

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem) -> Generator:
        import recorder

        if self.recording is None or not self.recording.active:
            return (yield)
        if "lockscope_findings" in getattr(item, "fixturenames", ()):
            recorder.flush()
            self.marks[item.nodeid] = mark_now(recorder.trace_files())
        with recorder.segment(item.nodeid, kind="test"):
            return (yield)

    # -------------------------------------------------------- xdist

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        out = getattr(node, "workeroutput", None) or {}
        self.worker_files += out.get("lockscope_files", [])
        if out.get("lockscope_error"):
            worker = (getattr(node, "workerinput", None) or {}).get("workerid", "worker")
            self.worker_errors.setdefault(out["lockscope_error"], []).append(worker)
        if out.get("lockscope_temp_dir"):
            self.worker_dirs.append(out["lockscope_temp_dir"])

    # -------------------------------------------------------- end

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus) -> None:
        files = self.recording.stop() if self.recording is not None else []
        if self.role == "worker":
            if hasattr(self.config, "workeroutput"):
                self.config.workeroutput["lockscope_files"] = files
                if self.recording is not None and self.recording.error:
                    self.config.workeroutput["lockscope_error"] = self.recording.error
                if self.recording is not None and self.recording.temp:
                    self.config.workeroutput["lockscope_temp_dir"] = self.recording.out
                    self.recording.temp = False  # the controller removes it after analysis
            return
        if self.role == "controller":
            files = list(dict.fromkeys(self.worker_files))  # workers sharing one directory
        if self.recording is not None and self.recording.error:
            self.error = self.recording.error
        elif self.worker_errors:
            self.error = "; ".join(f"{', '.join(sorted(ids))}: {message}"
                                   for message, ids in self.worker_errors.items())
        else:
            self.analyze(files)
        if self.failed and session.exitstatus in (pytest.ExitCode.OK,
                                                  pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @property
    def failed(self) -> bool:
        if self.error is not None:
            return True
        if self.doc is None:
            return False
        return bool(failing(self.doc, self.settings.fail_on))

    def analyze(self, files: list[str]) -> None:
        """Analyze the session's traces with tests as actors; keep the document."""
        s = self.settings
        files = [f for f in files if os.path.exists(f)]
        if not files:
            self.error = "no trace was recorded (see the lockscope warnings above)"
            return
        html: dict[str, str] = {}

        def on_result(doc: dict, con) -> None:  # the database is still open here
            attribute_tests(doc, read_test_windows(con))
            if s.html:
                try:
                    html["page"] = render_html(doc, con)
                except Exception as exc:  # a report bug must not lose the findings
                    html["error"] = f"HTML report: not written: {exc!r}"

        try:
            from .. import analyze

            doc = analyze(files, actors="segment", group_by=s.group_by, long_hold=s.long_hold,
                          baseline=s.baseline, fail_on=s.fail_on, on_result=on_result)
        except ImportError as exc:  # a recorder-only install (no [analyzer] extra)
            from ..entry import INSTALL_HINT

            self.error = f"the analyzer is not installed ({exc}): {INSTALL_HINT}"
            return
        except Exception as exc:  # UnusableInput, or a bug: a line, never a traceback
            self.error = f"analysis failed: {exc}"
            return
        self.doc = doc
        if s.json:
            from ..report import json as json_report

            try:
                Path(s.json).parent.mkdir(parents=True, exist_ok=True)
                json_report.write(doc, s.json)
                self.written.append(f"findings JSON: {s.json}")
            except OSError as exc:
                self.error = f"cannot write the findings JSON {s.json}: {exc.strerror or exc}"
        if s.html:
            if "page" in html:
                try:
                    Path(s.html).parent.mkdir(parents=True, exist_ok=True)
                    Path(s.html).write_text(html["page"], encoding="utf-8")
                    self.written.append(f"HTML report: {s.html}")
                except OSError as exc:
                    self.error = f"cannot write the HTML report {s.html}: {exc.strerror or exc}"
            else:
                self.written.append(html.get("error") or "HTML report: not written")

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config) -> None:
        if self.role == "worker":
            return
        tr = terminalreporter
        tr.write_sep("=", "lockscope")
        verdict, bad = "", False
        if self.doc is not None:
            lines, verdict, bad = report_lines(self.doc, self.settings.fail_on)
            for line in lines:
                tr.write_line(line, red=line.startswith(("CRITICAL", "ERROR")),
                              yellow=line.startswith("WARNING"))
            for line in self.written:
                tr.write_line(line)
            if self.recording is not None and not self.recording.temp:
                tr.write_line(f"traces: {self.recording.out}")
            elif self.role == "controller" and self.settings.out:
                tr.write_line(f"traces: {self.settings.out}")
        if self.error is not None:
            from ..report.visible import visible

            tr.write_line(visible(f"lockscope: FAILED: {self.error}"), red=True, bold=True)
        elif verdict:
            tr.write_line(verdict, red=bad, green=not bad, bold=True)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.recording is not None:
            self.recording.stop()
            self.recording.cleanup()
        for d in self.worker_dirs:
            shutil.rmtree(d, ignore_errors=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    """A recording started early but never handed to a session (usage error) stops here."""
    early = config.stash.get(_EARLY, None)
    if early is not None and config.pluginmanager.get_plugin(PLUGIN_NAME) is None:
        early.stop()
        early.cleanup()


def render_html(doc: dict, con) -> str:
    """The HTML report page of `doc` (the database `con` gives it the timelines)."""
    try:
        from ..report import html as report_html
    except ImportError:
        raise RuntimeError("this lockscope has no HTML report (analyzer.report.html)") from None
    return report_html.render(doc, con=con)


# ----------------------------------------------------------------- fixture

class TestFindings:
    """What the ``lockscope_findings`` fixture gives a test: the findings of that test alone.

    ``lockscope_findings()`` analyzes everything recorded since the test began (its
    own threads and tasks are the actors) and returns the findings at or above
    `severity` (default ``error``), optionally of one `kind`."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, nodeid: str, mark: TraceMark) -> None:
        self.nodeid = nodeid
        self.mark = mark

    def document(self, **options) -> dict:
        """The whole findings document of this test so far (options as for `analyze`)."""
        import recorder

        from .. import analyze

        recorder.flush()
        with tempfile.TemporaryDirectory(prefix="lockscope-test-") as tmp:
            files = cut_since(recorder.trace_files(), self.mark, tmp)
            if not files:
                raise RuntimeError("lockscope_findings: the recorder wrote no trace "
                                   "(see the lockscope warnings)")
            return analyze(files, **options)

    def __call__(self, kind: str | None = None, severity: str = "error", **options) -> list[dict]:
        findings = self.document(**options)["findings"]
        return [f for f in findings if at_or_above(f["severity"], severity)
                and (kind is None or f["kind"] == kind)]

    def assert_clean(self, severity: str = "error", **options) -> None:
        """Fail the test, listing them, when it has findings at or above `severity`."""
        from .report import finding_lines

        found = self(severity=severity, **options)
        if found:
            text = "\n".join(line for f in found for line in finding_lines(f))
            raise AssertionError(f"lockscope: {len(found)} finding(s) at or above "
                                 f"'{severity}' in {self.nodeid}:\n{text}")


@pytest.fixture
def lockscope_findings(request: pytest.FixtureRequest) -> Generator[TestFindings]:
    """The lock findings of this test alone: call it after the code under test ran.

    Works with or without ``--lockscope``; without it, the recorder runs for this
    test only, so only locks created during the test are seen."""
    import recorder

    plugin = request.config.pluginmanager.get_plugin(PLUGIN_NAME)
    mark = plugin.marks.get(request.node.nodeid) if plugin is not None else None
    own = None
    if mark is None:
        if recorder.is_recording():
            recorder.flush()
            mark = mark_now(recorder.trace_files())
        else:
            own = tempfile.mkdtemp(prefix="lockscope-test-")
            recorder.start(own, stacks=8)
            mark = TraceMark(0, 0)
    try:
        yield TestFindings(request.node.nodeid, mark)
    finally:
        if own is not None:
            recorder.stop()
            shutil.rmtree(own, ignore_errors=True)
