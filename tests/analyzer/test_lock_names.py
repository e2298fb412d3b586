"""Issue 16: every lock has a name a reader recognises, from its creation line when
the program gave none, and no two locks of one report print the same label; the
statistics show the program's own locks, library locks folded into one line.

The program really deadlocks (two accounts, transfers in opposite orders) and is
killed; it also uses logging, a queue and a thread pool, whose locks the libraries
make."""
from __future__ import annotations

import io
import shutil
import subprocess
import sys
import textwrap

from rich.console import Console

from analyzer import analyze
from analyzer.context import lock_labels
from analyzer.report import html, terminal

from .conftest import kinds

PROGRAM = '''
import concurrent.futures, logging, os, queue, signal, threading
import recorder

class Account:
    def __init__(self, owner):
        self.owner = owner
        self.lock = threading.Lock()  # mark: account-lock

registry_lock = threading.Lock()
first, second = Account("ann"), Account("bob")
both_hold = threading.Barrier(2)

def transfer(src, dst):
    with src.lock:
        both_hold.wait()
        with dst.lock:
            pass

with registry_lock:
    pass
logging.getLogger("svc").warning("starting")
jobs = queue.Queue()  # mark: queue
jobs.put(1)
jobs.get()
with concurrent.futures.ThreadPoolExecutor(2) as pool:
    for _ in range(3):
        pool.submit(len, "abc").result()  # mark: submit
x = threading.Lock(); y = threading.Lock()
with x:
    with y:
        pass
named = recorder.name(threading.Lock(), "named")
with named:
    pass
threads = [threading.Thread(target=transfer, args=(first, second), daemon=True),
           threading.Thread(target=transfer, args=(second, first), daemon=True)]
for t in threads:
    t.start()
for t in threads:
    t.join(1.5)
if any(t.is_alive() for t in threads):
    os.kill(os.getpid(), signal.SIGKILL)
'''


