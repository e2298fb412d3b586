"""The terminal summary at 80 and 200 columns, against golden files.

The golden files are what `terminal.render` prints for committed sample traces
(`sample_traces/`). After an intended change of the output, regenerate them with

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/report/test_terminal.py

and review the diff. Besides the exact text, the layout rules are checked on
every sample: no line wider than the console, every code site and lock label
printed whole (never cut across lines), and every finding in exactly one place.
"""
from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

from analyzer.analysis import analyze
from analyzer.report import terminal
from analyzer.report.html.format import LockNames

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden" / "terminal"
SAMPLES = ["lock_order_threads-bug", "deadlock_threads-bug", "dining_philosophers-bug", "event_under_lock_async-bug",
           "join_under_lock_threads-bug", "guarded_inversion-gate", "stuck_waiter-bug", "cache_reentry-bug",
           "deadlock_async-bug", "busy_service-ok"]
WIDTHS = (80, 200)
_docs: dict[str, dict] = {}


def doc_of(sample: str) -> dict:
    if sample not in _docs:
        _docs[sample] = analyze([str(ROOT / "sample_traces" / f"{sample}.jsonl")])
    return _docs[sample]


def printed(doc: dict, width: int) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=False, highlight=False,
                      legacy_windows=False, emoji=False)
    terminal.render(doc, console)
    return out.getvalue()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("sample", SAMPLES)
def test_golden(sample, width):
    text = printed(doc_of(sample), width)
    golden = GOLDEN / f"{sample}-{width}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"no golden file {golden.name}: run with UPDATE_GOLDEN=1"
    assert text == golden.read_text(encoding="utf-8")


def _whole_tokens(doc: dict) -> set[str]:
    """Sites and lock labels of the findings shown with their steps: each must appear
    unbroken on one line."""
    names = LockNames(doc)
    tokens: set[str] = set()
    for f in doc["findings"]:
        if f["severity"] not in terminal.DETAILED:
            continue  # one line each
        for s in f["steps"]:
            tokens.add(s["site"])
            tokens.add(names.label((s["requests"] or {}).get("lock"), (s["requests"] or {}).get("name")))
            for h in s["holds"]:
                tokens.update((h["acquired_at"], names.label(h["lock"], h["name"])))
    return {t for t in tokens if t}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("sample", SAMPLES)
def test_layout_rules(sample, width):
    doc = doc_of(sample)
    text = printed(doc, width)
    lines = text.splitlines()
    assert max(cell_len(line) for line in lines) <= width
    t = doc["trace"]
    for part in (f"{t['events']:,} event", f"{t['locks']:,} lock", "traced"):  # the header breaks between parts only
        assert any(part in line for line in lines[:3]), (part, lines[:3])
    for token in _whole_tokens(doc):
        assert any(token in line for line in lines), f"{token!r} is cut across lines at {width} columns"
    # one place per finding: its id opens exactly one panel, info line or table row; a
    # finding folded under another is named in its main finding's 'also:' line (a folded
    # hot-lock also tags its row of the contended-locks table)
    for f in doc["findings"]:
        fid = re.escape(f["id"])
        places = [ln for ln in lines if re.match(rf"^(╭─ +{fid} |  {fid} )", ln)]
        if f.get("folded_into"):
            assert len(places) == (1 if f["kind"] == "hot-lock" else 0), (f["id"], places)
            flowing = " ".join(" ".join(_content(ln) for ln in lines).split())  # wrapped lines joined
            assert f"({f['id']} {f['kind']})" in flowing, f["id"]
            continue
        assert len(places) == 1, (f["id"], places)
        assert sum(ln.count(f["title"]) for ln in lines) <= 1  # titles are never repeated
    assert "Findings" not in lines  # no summary table repeating the panels


def _content(line: str) -> str:
    """A printed line without the panel's borders."""
    return line.removeprefix("│ ").removesuffix(" │").rstrip()


@pytest.mark.parametrize("width", WIDTHS)
def test_steps_follow_the_sentence_that_introduces_them(width):
    """The cycle's steps come right after the sentence ending in ':' (it used to dangle)."""
    lines = [_content(ln) for ln in printed(doc_of("lock_order_threads-bug"), width).splitlines()]
    i = next(i for i, ln in enumerate(lines) if ln.endswith("could run at the same time:"))
    assert lines[i + 1].startswith("  thread login")
    assert "thread rename" in "\n".join(lines[i + 2:i + 6])


def test_long_paths_and_names_are_never_cut(tmp_path):
    """Sites longer than a step line go on lines of their own, indented less when they must."""
    from tests.analyzer.tracebuilder import Trace

    t = Trace(cwd="/srv/app")
    a = t.thread("worker-thread-with-a-rather-long-name", parent=t.main)
    b = t.thread("another-worker", parent=t.main)
    lock, shards = t.lock("inventory"), t.lock("inventory_reservation_lock_for_warehouse_shards")
    t.nested(a, [lock, shards], [10, 11])
    t.nested(b, [shards, lock], [20, 21])
    t.end(a)
    t.end(b)
    deep = "services/inventory/reservations/handlers/bulk_reservation_handler.py"  # 68 characters
    for r in t.records:
        if r["k"] == "site":
            r["file"] = r["file"].replace("app.py", deep)
    doc = analyze([str(t.write(tmp_path / "long.jsonl"))])
    assert [f["kind"] for f in doc["findings"]] == ["potential-deadlock"]
    for width in (80, 120):
        lines = printed(doc, width).splitlines()
        assert max(cell_len(line) for line in lines) <= width
        for line_no in (10, 11, 20, 21, 104):  # the sites of the steps and the locks' creation sites
            assert any(f"{deep}:{line_no}" in line for line in lines), (width, line_no)
        assert any("requests inventory_reservation_lock_for_warehouse_shards" in line for line in lines)
