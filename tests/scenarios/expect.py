"""Compare the analyzer's findings (docs/findings-format.md) with a catalogued scenario.

A finding matches an expectation when kind, severity and lock names are equal,
each lock was created on the catalogued line, every catalogued site is cited
(the cited sites are every ``"path:line"`` string anywhere in the finding,
compared by file name and line), every catalogued actor is named, and — when
the finding has ``steps`` — each catalogued step is one of them: same actor
(``actor.name``), same locks held where they were taken (``holds[].name`` /
``acquired_at``), the same thing requested, at the same ``site``. A guarded
cycle must also give the catalogued ``details.reason`` and name its gate lock.
The end-to-end tests call :func:`problems` and assert it is empty.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from .catalog import STATISTICS, Expected, Scenario, Step

_SITE = re.compile(r"^(?P<path>.+\.py):(?P<line>\d+)$")


@dataclass(frozen=True)
class Observed:
    """What a reported finding says, reduced to what the catalog can assert."""

    kind: str
    severity: str
    locks: tuple[str, ...]
    lock_created: dict[str, set[tuple[str, int]]]
    sites: frozenset[tuple[str, int]]
    strings: frozenset[str]
    raw: dict

    def describe(self) -> str:
        sites = ", ".join(f"{f}:{n}" for f, n in sorted(self.sites))
        return f"{self.kind}/{self.severity} locks={list(self.locks)} sites=[{sites}]"


def _strings(value, skip_created_at: bool = True) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if not (skip_created_at and key == "created_at"):
                yield from _strings(item, skip_created_at)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item, skip_created_at)


def _site(text: str) -> tuple[str, int] | None:
    match = _SITE.match(text)
    if not match:
        return None
    return PurePosixPath(match["path"].replace("\\", "/")).name, int(match["line"])


def observe(finding: dict) -> Observed:
    """Reduce one finding of the analyzer's JSON to an :class:`Observed`."""
    locks = finding.get("locks") or []
    strings = frozenset(_strings({k: v for k, v in finding.items() if k != "locks"}))
    lock_strings = frozenset(_strings(locks))
    created: dict[str, set[tuple[str, int]]] = {}
    for lock in locks:
        site = _site(lock.get("created_at") or "") if isinstance(lock, dict) else None
        if site:
            created.setdefault(str(lock.get("name")), set()).add(site)
    return Observed(
        kind=finding.get("kind", ""),
        severity=finding.get("severity", ""),
        locks=tuple(sorted(str(lock.get("name")) for lock in locks if isinstance(lock, dict))),
        lock_created=created,
        sites=frozenset(s for s in map(_site, strings | lock_strings) if s),
        strings=strings,
        raw=finding,
    )


def _step_problem(step: Step, reported: list) -> str | None:
    """Why no step in ``reported`` is the catalogued ``step`` (None when one is)."""
    want_holds = {(h.lock, (h.at.file, h.at.line)) for h in step.held}
    for rep in reported:
        if not isinstance(rep, dict):
            continue
        actor = rep.get("actor")
        actor = actor.get("name") if isinstance(actor, dict) else actor
        holds = {(h.get("name"), _site(h.get("acquired_at") or ""))
                 for h in rep.get("holds") or [] if isinstance(h, dict)}
        asked = set(_strings({k: v for k, v in rep.items() if k not in ("holds", "actor")}))
        if actor == step.actor and _site(str(rep.get("site"))) == (step.at.file, step.at.line) \
                and step.wants in asked and holds == want_holds:
            return None
    held = ", ".join(f"{h.lock} (taken at line {h.at.line})" for h in step.held) or "nothing"
    return (f"no step where {step.actor} holds {held} and requests {step.wants} "
            f"at line {step.at.line}")


def _mismatch(expected: Expected, scenario: Scenario, got: Observed) -> str | None:
    """Why ``got`` is not ``expected`` (None when it is)."""
    if got.kind != expected.kind or got.locks != tuple(sorted(expected.locks)):
        return "different kind or locks"
    if got.severity != expected.severity:
        return f"severity {got.severity}, expected {expected.severity}"
    wanted = {(site.file, site.line) for site in expected.sites}
    if not wanted <= got.sites:
        missing = ", ".join(f"{f}:{n}" for f, n in sorted(wanted - got.sites))
        return f"does not cite {missing}"
    for name in expected.locks:
        created = (scenario.locks[name].file, scenario.locks[name].line)
        if created not in got.lock_created.get(name, set()):
            return f"lock {name!r} created at {sorted(got.lock_created.get(name, ()))}, " \
                   f"expected {created[0]}:{created[1]}"
    for actor in expected.actors:
        if actor not in got.strings:
            return f"does not name {actor!r}"
    if expected.resource and not any(expected.resource in text for text in got.strings):
        return f"does not name the resource {expected.resource!r}"
    if expected.steps and isinstance(got.raw.get("steps"), list):
        for step in expected.steps:
            problem = _step_problem(step, got.raw["steps"])
            if problem:
                return problem
    if expected.reason:
        details = got.raw.get("details") or {}
        if details.get("reason") != expected.reason:
            return f"reason {details.get('reason')!r}, expected {expected.reason!r}"
    if expected.guard and not any(f"'{expected.guard}'" in text for text in got.strings):
        return f"does not name the gate lock {expected.guard!r}"
    return None


def _main_kind(finding: dict, by_id: dict) -> str | None:
    """The kind of the finding that ``finding`` is folded under (None: it is a main finding)."""
    main = by_id.get(finding["folded_into"]) if finding.get("folded_into") else None
    return main.get("kind") if main else None


def problems(scenario: Scenario, findings: list[dict]) -> list[str]:
    """Every way ``findings`` differ from what the catalog expects for ``scenario``."""
    observed = [observe(f) for f in findings]
    by_id = {f.get("id"): f for f in findings}
    out: list[str] = []
    used: set[int] = set()
    for expected in scenario.expected:
        same = [i for i, got in enumerate(observed)
                if got.kind == expected.kind and got.locks == tuple(sorted(expected.locks))]
        matching = [i for i in same if _mismatch(expected, scenario, observed[i]) is None]
        if len(matching) == 1:
            used.add(matching[0])
            under = _main_kind(findings[matching[0]], by_id)
            if under != expected.folded_under:
                out.append(f"{expected.kind} on {list(expected.locks)} folded under {under or 'nothing'}, "
                           f"expected under {expected.folded_under or 'nothing'}")
        elif matching:
            out.append(f"{expected.kind} on {list(expected.locks)} reported {len(matching)} times")
            used.update(matching)
        elif same:
            out.append(f"{expected.kind} on {list(expected.locks)}: "
                       f"{_mismatch(expected, scenario, observed[same[0]])}")
            used.update(same)
        else:
            out.append(f"missing {expected.kind} on {list(expected.locks)}")
    allowed = scenario.allowed_kinds()
    for i, got in enumerate(observed):
        if i in used or got.kind in STATISTICS:
            continue
        if got.kind not in allowed or got.kind in {e.kind for e in scenario.expected}:
            out.append(f"unexpected {got.describe()}")
        elif not findings[i].get("folded_into"):  # tolerated: a consequence of the same bug
            out.append(f"{got.describe()} is not folded under the finding of its bug")
    return out
