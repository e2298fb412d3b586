"""Reading and checking trace files in the recorder tests.

Every loader here validates each record against docs/trace-format.schema.json and
checks the format's ordering rule (a definition precedes, in the same part, every
record that names it), so every test that reads a trace also checks the contract.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from functools import cache
from pathlib import Path

import jsonschema
import orjson

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "docs" / "trace-format.schema.json"

DEFINITION_KINDS = ("lock", "resource", "thread", "task", "segment")


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


_valid_shapes: set = set()


def _shape(rec: dict) -> tuple | None:
    """A key under which records validate alike: integers reduced to the classes the
    schema tells apart (negative, 0, 1, more: it only has minimum 0/1 and const 1)."""
    key = []
    for k, v in rec.items():
        if isinstance(v, bool) or v is None or isinstance(v, (str, float)):
            key.append((k, v))
        elif isinstance(v, int):
            key.append((k, -1 if v < 0 else min(v, 2)))
        else:
            return None  # nested values: always validate in full
    return tuple(key)


def validate(rec: dict, where: str = "record") -> None:
    """Assert that ``rec`` is valid against the trace-format JSON Schema."""
    shape = _shape(rec)
    if shape is not None and shape in _valid_shapes:
        return
    errors = sorted(_validator().iter_errors(rec), key=str)
    assert not errors, f"{where}: {rec} does not match the schema: {errors[0].message}"
    if shape is not None:
        _valid_shapes.add(shape)


def read_part(path: str | os.PathLike, allow_torn_tail: bool = False) -> list[dict]:
    """Parse one file; every line must be a valid record (the last one may be cut
    short when ``allow_torn_tail``: a killed process)."""
    data = Path(path).read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    if tail and not allow_torn_tail:
        raise AssertionError(f"{path}: last line has no newline: {tail[:80]!r}")
    records = []
    for no, line in enumerate(lines, 1):
        assert line, f"{path}:{no}: blank line"
        rec = orjson.loads(line)
        validate(rec, f"{path}:{no}")
        records.append(rec)
    if tail:
        try:
            orjson.loads(tail)
        except orjson.JSONDecodeError:
            pass  # a torn last line is what a reader must expect
        else:
            raise AssertionError(f"{path}: complete last record without newline")
    check_part(records, str(path))
    return records


def check_part(records: list[dict], where: str = "part") -> None:
    """A part starts with a header and defines every id before the first record naming it."""
    assert records, f"{where}: empty"
    assert records[0]["k"] == "header", f"{where}: first record is {records[0]['k']}"
    assert all(r["k"] != "header" for r in records[1:]), f"{where}: second header"
    defined: set[int] = set()
    sites: set[int] = set()
    for i, rec in enumerate(records):
        k = rec["k"]
        if k == "site":
            assert rec["id"] not in sites, f"{where}:{i + 1}: site {rec['id']} defined twice"
            sites.add(rec["id"])
        elif k in DEFINITION_KINDS:
            assert rec["id"] not in defined, f"{where}:{i + 1}: id {rec['id']} defined twice"
            if rec.get("site"):
                assert rec["site"] in sites, f"{where}:{i + 1}: site {rec['site']} not defined"
            if rec.get("user_site"):
                assert rec["user_site"] in sites, f"{where}:{i + 1}: user_site not defined"
            if k in ("thread", "task") and rec.get("parent"):
                assert rec["parent"] in defined, f"{where}:{i + 1}: parent not defined"
            defined.add(rec["id"])
        elif k == "ev":
            assert rec["th"] in defined, f"{where}:{i + 1}: thread {rec['th']} not defined"
            assert rec["obj"] in defined, f"{where}:{i + 1}: object {rec['obj']} not defined"
            if rec.get("site"):
                assert rec["site"] in sites, f"{where}:{i + 1}: site {rec['site']} not defined"
            if rec.get("task"):
                assert rec["task"] in defined, f"{where}:{i + 1}: task not defined"
        elif k == "name":
            assert rec["id"] in defined, f"{where}:{i + 1}: name before definition"
        elif k == "dropped" and rec.get("th"):
            assert rec["th"] in defined, f"{where}:{i + 1}: thread {rec['th']} not defined"
        elif k == "resync":
            assert rec["th"] in defined, f"{where}:{i + 1}: thread {rec['th']} not defined"
            for lk in rec["locks"]:
                assert lk["obj"] in defined, f"{where}:{i + 1}: object {lk['obj']} not defined"
                if lk.get("task"):
                    assert lk["task"] in defined, f"{where}:{i + 1}: task not defined"
        elif k == "dep":
            named = [rec["obj"], *(h["obj"] for h in rec["held"])]
            named += [x for a in rec["actors"] for x in (a["th"], a.get("task")) if x]
            assert all(x in defined for x in named), f"{where}:{i + 1}: dep names an undefined id"
            assert all(s in sites for s in [rec.get("site"), *(h.get("site") for h in rec["held"])] if s), \
                f"{where}:{i + 1}: dep names an undefined site"
        elif k == "hist":
            assert rec["obj"] in defined, f"{where}:{i + 1}: object {rec['obj']} not defined"
        elif k == "end":
            assert i == len(records) - 1, f"{where}:{i + 1}: records after end"


class Trace:
    """All records of the files of one process, with lookups used by the tests."""

    def __init__(self, paths: list[str], allow_torn_tail: bool = False) -> None:
        assert paths, "no trace files"
        self.paths = sorted(paths, key=_part_number)
        self.parts = [read_part(p, allow_torn_tail) for p in self.paths]
        runs = {part[0]["run"] for part in self.parts}
        assert len(runs) == 1, f"files of several runs: {runs}"
        for n, part in enumerate(self.parts):
            assert part[0]["part"] == n, f"{self.paths[n]}: part {part[0]['part']}, want {n}"
        self.header = self.parts[0][0]
        self.records = [r for part in self.parts for r in part]
        self.defs: dict[int, dict] = {}
        self.sites: dict[int, dict] = {}
        for r in self.records:
            if r["k"] in DEFINITION_KINDS:
                self.defs[r["id"]] = r
            elif r["k"] == "site":
                self.sites[r["id"]] = r
        for r in self.records:  # name records update definitions
            if r["k"] == "name":
                self.defs[r["id"]] = {**self.defs[r["id"]], "name": r["name"]}

    @property
    def events(self) -> list[dict]:
        return [r for r in self.records if r["k"] == "ev"]

    def objects(self, kind: str | None = None, name: str | None = None,
                type_: str | None = None) -> list[dict]:
        return [d for d in self.defs.values()
                if (kind is None or d["k"] == kind) and (name is None or d.get("name") == name)
                and (type_ is None or d.get("type") == type_)]

    def one(self, kind: str | None = None, name: str | None = None,
            type_: str | None = None) -> dict:
        found = self.objects(kind, name, type_)
        assert len(found) == 1, f"want one {kind} {name or type_}, found {found}"
        return found[0]

    def thread(self, name: str) -> dict:
        return self.one("thread", name)

    def evs(self, obj: int | None = None, th: int | None = None,
            op: str | None = None) -> list[dict]:
        return [e for e in self.events
                if (obj is None or e["obj"] == obj) and (th is None or e["th"] == th)
                and (op is None or e["op"] == op)]

    def ops(self, obj: int | None = None, th: int | None = None) -> Counter:
        return Counter(e["op"] for e in self.evs(obj, th))

    def site(self, ev_or_def: dict) -> tuple[str, int, str]:
        s = self.sites[ev_or_def["site"]]
        return s["file"], s["line"], s["func"]


def _part_number(path: str) -> int:
    stem = Path(path).name[: -len(".jsonl")]
    last = stem.rsplit(".", 1)
    return int(last[1]) if len(last) == 2 and last[1].isdigit() else 0