def run_program(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    script = src / "svc.py"
    script.write_text(textwrap.dedent(PROGRAM))
    out = tmp_path / "traces"
    proc = subprocess.run([sys.executable, "-m", "recorder", "--out", str(out), str(script)],
                          capture_output=True, text=True, timeout=60, cwd=src)
    assert proc.returncode == -9, proc.stderr  # it really deadlocked and was killed
    return out, script


def line(script, marker: str) -> int:
    return next(i for i, text in enumerate(script.read_text().splitlines(), 1) if f"mark: {marker}" in text)


def labels(doc: dict) -> list[str]:
    return [s["label"] for s in doc["locks"]]


def test_locks_are_named_from_the_source_and_told_apart(tmp_path):
    out, script = run_program(tmp_path)
    doc = analyze([str(out)])
    [f] = kinds(doc, "deadlock")
    # two different accounts' locks, not one lock waiting for itself
    assert {lk["label"] for lk in f["locks"]} == {"Account.lock#1", "Account.lock#2"}
    assert f["title"].endswith(("Account.lock#1 -> Account.lock#2 -> Account.lock#1",
                                "Account.lock#2 -> Account.lock#1 -> Account.lock#2"))
    for step in f["steps"]:
        assert {step["holds"][0]["label"], step["requests"]["label"]} == {"Account.lock#1", "Account.lock#2"}
    for lk in f["locks"]:
        assert lk["created_at"] == f"svc.py:{line(script, 'account-lock')}"
        assert lk["expr"] == "Account.lock" and lk["library"] is None

    shown = labels(doc)
    assert len(shown) == len(set(shown)), "two locks print the same label"
    own = [s["label"] for s in doc["locks"] if s["library"] is None]
    assert sorted(own) == ["Account.lock#1", "Account.lock#2", "named", "registry_lock", "x", "y"]
    assert doc["locks"][:len(own)] == [s for s in doc["locks"] if s["library"] is None]  # own locks first
    submit, queue_line = line(script, "submit"), line(script, "queue")
    assert f"queue.Queue.mutex (made by svc.py:{queue_line})" in shown
    assert "logging._lock (made by svc.py:2)" in shown  # made by the program's import line
    futures = sorted(s for s in shown if s.startswith("Future._condition"))
    assert futures == [f"Future._condition#{i} (made by svc.py:{submit})" for i in (1, 2, 3)]
    by_label = {s["label"]: s for s in doc["locks"]}
    assert by_label["logging._lock (made by svc.py:2)"]["library"] == "logging"
    assert by_label[futures[0]]["made_by"] == f"svc.py:{submit}"


def test_the_names_need_no_sources(tmp_path):
    """The analyzer on another machine: a copy of the trace, the program deleted."""
    out, script = run_program(tmp_path)
    here = analyze([str(out)])
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(out, elsewhere)
    shutil.rmtree(script.parent)
    shutil.rmtree(out)
    there = analyze([str(elsewhere)])
    assert labels(there) == labels(here)
    assert "registry_lock" in labels(there) and "Account.lock#2" in labels(there)


def test_statistics_fold_the_library_locks_into_one_line(tmp_path):
    out, _ = run_program(tmp_path)
    doc = analyze([str(out)])
    lib = [s for s in doc["locks"] if s["library"]]
    libraries = sorted({s["library"] for s in lib})
    assert {"concurrent.futures", "logging", "queue", "threading"} <= set(libraries)

    def text(all_locks: bool) -> str:
        console = Console(file=io.StringIO(), width=200, record=True)
        terminal.render(doc, console, all_locks=all_locks)
        return console.export_text()

    folded = text(False)
    acq = sum(s["acquisitions"] for s in lib)
    waits = sum(s["contentions"] for s in lib)
    assert (f"+ {len(lib)} library locks ({', '.join(libraries)}): {acq:,} acquisitions, "
            f"{waits:,} wait") in folded
    assert "Future._condition" not in folded.split("Longest-held locks")[-1]
    assert "registry_lock" in folded
    everything = text(True)
    assert "Future._condition#1" in everything and "library locks" not in everything

    page = html.render(doc, plotlyjs="cdn")
    assert f"+ {len(lib)} library locks (" in page
    assert ">registry_lock<" in page
    assert 'Future._condition#1 (made by' not in page.split('id="locks"')[-1]
    page_all = html.render(doc, plotlyjs="cdn", all_locks=True)
    assert 'Future._condition#1 (made by' in page_all.split('id="locks"')[-1]


def test_labels_number_only_what_collides_and_never_reuse_a_programs_name():
    def row(lk, name=None, expr=None, ts=0, lib=None, made_by=None, created_at="a.py:1"):
        return {"lk": lk, "key": f"r/{lk}", "name": name, "expr": expr, "type": "threading.Lock",
                "created_at": created_at, "lib": lib, "made_by": made_by, "first_ts": ts,
                "first_run": "r", "first_id": lk}
    got = lock_labels([
        row(1, expr="Account.lock", ts=20), row(2, expr="Account.lock", ts=10),
        row(3, name="Account.lock#1", ts=5), row(4, expr="solo"),
        row(5, name="same"), row(6, name="same", ts=1),
        row(7, expr="Future._condition", lib="concurrent.futures", made_by="j.py:9", ts=1),
        row(8, expr="Future._condition", lib="concurrent.futures", made_by="j.py:9", ts=2),
        row(9, expr="Future._condition", lib="concurrent.futures", made_by="k.py:3", ts=3),
        row(10, created_at="b.py:4"), row(11, created_at=None),
        row(12, created_at="src/c.py:2", ts=3), row(13, created_at="src/c.py:2", ts=4),
    ])
    assert got == {
        2: "Account.lock#2", 1: "Account.lock#3", 3: "Account.lock#1", 4: "solo",
        5: "same#1", 6: "same#2",
        7: "Future._condition#1 (made by j.py:9)", 8: "Future._condition#2 (made by j.py:9)",
        9: "Future._condition (made by k.py:3)", 10: "Lock@b.py:4", 11: "r/11",
        12: "Lock#1@c.py:2", 13: "Lock#2@c.py:2",
    }
    assert len(set(got.values())) == len(got)
