"""The `lockscope` command line: --version, help, choices, reports to standard output,
`report` given traces, and a reader that closes the pipe early.  Through typer's
CliRunner, and through the real console script where pipes and exit statuses matter."""
from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analyzer.cli import app

ROOT = Path(__file__).resolve().parents[2]
TRACE = ROOT / "sample_traces" / "lock_order_threads-bug.jsonl"  # one potential deadlock
CLEAN = ROOT / "sample_traces" / "lock_order_threads-fixed.jsonl"
TIMEOUT = 120

runner = CliRunner()


def lockscope(*args: str) -> list[str]:
    exe = shutil.which("lockscope", path=os.path.dirname(sys.executable))
    base = [exe] if exe else [sys.executable, "-c", "from analyzer.entry import main; main()"]
    return [*base, *map(str, args)]


def child_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("LOCKSCOPE_")}


def test_version():
    expected = f"lockscope {importlib.metadata.version('lockscope')}\n"
    for flag in ("--version", "-V"):
        result = runner.invoke(app, [flag])
        assert result.exit_code == 0 and result.stdout == expected
    res = subprocess.run(lockscope("--version"), capture_output=True, text=True,
                         env=child_env(), timeout=TIMEOUT)
    assert res.returncode == 0 and res.stdout == expected and res.stderr == ""


def test_help_offers_choices_and_no_type_names():
    pages = {cmd: runner.invoke(app, [*cmd, "--help"]) for cmd in ((), ("analyze",), ("report",))}
    for cmd, result in pages.items():
        assert result.exit_code == 0, cmd
        for line in result.stdout.splitlines():  # a value's or an argument's name, never its type
            assert "<bool>" not in line and "<str>" not in line and "<int>" not in line, line
            assert "<list[" not in line and "{" not in line, line
    analyze = pages[("analyze",)].stdout
    assert " analyze [OPTIONS] TRACE...\n" in analyze.splitlines(keepends=True)[0]
    assert " report [OPTIONS] SOURCE\n" in pages[("report",)].stdout.splitlines(keepends=True)[0]
    for choice in ("--fail-on [critical|error|warning|info|never]", "--group-by [instance|site]",
                   "--actors [task|thread|segment]", "--plotlyjs [inline|cdn]", "--json FILE",
                   "--long-hold DURATION", "-h, --help"):
        assert choice in analyze
    assert "--plotlyjs [inline|cdn]" in pages[("report",)].stdout
    assert "-V, --version" in pages[()].stdout
    run = runner.invoke(app, ["run", "--help"])
    assert run.exit_code == 0
    assert run.stdout.startswith("Usage: lockscope run [OPTIONS] SCRIPT [ARGS]... | -m MODULE")


@pytest.mark.parametrize("option, value, allowed", [
    ("--fail-on", "errors", "critical, error, warning, info, never"),
    ("--group-by", "class", "instance, site"),
    ("--actors", "process", "task, thread, segment"),
    ("--plotlyjs", "local", "inline, cdn"),
])
def test_choices_are_checked_before_reading_traces(tmp_path, option, value, allowed):
    result = runner.invoke(app, ["analyze", str(tmp_path / "no-such-trace.jsonl"), option, value])
    assert result.exit_code == 2
    assert result.stderr == f"lockscope analyze: {option} must be one of {allowed}, not {value!r}\n"
    assert result.stdout == ""


@pytest.mark.parametrize("option", ["--json", "--sarif", "--html"])
def test_a_report_named_dash_goes_to_stdout_and_the_summary_to_stderr(tmp_path, monkeypatch, option):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["analyze", str(TRACE), option, "-"])
    assert result.exit_code == 1  # the potential deadlock is an error
    assert not (tmp_path / "-").exists()
    if option == "--json":
        doc = json.loads(result.stdout)
        assert doc["format"] == "lockscope-findings"
        assert [f["kind"] for f in doc["findings"] if f["severity"] == "error"] == ["potential-deadlock"]
    elif option == "--sarif":
        assert json.loads(result.stdout)["version"] == "2.1.0"
    else:
        assert result.stdout.startswith("<!DOCTYPE html>") and result.stdout.rstrip().endswith("</html>")
    assert result.stderr.startswith("lockscope analyze: 1 file")  # the summary's first line
    assert "finding(s): 1 error" in result.stderr


def test_the_report_on_stdout_is_the_one_a_file_gets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for option in ("--json", "--sarif"):
        on_file = tmp_path / "report"
        result = runner.invoke(app, ["analyze", str(CLEAN), option, "-", "-q"])
        assert result.exit_code == 0 and result.stderr == ""
        runner.invoke(app, ["analyze", str(CLEAN), option, str(on_file), "-q"])
        written = json.loads(on_file.read_text())
        shown = json.loads(result.stdout)
        if option == "--json":  # when and how fast the analysis ran differ from run to run
            for doc in (written, shown):
                del doc["timings"], doc["generated_at"]
        assert shown == written


def test_only_one_report_can_go_to_stdout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["analyze", str(TRACE), "--json", "-", "--sarif", "-"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == ("lockscope analyze: only one report can go to standard output "
                             "('-'), not --json and --sarif\n")


def test_report_on_traces_says_to_use_analyze(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    gz = tmp_path / "t.jsonl.gz"
    import gzip

    gz.write_bytes(gzip.compress(TRACE.read_bytes()))
    for source, what in ((TRACE, "a trace file"), (gz, "a trace file"), (TRACE.parent, "a directory")):
        result = runner.invoke(app, ["report", str(source), "--html", "r.html"])
        assert result.exit_code == 2, source
        assert result.stderr == (f"lockscope report: {source} is {what}, not findings: analyze traces "
                                 f"with 'lockscope analyze {source} --html r.html'\n")


def closed_pipe(*args: str) -> subprocess.CompletedProcess:
    """Run the console script with a standard output nobody reads (closed at once)."""
    proc = subprocess.Popen(lockscope(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=child_env())
    proc.stdout.close()
    try:
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    return subprocess.CompletedProcess(args, proc.returncode, None, err.decode())


@pytest.mark.parametrize("args", [
    ("analyze", TRACE),                       # the terminal summary
    ("analyze", TRACE, "--json", "-", "-q"),  # a report
    ("analyze", "--help"),                    # typer's own output
    ("run", "--help"),
])
def test_a_closed_pipe_ends_quietly_with_141(args):
    res = closed_pipe(*args)
    assert res.stderr == "" and res.returncode == 141
