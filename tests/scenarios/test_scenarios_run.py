"""Every scenario, bug and fixed, runs to completion with plain Python (no recorder)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from . import catalog


def plain_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LOCKSCOPE_OUT", None)  # never record from this test
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@pytest.mark.parametrize("scenario", catalog.scenarios(), ids=lambda s: s.id)
def test_scenario_runs_and_exits_in_time(scenario: catalog.Scenario) -> None:
    try:
        proc = subprocess.run([sys.executable, str(scenario.path)], capture_output=True,
                              text=True, timeout=scenario.timeout_s, env=plain_env(),
                              cwd=scenario.path.parent)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{scenario.file} did not finish within {scenario.timeout_s} s")
    assert proc.returncode == scenario.exit_code, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
