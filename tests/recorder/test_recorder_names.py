"""Issue 16: an unnamed lock or resource carries the name its creation line gives it
(`expr`), and one a library made also the library (`lib`) and the program's line that
drove its creation (`user_site`), so that reports name it without the sources."""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from pathlib import Path

from test_recorder_process import run_python, traces

import recorder
from recorder import _core


def _line(marker: str) -> int:
    """The line of this file that contains ``marker`` (after the marker's own definition)."""
    lines = Path(__file__).read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if text.rstrip().endswith(f"# {marker}"))


def _used(*locks) -> None:
    for lock in locks:
        with lock:
            pass


class Account:
    def __init__(self, balance: int) -> None:
        self.lock = threading.Lock()
        self.balance = balance


class Savings(Account):
    pass


class Worker:
    def __init__(self) -> None:
        self.jobs = queue.Queue()


class Registry:
    @classmethod
    def make(cls) -> None:
        cls._guard = threading.RLock()


def test_assignment_targets_name_the_locks(rec):
    rec.start()
    registry_lock = threading.Lock()
    first, second = Account(1), Savings(2)  # both made by Account.__init__
    a = threading.Lock(); b = threading.Lock()  # noqa: E702  two on one line
    c, d = threading.Lock(), threading.Semaphore()
    Registry.make()
    done = threading.Event()
    locks = {"x": threading.RLock()}
    given = recorder.name(threading.Lock(), "given")
    t = threading.Thread(target=_used, args=(registry_lock, first.lock, second.lock, a, b, c, d,
                                             Registry._guard, locks["x"], given))
    t.start()
    t.join(10)
    done.set()
    trace = rec.stop()
    exprs = sorted((d.get("expr") or "", d.get("name") or "") for d in trace.objects("lock"))
    assert exprs == sorted([
        ("registry_lock", ""), ("Account.lock", ""), ("Account.lock", ""), ("a", ""),
        ("b", ""), ("c", ""), ("d", ""), ("Registry._guard", ""), ("locks['x']", ""),
        ("", "given"), ("threading.Event._cond", ""),
    ])
    # the Event is named by the line that made it; its lock is the library's
    event = trace.one("resource", type_="threading.Event")
    assert event["expr"] == "done" and "lib" not in event
    [inner] = [d for d in trace.objects("lock") if "lib" in d]
    assert inner["expr"] == "threading.Event._cond" and inner["lib"] == "threading"
    assert inner["user_site"] == event["site"]


def test_two_locks_on_one_line_get_their_own_names_in_creation_order(rec):
    rec.start()
    made = [threading.Lock(), threading.Lock()]
    x = threading.Lock(); y = threading.Lock()  # noqa: E702
    _used(y, x, *made)
    trace = rec.stop()
    by_id = sorted(trace.objects("lock"), key=lambda d: d["id"])
    assert [d.get("expr") for d in by_id] == ["made[0]", "made[1]", "x", "y"]


def test_library_locks_are_named_by_the_library_and_the_users_line(rec):
    rec.start()
    jobs = queue.Queue()  # QUEUE
    jobs.put(1)
    jobs.get()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(len, "abc").result()  # SUBMIT
    trace = rec.stop()
    [mutex] = [d for d in trace.objects("lock") if d.get("expr") == "queue.Queue.mutex"]
    assert mutex.get("owner") is not None
    here = Path(__file__).resolve()
    want_site = (str(here), _line("QUEUE"))
    futures = [d for d in trace.objects() if d.get("expr") == "Future._condition"]
    assert {d["k"] for d in futures} == {"lock", "resource"}, futures
    for d in futures:
        assert d["lib"] == "concurrent.futures"
        site = trace.sites[d["user_site"]]
        assert (site["file"], site["line"]) == (str(here), _line("SUBMIT"))
    queue_objs = [d for d in trace.objects() if d.get("lib") == "queue"]
    assert {d.get("expr") for d in queue_objs} == {"queue.Queue.mutex"}
    for d in queue_objs:
        site = trace.sites[d["user_site"]]
        assert (site["file"], site["line"]) == want_site
    # the queue's side (what get() waits on) is the queue: named by the line that made it
    [side] = [d for d in trace.objects("resource") if d.get("role") == "not_empty"]
    assert side["expr"] == "jobs" and "lib" not in side
    site = trace.sites[side["site"]]
    assert (site["file"], site["line"]) == want_site


def test_a_queue_made_in_a_method_is_named_by_its_attribute(rec):
    rec.start()
    first, second = Worker(), Worker()
    first.jobs.put(1)
    second.jobs.put(2)
    assert (first.jobs.get(), second.jobs.get()) == (1, 2)
    trace = rec.stop()
    sides = [d for d in trace.objects("resource") if d["type"] == "queue.Queue"]
    assert sorted((d["role"], d.get("expr")) for d in sides) == sorted(
        [("not_empty", "Worker.jobs"), ("not_full", "Worker.jobs")] * 2)
    assert len({d["owner"] for d in sides}) == 2  # two queues


def test_the_second_creation_at_a_site_is_a_cache_hit(rec, monkeypatch):
    rec.start()
    calls = []
    work_out = _core.work_out_name
    monkeypatch.setattr(_core, "work_out_name", lambda f: calls.append(f.f_lineno) or work_out(f))
    locks = [threading.Lock() for _ in range(50)]
    _used(*locks)
    trace = rec.stop()
    assert len(calls) == 1
    assert {d.get("expr") for d in trace.objects("lock")} == {"locks[*]"}


def test_a_module_global_of_the_standard_library_is_named_by_its_module(tmp_path):
    """logging._lock is made when logging is imported: with recording from start-up
    it is named logging._lock, made by the program's import line."""
    script = tmp_path / "app.py"
    script.write_text("import logging\n"
                      "logging.getLogger('x').addHandler(logging.NullHandler())\n")
    out = tmp_path / "traces"
    res = run_python([str(script)], tmp_path, LOCKSCOPE_OUT=str(out))
    assert res.returncode == 0, res.stderr
    [trace] = traces(out)
    lock = next(d for d in trace.objects("lock") if d.get("expr") == "logging._lock")
    assert lock["lib"] == "logging"
    site = trace.sites[lock["user_site"]]
    assert (Path(site["file"]).name, site["line"]) == ("app.py", 1)


def test_naming_never_raises_into_the_program(rec, monkeypatch):
    """A failure to work out a name (unreadable source, a parser error) gives none."""
    rec.start()
    from recorder import _naming

    monkeypatch.setattr(_naming, "_parses", lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    _core.names_by_code.clear()
    odd = threading.Lock()
    _used(odd)
    trace = rec.stop()
    assert [d.get("expr") for d in trace.objects("lock")] == [None]


def test_the_frame_walk_copes_with_locks_made_at_the_bottom_of_the_stack(rec):
    """A thread's first frame makes the lock: nothing above it to walk to."""
    rec.start()
    made = []
    t = threading.Thread(target=lambda: made.append(threading.Lock()))  # BOTTOM
    t.start()
    t.join(10)
    _used(*made)
    trace = rec.stop()
    [lock] = trace.objects("lock")
    assert "expr" not in lock  # an argument: stored nowhere the line says
    assert trace.site(lock)[:2] == (str(Path(__file__).resolve()), _line("BOTTOM"))
