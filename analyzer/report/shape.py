"""Check that a findings document read back from JSON has the shape the reports read.

`lockscope report` renders a findings JSON file that may have been edited or
truncated; a field of the wrong type must give a one-line message naming it, not
a traceback from deep inside the HTML renderer.
"""
from __future__ import annotations

from ..errors import UnusableInput

# Per finding: the fields the reports read, and the JSON type each must have when present.
_FINDING_FIELDS = {"id": str, "kind": str, "severity": str, "title": str, "message": str,
                   "locks": list, "threads": list, "sites": list, "steps": list, "details": dict,
                   "related": list, "folded_into": str}
_LIST_OF_OBJECTS = ("locks", "threads", "sites", "steps")
_STEP_OBJECTS = ("actor", "requests", "signals")
_STEP_LISTS = ("holds", "actors")


def _type_name(t: type) -> str:
    return {str: "a string", list: "a list", dict: "an object", int: "an integer"}[t]


def check(doc: dict) -> None:
    """Raise UnusableInput naming the first field whose type the reports cannot read."""
    for key, want in (("findings", list), ("trace", dict), ("locks", list), ("summary", dict),
                      ("options", dict)):
        if key in doc and doc[key] is not None and not isinstance(doc[key], want):
            raise UnusableInput(f"malformed findings document: {key} is not {_type_name(want)}")
    for i, finding in enumerate(doc.get("findings") or []):
        where = f"findings[{i}]"
        if not isinstance(finding, dict):
            raise UnusableInput(f"malformed findings document: {where} is not an object")
        for key, want in _FINDING_FIELDS.items():
            value = finding.get(key)
            if value is not None and not isinstance(value, want):
                raise UnusableInput(f"malformed findings document: {where}.{key} is not {_type_name(want)}")
        for key in _LIST_OF_OBJECTS:
            for j, item in enumerate(finding.get(key) or []):
                if not isinstance(item, dict):
                    raise UnusableInput(f"malformed findings document: {where}.{key}[{j}] is not an object")
        for j, step in enumerate(finding.get("steps") or []):
            _check_step(step, f"{where}.steps[{j}]")
    for i, lock in enumerate(doc.get("locks") or []):
        if not isinstance(lock, dict):
            raise UnusableInput(f"malformed findings document: locks[{i}] is not an object")


def _check_step(step: dict, where: str) -> None:
    for key in _STEP_OBJECTS:
        if step.get(key) is not None and not isinstance(step[key], dict):
            raise UnusableInput(f"malformed findings document: {where}.{key} is not an object")
    for key in _STEP_LISTS:
        value = step.get(key)
        if value is None:
            continue
        if not isinstance(value, list):
            raise UnusableInput(f"malformed findings document: {where}.{key} is not a list")
        for j, item in enumerate(value):
            if not isinstance(item, dict):
                raise UnusableInput(f"malformed findings document: {where}.{key}[{j}] is not an object")
