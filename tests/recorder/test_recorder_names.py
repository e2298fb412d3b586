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
    import linecache

    rec.start()
    from recorder import _naming

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(_naming, "_parses", boom)
    _core.names_by_code.clear()
    _naming._by_place.clear()
    [odd] = [threading.Lock()]  # (not a plain assignment: ast must parse it)
    monkeypatch.setattr(linecache, "getlines", boom)
    unread = threading.Lock()
    _used(odd, unread)
    trace = rec.stop()
    assert [d.get("expr") for d in trace.objects("lock")] == [None, None]


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


FORMS = '''\
import threading
from threading import Condition, Lock


class Box:
    def __init__(self):
        self.lock = threading.Lock()
        self.__hidden = threading.RLock()  # a comment
        self._cond = Condition(Lock())
        self.cond2 = threading.Condition(threading.Lock())
        self.inner = Holder()
        self.inner.lock = Lock()
        self.table = {}
        self.table["k"] = Lock()

    @classmethod
    def make(cls):
        cls.shared = threading.Lock()


class Holder:
    pass


def tabbed(out):
\tindented_by_tab = Lock()
\tout.append(indented_by_tab)
\treturn out


def made(out):
    plain = Lock()
    spaced   =   Lock()
    out += [plain, spaced]
    out.append(Holder())
    out[-1].lock = Lock()
    out.append(dict(
        lock=Lock(),
    )["lock"])
    out.append([
        Lock(),
    ][0])
    out.append(dict(
        lock=Lock()
    )["lock"])
    wrapped = (
        Lock()
    )
    typed: Lock = Lock()
    first = second = Lock()
    if (walrus := Lock()):
        out.append(walrus)
    out += [wrapped, typed, first, second]
    cond3 = Condition( Lock() )
    cond4 = Condition(lock=Lock())
    out += [cond3, cond4]
    unicode_ä = Lock()
    out.append(unicode_ä)
    box = Box()
    Box.make()
    out += [box.lock, box._Box__hidden, box._cond, box.cond2, box.inner.lock, box.table["k"],
            Box.shared]
    return out


MODULE_LOCK = threading.Lock()
'''


def _names_of_forms(rec, tmp_path, monkeypatch, name: str, simple: bool) -> tuple[list, set]:
    """The names the creation forms get (line, expr); and the lines the text alone named."""
    import importlib
    import sys

    from recorder import _naming

    (tmp_path / f"{name}.py").write_text(FORMS, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    taken = []
    fast = _naming._simple_expression
    monkeypatch.setattr(_naming, "_simple_expression",
                        (lambda *a: taken.append((a[1].co_filename, a[2][0], fast(*a)))
                         or taken[-1][2]) if simple
                        else (lambda *a: None))
    rec.start()
    module = importlib.import_module(name)
    objs = module.made(module.tabbed([])) + [module.MODULE_LOCK]
    _used(*(o for o in objs if hasattr(o, "acquire")))
    trace = rec.stop()
    del sys.modules[name]
    defs = trace.objects("lock")
    by_line = sorted((trace.site(d)[1], d.get("expr")) for d in defs
                     if trace.site(d)[0].endswith(f"{name}.py"))
    lines = FORMS.splitlines()
    return by_line, {lines[line - 1].strip() for file, line, expr in taken
                     if expr is not None and file.endswith(f"{name}.py")}


def test_plain_assignments_are_named_from_their_text_as_ast_names_them(rec, tmp_path, monkeypatch):
    """Plain assignments of a call to a dotted name are named from the line's text
    (no ast import); every other form falls back to ast, and both ways give the
    same names, odd forms included (keyword arguments and elements of brackets on
    a line of their own, tabs, non-ASCII lines, chained and annotated targets)."""
    with_text, named = _names_of_forms(rec, tmp_path, monkeypatch, "forms_text", True)
    with_ast, _ = _names_of_forms(rec, tmp_path, monkeypatch, "forms_ast", False)
    assert with_text == with_ast
    lines = FORMS.splitlines()
    got = {lines[line - 1].strip(): expr for line, expr in with_text}
    assert got == {
        "self.lock = threading.Lock()": "Box.lock",
        "self.__hidden = threading.RLock()  # a comment": "Box.__hidden",
        "self._cond = Condition(Lock())": "Box._cond",
        "self.cond2 = threading.Condition(threading.Lock())": "Box.cond2",
        "self.inner.lock = Lock()": "Box.inner.lock",
        'self.table["k"] = Lock()': "Box.table['k']",
        "cls.shared = threading.Lock()": "Box.shared",
        "indented_by_tab = Lock()": "indented_by_tab",
        "plain = Lock()": "plain",
        "spaced   =   Lock()": "spaced",
        # a keyword argument or an element on a line of its own is not an assignment
        "lock=Lock(),": None,
        "Lock(),": None,
        "lock=Lock()": None,
        "Lock()": "wrapped",
        "typed: Lock = Lock()": "typed",
        "first = second = Lock()": "first",
        "if (walrus := Lock()):": "walrus",
        "cond3 = Condition( Lock() )": "cond3",
        "cond4 = Condition(lock=Lock())": "cond4",
        "unicode_ä = Lock()": "unicode_ä",
        "MODULE_LOCK = threading.Lock()": "MODULE_LOCK",
    }
    assert named == {"self.lock = threading.Lock()", "self.__hidden = threading.RLock()  # a comment",
                     "self._cond = Condition(Lock())",
                     "self.cond2 = threading.Condition(threading.Lock())",
                     "self.inner.lock = Lock()", "cls.shared = threading.Lock()",
                     "indented_by_tab = Lock()", "plain = Lock()", "spaced   =   Lock()",
                     "MODULE_LOCK = threading.Lock()",
                     # (the conditions themselves; their locks need ast)
                     "cond3 = Condition( Lock() )", "cond4 = Condition(lock=Lock())"}


def test_a_program_whose_creation_lines_are_plain_never_imports_ast(tmp_path):
    script = tmp_path / "app.py"
    script.write_text("import sys, threading\n"
                      "class Server:\n"
                      "    def __init__(self):\n"
                      "        self.lock = threading.Lock()\n"
                      "        self.ready = threading.Event()\n"
                      "hits_lock = threading.Lock()\n"
                      "s = Server()\n"
                      "with hits_lock, s.lock:\n"
                      "    s.ready.set()\n"
                      "print('ast' in sys.modules)\n")
    out = tmp_path / "traces"
    res = run_python([str(script)], tmp_path, LOCKSCOPE_OUT=str(out))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"
    [trace] = traces(out)
    assert {d.get("expr") for d in trace.objects("lock")} >= {"Server.lock", "hits_lock"}
