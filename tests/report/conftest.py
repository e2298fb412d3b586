"""Fixtures: record the sample programs in a subprocess, analyze them with a kept
database, and render their HTML reports."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from analyzer.analysis import analyze
from analyzer.report import html

PROGRAMS = Path(__file__).parent / "programs"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Analyzed:
    """A recorded program: its traces, findings document, kept database and report."""

    dir: Path
    traces: Path
    db: Path
    doc: dict
    html: str           # rendered with the database open
    report: Path        # the same page, on disk


def record(program: Path, workdir: Path, *args: str) -> Path:
    """Run `program` under the recorder (as `lockscope run` does) with cwd `workdir`."""
    traces = workdir / "traces"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "recorder", "--out", str(traces), "--stacks", "6", "--",
                    program.name, *args], cwd=workdir, env=env, check=True, timeout=60,
                   stdout=subprocess.DEVNULL)
    return traces


def analyzed(workdir: Path, program: Path, *args: str, copy_as: str | None = None) -> Analyzed:
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / (copy_as or program.name)
    shutil.copy(program, target)
    traces = record(target, workdir, *args)
    pages: dict = {}
    db = workdir / "trace.duckdb"
    doc = analyze([str(traces)], db=str(db),
                  on_result=lambda d, con: pages.update(html=html.render(d, con=con)))
    report = workdir / "report.html"
    report.write_text(pages["html"], encoding="utf-8")
    return Analyzed(workdir, traces, db, doc, pages["html"], report)


@pytest.fixture(scope="session")
def shop(tmp_path_factory) -> Analyzed:
    """tests/report/programs/shop.py: potential deadlock, long hold, acquire timeout, hot lock."""
    return analyzed(tmp_path_factory.mktemp("shop"), PROGRAMS / "shop.py")


@pytest.fixture(scope="session")
def xss(tmp_path_factory) -> Analyzed:
    """tests/report/programs/xss.py run from a file with markup in its name and argv."""
    return analyzed(tmp_path_factory.mktemp("xss"), PROGRAMS / "xss.py", "<script>window.__xss=6</script>",
                    copy_as="evil<svg onload=alert(7)>.py")
