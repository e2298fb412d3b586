"""Static checks that the scenario catalog and the scenario sources agree."""
from __future__ import annotations

import ast
import re

import pytest

from . import catalog

SCENARIOS = catalog.scenarios()
_LINE_REFS = re.compile(r"\blines?\s+(\d+(?:(?:,\s+|\s+and\s+)\d+)*)")


def docstring_lines(scenario: catalog.Scenario) -> set[int]:
    doc = ast.get_docstring(ast.parse(scenario.path.read_text(encoding="utf-8"))) or ""
    return {int(n) for group in _LINE_REFS.findall(doc) for n in re.findall(r"\d+", group)}


def test_every_scenario_file_is_catalogued() -> None:
    """Scenario programs are the modules here that label their locks with the recorder's name()."""
    label_import = re.compile(r"^\s+from recorder import name as label$", re.M)
    on_disk = {p.name for p in catalog.HERE.glob("*.py")
               if label_import.search(p.read_text(encoding="utf-8"))}
    assert on_disk == {s.file for s in SCENARIOS}


def test_ids_are_unique() -> None:
    ids = [s.id for s in SCENARIOS]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_expectations_are_well_formed(scenario: catalog.Scenario) -> None:
    for finding in scenario.expected:
        assert finding.kind in catalog.KINDS
        assert finding.severity in {"critical", "error", "warning", "info"}
        assert finding.locks or finding.resource, "a finding is about a lock or a resource"
        assert set(finding.locks) <= set(scenario.locks)
        assert finding.sites and all(site.file == scenario.file for site in finding.sites)
        assert finding.actors, "every finding names the threads/tasks involved"
        for step in finding.steps:
            assert step.at.func != "<module>"
    assert not scenario.tolerated & catalog.STATISTICS
    assert scenario.tolerated <= set(catalog.KINDS)
    if scenario.variant in {"fixed", "ok"}:
        assert scenario.quiet


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_docstring_quotes_the_catalogued_lines(scenario: catalog.Scenario) -> None:
    """The scenario's docstring states the expected findings with the current line numbers."""
    src = catalog.Source(scenario.file)
    quoted = docstring_lines(scenario)
    stale = quoted - set(src.marks.values())
    assert not stale, f"docstring quotes unmarked lines {sorted(stale)}"
    needed = {site.line for f in scenario.expected for site in f.sites}
    needed |= {scenario.locks[name].line for f in scenario.expected for name in f.locks}
    assert needed <= quoted, f"docstring does not quote lines {sorted(needed - quoted)}"


def test_sites_resolve_to_functions() -> None:
    inner, outer = catalog.by_id("cache_reentry-bug").expected[0].sites
    assert (outer.func, inner.func) == ("get_or_compute", "compute_and_cache")
    forks = catalog.by_id("dining_philosophers-bug").locks
    assert forks["fork-0"] == forks["fork-2"], "the three forks share one creation line"
