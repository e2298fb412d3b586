"""Run a catalogued scenario under the real recorder (``lockscope run``) and collect its trace."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .catalog import Scenario

REPO = Path(__file__).resolve().parents[2]
#: ``lockscope run`` exactly as the console script runs it, with this interpreter.
LOCKSCOPE = [sys.executable, "-c", "from analyzer.cli import main; main()"]


@dataclass
class RecordedRun:
    scenario: Scenario
    returncode: int
    stdout: str
    stderr: str
    traces: list[Path]

    @property
    def trace(self) -> Path:
        """The run's one trace file (scenarios are single-process and small)."""
        if len(self.traces) != 1:
            raise AssertionError(f"{self.scenario.id}: expected one trace file, got "
                                 f"{[p.name for p in self.traces]}")
        return self.traces[0]


def record(scenario: Scenario, out_dir: Path, timeout: float | None = None,
           mode: str | None = None) -> RecordedRun:
    """Run ``lockscope run --out OUT_DIR tests/scenarios/<file>`` from the repository root
    (with ``--mode MODE`` when given).

    The script path is given relative to the root, so the sites in the trace read
    ``tests/scenarios/<file>`` whatever the checkout's location. Raises
    ``TimeoutError`` (after killing the whole process group) if it does not finish.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.glob("*.jsonl"))
    script = scenario.path.relative_to(REPO).as_posix()
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0")
    env.pop("LOCKSCOPE_OUT", None)
    env.pop("LOCKSCOPE_MODE", None)
    options = ["--mode", mode] if mode else []
    proc = subprocess.Popen([*LOCKSCOPE, "run", "--out", str(out_dir), *options, script], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout or scenario.timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise TimeoutError(f"{scenario.id} did not finish under the recorder") from None
    traces = sorted(set(out_dir.glob("*.jsonl")) - before)
    return RecordedRun(scenario, proc.returncode, stdout, stderr, traces)
