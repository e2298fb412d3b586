"""The HTML report's sentences agree with each other and with the numbers: a wait
that never ended is never called ended, no heading stands over nothing, and the
duration of a hang is shown. Checked on the committed deadlock and stuck-waiter
sample traces (both programs exit with threads still blocked) and on every
sample for the generic rules."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from analyzer.analysis import analyze
from analyzer.report import html

from .pageparse import parse

ROOT = Path(__file__).resolve().parents[2]
_pages: dict[str, tuple[dict, str]] = {}


def report(sample: str) -> tuple[dict, str]:
    """(findings document, HTML page rendered with the database open) of a sample trace."""
    if sample not in _pages:
        pages: dict = {}
        doc = analyze([str(ROOT / "sample_traces" / f"{sample}.jsonl")],
                      on_result=lambda d, con: pages.update(html=html.render(d, con=con, plotlyjs="cdn")))
        _pages[sample] = (doc, pages["html"])
    return _pages[sample]


def article_text(page_html: str, fid: str) -> str:
    """The visible text of one finding's section (a folded finding's: its part of its main
    finding's section), cells separated by ' | '."""
    m = (re.search(rf'<article class="finding [a-z]+" id="{fid}">.*?</article>', page_html, re.S)
         or re.search(rf'<div class="folded-finding" id="{fid}">.*?(?=<div class="folded-finding"|</details>)',
                      page_html, re.S))
    assert m, fid
    return parse(m.group(0).replace("</td>", " | </td>").replace("</th>", " | </th>")).text


def test_deadlock_that_never_ended_says_so_once():
    doc, page = report("deadlock_threads-bug")
    text = article_text(page, "F1")
    assert doc["findings"][0]["details"]["ended"] is False
    assert "It never ended: they were still blocked when the trace ended." in text
    assert "Ended | no — still blocked when the trace ended" in text
    assert "Ended | yes" not in text
    assert "Blocked for | 1.00 s, until the trace ended" in text  # the hang's duration
    assert "for at least 1.00 s" in text


def test_stalled_wait_is_not_called_ended_and_names_what_it_waited_for():
    doc, page = report("stuck_waiter-bug")
    assert doc["findings"][0]["details"]["ended"] == "end-of-trace"
    text = article_text(page, "F1")
    assert "Ended | no — still blocked when the trace ended" in text
    assert "Ended | yes" not in text
    assert "worker (thread) waited for threading.Event shutdown at tests/scenarios/stuck_waiter_bug.py:27 " \
           "and was still waiting when the trace ended, 351 ms later." in text
    assert "Blocked for | 351 ms, until the trace ended" in text
    run = doc["trace"]["processes"][0]["run"]
    assert run not in text  # the resource is named, not given by its id


def test_waited_for_locks_are_not_said_to_be_unwaited():
    """Both deadlocked locks were contended (100 %), but no wait ended: say that, not 'no lock was waited for'."""
    doc, page = report("deadlock_threads-bug")
    assert [lk["contentions"] for lk in doc["locks"] if lk["name"]] == [1, 1]
    text = parse(page).text
    assert "No lock had to be waited for" not in text
    # neither lock was released nor its wait ended: no distribution is drawn, and the page says why
    assert "ended in this trace (2 waits were still open when it ended)" in text
    hot = article_text(page, "F2")
    assert "held for 0 ns" not in hot and "it was still held when the trace ended (1 hold never released)" in hot
    assert "1 acquisition;" in hot and "callers had to wait once" in hot


SAMPLES = sorted(p.stem for p in (ROOT / "sample_traces").glob("*-bug.jsonl"))


@pytest.mark.parametrize("sample", SAMPLES)
def test_no_empty_heading_and_no_contradiction(sample):
    doc, page = report(sample)
    # a heading is followed by content, never directly by the next heading or the end of its block
    assert not re.search(r"</h4>\s*(<h4|</div>|</section>|</article>|$)", page), sample
    assert "<h4>Hold times of the busiest locks</h4><" in page or "Hold times of the busiest locks" not in page
    for f in doc["findings"]:
        text = article_text(page, f["id"])
        if "never ended" in text or "still blocked when the trace ended" in text:
            assert "Ended | yes" not in text, (sample, f["id"])
        if re.search(r"Ended \| yes", text):
            assert "never ended" not in text and "still waiting when the trace ended" not in text


def test_no_hold_time_heading_without_hold_times():
    """Locks that were never released have no hold time: no 'Hold times' heading over an empty chart."""
    doc, _ = report("deadlock_threads-bug")
    never_released = [lk for lk in doc["locks"] if lk["hold_max_ns"] is None]
    assert len(never_released) == 2
    page = html.render(dict(doc, locks=never_released), plotlyjs="cdn")
    assert "Hold times of the busiest locks" not in page
    assert not re.search(r"</h4>\s*(<h4|</div>|</section>|</article>)", page)


def rendered(paths: list[str]) -> tuple[dict, str]:
    pages: dict = {}
    doc = analyze(paths, on_result=lambda d, con: pages.update(html=html.render(d, con=con, plotlyjs="cdn")))
    return doc, pages["html"]


def test_a_hung_process_shows_how_long_a_lock_wait_lasted(tmp_path):
    """A process without an end record, last seen alive by a heartbeat 3 s after a lock
    wait began: the stalled wait is measured to that beat and named by its lock."""
    from tests.analyzer.tracebuilder import Trace

    t = Trace()
    worker = t.thread("worker", parent=t.main)
    lock = t.lock("registry")
    t.acquire(t.main, lock, line=10)
    t.acquire(worker, lock, line=20, wait_ns=0)
    t.records.pop()  # the worker never got the lock
    t.records.append({"k": "beat", "ts": t.records[-1]["ts"] + 3_000_000_000})
    doc, page = rendered([str(t.write(tmp_path / "t.jsonl", end=False))])
    [stall] = [f for f in doc["findings"] if f["kind"] == "stalled"]
    text = article_text(page, stall["id"])
    assert "worker (thread) waited for registry at app.py:20 and was still waiting when the trace ended, " \
           "3.00 s later." in text
    assert "Blocked for | 3.00 s, until the trace ended" in text
    assert "Ended | yes" not in text and "run1/" not in text


def test_a_real_hang_on_a_queue_says_the_program_hung_and_for_how_long(tmp_path):
    from tests.analyzer.test_hang import run_program

    proc, _, _ = run_program(tmp_path, hold=True)
    assert proc.returncode == -9, proc.stderr
    doc, page = rendered([str(tmp_path / "traces")])
    [hang] = [f for f in doc["findings"] if f["kind"] == "wait-cycle"]
    blocked = hang["details"]["blocked_ns"]
    assert hang["details"]["hung"] is True and blocked > 1_000_000_000
    text = article_text(page, hang["id"])
    from analyzer.report.html.format import duration
    assert (f"The program hung here: both were still blocked when the trace ended, for {duration(blocked)} "
            "until the process was last seen.") in text
    assert f"Blocked for | {duration(blocked)}, until the trace ended" in text
    assert "Ended | no — still blocked when the trace ended" in text and "Ended | yes" not in text
