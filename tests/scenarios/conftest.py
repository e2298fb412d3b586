"""Fixtures shared by the scenario tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from .catalog import Scenario
from .recording import REPO, RecordedRun, record


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory):
    """``recorded(scenario)``: the scenario's run under the recorder, recorded once per session."""
    runs: dict[str, RecordedRun] = {}
    root: Path = tmp_path_factory.mktemp("scenario-traces")

    def get(scenario: Scenario) -> RecordedRun:
        if scenario.id not in runs:
            runs[scenario.id] = record(scenario, root / scenario.id)
        return runs[scenario.id]

    return get


@pytest.fixture(scope="session")
def sample_report():
    """``sample_report(scenario)``: the analyzer's document for the committed sample, computed once."""
    from analyzer import analyze

    docs: dict[str, dict] = {}

    def get(scenario: Scenario) -> dict:
        if scenario.id not in docs:
            docs[scenario.id] = analyze([str(REPO / "sample_traces" / f"{scenario.id}.jsonl")])
        return docs[scenario.id]

    return get
