"""The README's example output is what its command prints.

The block after the `<!-- example-output: COMMAND -->` marker in README.md is the
terminal output of COMMAND run from the repository root at 80 columns. After an
intended change of the output, rewrite it with

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/report/test_readme_example.py

The comparison normalises only timing numbers ('302 ms', '13.2 µs') and the
padding around them, so a re-recorded sample trace does not break it.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- example-output: (?P<cmd>[^>]*?) -->\n```text\n)(?P<out>.*?)(```)", re.S)
TIMING = re.compile(r"\d+(?:\.\d+)? ?(?:ns|µs|ms|s|min)\b")


def run(command: str) -> subprocess.CompletedProcess:
    """`command` (starting with `lockscope`) as the console script, from the repository root, 80 columns."""
    args = shlex.split(command)
    assert args[0] == "lockscope"
    env = dict(os.environ, COLUMNS="80", LINES="50", PYTHONPATH=str(ROOT))
    for name in ("LOCKSCOPE_OUT", "FORCE_COLOR", "NO_COLOR", "TERM"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-c", "from analyzer.entry import main; main()", *args[1:]],
                          cwd=ROOT, env=env, capture_output=True, text=True, encoding="utf-8", timeout=120)


def normalised(text: str) -> list[str]:
    return [re.sub(r" +", " ", TIMING.sub("<t>", line)).rstrip() for line in text.splitlines()]


def test_readme_example_output_is_what_the_command_prints():
    readme = README.read_text(encoding="utf-8")
    m = BLOCK.search(readme)
    assert m, "README.md has no <!-- example-output: ... --> block"
    result = run(m["cmd"])
    assert result.returncode == 1, result.stderr  # the README says it exits 1: a potential deadlock
    assert result.stderr == ""
    if os.environ.get("UPDATE_GOLDEN"):
        README.write_text(readme[:m.start("out")] + result.stdout + readme[m.end("out"):], encoding="utf-8")
        readme = README.read_text(encoding="utf-8")
        m = BLOCK.search(readme)
    assert normalised(m["out"]) == normalised(result.stdout)
