"""Helpers for the asyncio recorder tests: record into a temporary directory and
read the records back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import recorder


class Trace:
    """A recording into ``out_dir``; ``stop()`` returns the parsed records."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._records: list[dict] | None = None
        recorder.start(out_dir, flush_interval=30)

    def stop(self) -> list[dict]:
        if self._records is None:
            files = recorder.stop()
            self._records = [json.loads(line) for f in files
                             for line in Path(f).read_text().splitlines()]
            check_references(self._records)
        return self._records

    # ---- views (all stop the recording first)

    @property
    def records(self) -> list[dict]:
        return self.stop()

    def defs(self, kind: str) -> dict[int, dict]:
        return {r["id"]: r for r in self.records if r["k"] == kind}

    def events(self, obj: int | None = None, op: str | None = None) -> list[dict]:
        """Events in time order (as the format says readers order them: ts, then line)."""
        evs = [r for r in self.records if r["k"] == "ev"
               and (obj is None or r["obj"] == obj) and (op is None or r["op"] == op)]
        return sorted(evs, key=lambda r: r["ts"])

    def tasks_named(self) -> dict[str, dict]:
        return {r["name"]: r for r in self.defs("task").values()}

    def site_of(self, ev: dict) -> tuple[str, int, str]:
        s = self.defs("site")[ev["site"]]
        return Path(s["file"]).name, s["line"], s["func"]

    def obj_id(self, obj: object) -> int:
        return obj._ls_id  # type: ignore[attr-defined]


def check_references(records: list[dict]) -> None:
    """Every id a record names was defined earlier in the file (the format's rule),
    and the file validates against the JSON Schema."""
    import jsonschema

    schema = json.loads((Path(__file__).parents[2] / "docs" / "trace-format.schema.json")
                        .read_text())
    validator = jsonschema.Draft202012Validator(schema)
    defined: set[int] = set()
    sites: set[int] = set()
    for rec in records:
        validator.validate(rec)
        k = rec["k"]
        if k == "site":
            sites.add(rec["id"])
            continue
        if rec.get("site"):
            assert rec["site"] in sites, rec
        if k == "ev":
            for key in ("obj", "task", "th"):
                if rec.get(key) is not None:
                    assert rec[key] in defined, (key, rec)
        elif k in ("task", "lock", "resource", "thread"):
            for key in ("parent", "owner", "lock", "th"):
                if rec.get(key) is not None and not (
                        key == "owner" and (k == "lock" or not rec["type"].startswith("asyncio."))):
                    assert rec[key] in defined, (key, rec)
            defined.add(rec["id"])
        elif k == "segment":
            defined.add(rec["id"])


@pytest.fixture
def trace(tmp_path: Path):
    t = Trace(tmp_path / "traces")
    try:
        yield t
    finally:
        t.stop()
