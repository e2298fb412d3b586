"""Reading and checking trace files in the scenario tests."""
from __future__ import annotations

import importlib.util
import json
from collections import defaultdict
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator

from .catalog import Scenario
from .recording import REPO

SCHEMA_PATH = REPO / "docs" / "trace-format.schema.json"
#: True once the asyncio layer of the recorder exists (asyncio locks and tasks are traced).
ASYNCIO_TRACED = importlib.util.find_spec("recorder._asyncio") is not None
DEFINITIONS = {"lock", "resource", "thread", "task", "segment"}


@cache
def validator_for(kind: str) -> Draft202012Validator:
    """A validator for one record kind (faster and clearer errors than the schema's oneOf)."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    if kind in schema["$defs"] and kind not in {"id", "ts", "optid", "optstr"}:
        schema = {k: v for k, v in schema.items() if k != "oneOf"} | {"$ref": f"#/$defs/{kind}"}
    return Draft202012Validator(schema)


def read_trace(path: Path) -> list[dict]:
    raw = path.read_bytes()
    assert raw.endswith(b"\n"), f"{path.name}: last line is not terminated"
    records = []
    for lineno, line in enumerate(raw.decode("utf-8").split("\n")[:-1], start=1):
        assert line, f"{path.name}:{lineno}: blank line"
        record = json.loads(line)
        assert isinstance(record, dict), f"{path.name}:{lineno}: not an object"
        records.append(record)
    return records


def assert_valid_trace(path: Path) -> list[dict]:
    """Parse and validate a whole trace file; return its records."""
    records = read_trace(path)
    assert records[0]["k"] == "header", "the first record is the header"
    assert (records[0]["format"], records[0]["version"]) == ("lockscope-trace", 1)
    for lineno, record in enumerate(records, start=1):
        errors = sorted(validator_for(record.get("k", "")).iter_errors(record), key=str)
        assert not errors, f"{path.name}:{lineno}: {errors[0].message} in {record}"
    defined: set[int] = set()
    sites: set[int] = set()
    for lineno, record in enumerate(records, start=1):
        kind = record["k"]
        if kind == "site":
            sites.add(record["id"])
        elif kind in DEFINITIONS:
            defined.add(record["id"])
            assert record.get("site") is None or record["site"] in sites, f"line {lineno}"
        elif kind == "name":
            assert record["id"] in defined, f"line {lineno}: name before definition"
        elif kind == "ev":
            assert record["obj"] in defined, f"line {lineno}: event on undefined {record['obj']}"
            assert record["th"] in defined, f"line {lineno}: event by undefined thread"
            assert record.get("site") is None or record["site"] in sites, f"line {lineno}"
    assert records[-1]["k"] == "end", "a run that exits cleanly ends with an end record"
    return records


class Trace:
    """Just enough of a trace to ask which actor did what where."""

    def __init__(self, records: list[dict]) -> None:
        self.sites = {r["id"]: r for r in records if r["k"] == "site"}
        self.objects = {r["id"]: dict(r) for r in records if r["k"] in DEFINITIONS}
        for r in records:
            if r["k"] == "name":
                self.objects[r["id"]]["name"] = r["name"]
        self.events = [r for r in records if r["k"] == "ev"]

    def named(self, name: str) -> list[dict]:
        return [o for o in self.objects.values() if o.get("name") == name]

    def creation_line(self, obj: dict) -> tuple[str, int] | None:
        site = self.sites.get(obj.get("site"))
        return (site["file"], site["line"]) if site else None

    def actor_names(self, ev: dict) -> set[str]:
        """The thread or task that did ``ev``; a wait done by an anonymous child task
        (``asyncio.wait_for``'s inner task before Python 3.12) also counts for its parent."""
        actor = self.objects.get(ev.get("task") or ev["th"], {})
        names = {actor.get("name")}
        if actor.get("k") == "task" and str(actor.get("name")).startswith("Task-"):
            names.add(self.objects.get(actor.get("parent"), {}).get("name"))
        return names

    def ops_at(self, actor: str, line: int, file: str) -> dict[str, set[str]]:
        """Ops (with the name of their object) that ``actor`` did at ``file:line``."""
        found: dict[str, set[str]] = defaultdict(set)
        for ev in self.events:
            site = self.sites.get(ev.get("site"))
            if site and site["line"] == line and site["file"].rsplit("/", 1)[-1] == file \
                    and actor in self.actor_names(ev):
                found[ev["op"]].add(self.objects.get(ev["obj"], {}).get("name"))
        return found


def assert_catalogued_events(scenario: Scenario, records: list[dict]) -> None:
    """The named locks and the steps' acquires/waits of the catalog are in the trace."""
    trace = Trace(records)
    for name, created in scenario.locks.items():
        objects = trace.named(name)
        assert objects, f"no lock or resource named {name!r} in the trace"
        lines = {trace.creation_line(o) for o in objects}
        assert any(f and f[0].rsplit("/", 1)[-1] == scenario.file and f[1] == created.line for f in lines), \
            f"{name!r} created at {lines}, expected {created}"
    for finding in scenario.expected:
        for step in finding.steps:
            for held in step.held:
                ops = trace.ops_at(step.actor, held.at.line, scenario.file)
                assert held.lock in ops.get("acquire", set()), \
                    f"{step.actor} did not take {held.lock} at {held.at}: {dict(ops)}"
            ops = trace.ops_at(step.actor, step.at.line, scenario.file)
            asked = set().union(*(ops.get(op, set()) for op in
                                  ("acquire", "wait", "timeout", "cancel", "wait-begin")))
            assert step.wants in asked or "join" in ops, \
                f"{step.actor} did not ask for {step.wants} at {step.at}: {dict(ops)}"
