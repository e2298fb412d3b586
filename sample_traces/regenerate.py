"""Regenerate the sample traces and their index: ``python sample_traces/regenerate.py [--index] [ID ...]``.

Runs each scenario of ``tests/scenarios/catalog.py`` under the recorder
(``lockscope run``) and writes its trace to ``sample_traces/<id>.jsonl`` (for
example ``lock_order_threads-bug.jsonl``): one file per run, with a stable name
instead of the recorder's host/pid/time one. Paths inside this checkout (call
sites, stacks, the header's argv and cwd) are rewritten relative to the
repository root, so the samples do not depend on where they were recorded; the
records are otherwise exactly what the recorder wrote. With no arguments every
scenario is recorded and traces of scenarios no longer in the catalog are removed.
Then every committed trace is analyzed and ``sample_traces/README.md`` rewritten
from the results (``--index``: only that). Exit status 1 if a scenario did not
exit as the catalog says.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.scenarios import catalog  # noqa: E402
from tests.scenarios.recording import record  # noqa: E402
from tests.scenarios.sample_index import index_markdown  # noqa: E402


def relativize(value, root: str):
    """``value`` with every string under ``root`` made relative to it (``root`` itself: ".")."""
    if isinstance(value, str):
        if value == root:
            return "."
        return value[len(root) + 1:] if value.startswith(root + "/") else value
    if isinstance(value, dict):
        return {key: relativize(item, root) for key, item in value.items()}
    if isinstance(value, list):
        return [relativize(item, root) for item in value]
    return value


def write_sample(trace: Path, target: Path) -> None:
    root = str(HERE.parent)
    with trace.open("rb") as src, target.open("wb") as out:
        for line in src:
            out.write(orjson.dumps(relativize(orjson.loads(line), root)) + b"\n")


def regenerate(ids: list[str]) -> int:
    chosen = [catalog.by_id(i) for i in ids] if ids else list(catalog.scenarios())
    failed = 0
    with tempfile.TemporaryDirectory(prefix="lockscope-samples-") as tmp:
        for scenario in chosen:
            run = record(scenario, Path(tmp) / scenario.id)
            if run.returncode != scenario.exit_code or len(run.traces) != 1:
                failed += 1
                print(f"FAILED {scenario.id}: exit {run.returncode} (expected "
                      f"{scenario.exit_code}), {len(run.traces)} trace files\n{run.stderr}",
                      file=sys.stderr)
                continue
            target = HERE / f"{scenario.id}.jsonl"
            write_sample(run.trace, target)
            lines = target.read_bytes().count(b"\n")
            print(f"{target.name:45} {lines:6} records {target.stat().st_size / 1024:7.1f} KiB")
    if not ids:
        wanted = {f"{s.id}.jsonl" for s in catalog.scenarios()}
        for stale in sorted(HERE.glob("*.jsonl")):
            if stale.name not in wanted:
                stale.unlink()
                print(f"removed {stale.name} (not in the catalog)")
    return 1 if failed else 0


def write_index() -> None:
    from analyzer import analyze

    reports = {s.id: analyze([str(HERE / f"{s.id}.jsonl")]) for s in catalog.scenarios()}
    (HERE / "README.md").write_text(index_markdown(reports), encoding="utf-8")
    print("wrote README.md")


def main(argv: list[str]) -> int:
    index_only = "--index" in argv
    status = 0 if index_only else regenerate([a for a in argv if a != "--index"])
    write_index()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
