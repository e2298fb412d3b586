"""potential-deadlock and guarded-cycle on real recorded threads."""
from __future__ import annotations

import threading
import time

from .conftest import kinds, line_of

TIMEOUT = 5


def run_threads(*targets):
    threads = [threading.Thread(target=t, name=t.__name__, daemon=True) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads)


def opposite_order(gate=None):
    sessions, users = threading.Lock(), threading.Lock()
    import recorder
    recorder.name(sessions, "sessions")
    recorder.name(users, "users")
    guard = gate if gate is not None else _NoGate()

    # Staggered in time, not by a signal (a signal would order them: a guarded cycle).
    def login():
        with guard:
            with sessions:  # login: sessions
                with users:  # login: users
                    pass
        time.sleep(0.3)  # keep both threads alive at once

    def rename():
        time.sleep(0.15)  # after login's section: this run does not hang
        with guard:
            with users:  # rename: users
                with sessions:  # rename: sessions
                    pass

    run_threads(login, rename)
    return login, rename


class _NoGate:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_opposite_order_in_overlapping_threads_is_a_potential_deadlock(record):
    with record() as rec:
        login, rename = opposite_order()
    doc = rec.analyze()
    found = kinds(doc, "potential-deadlock")
    assert len(found) == 1
    f = found[0]
    assert f["severity"] == "error"
    assert sorted(lk["name"] for lk in f["locks"]) == ["sessions", "users"]
    steps = {s["actor"]["name"]: s for s in f["steps"]}
    assert set(steps) == {"login", "rename"}
    assert steps["login"]["requests"]["name"] == "users"
    assert steps["login"]["site"] == line_of(login, "# login: users")
    assert [(h["name"], h["acquired_at"]) for h in steps["login"]["holds"]] == [
        ("sessions", line_of(login, "# login: sessions"))]
    assert steps["rename"]["requests"]["name"] == "sessions"
    assert steps["rename"]["site"] == line_of(rename, "# rename: sessions")
    assert [(h["name"], h["acquired_at"]) for h in steps["rename"]["holds"]] == [
        ("users", line_of(rename, "# rename: users"))]
    assert f["sites"][0]["site"] in {steps["login"]["site"], steps["rename"]["site"]}
    assert len(f["fingerprint"]) == 16
    assert not kinds(doc, "guarded-cycle")


def test_fingerprint_is_stable_across_runs(record):
    prints = []
    for _ in range(2):
        with record() as rec:
            opposite_order()
        prints.append(kinds(rec.analyze(), "potential-deadlock")[0]["fingerprint"])
        import shutil
        shutil.rmtree(rec.out)
    assert prints[0] == prints[1]


def test_common_gate_lock_is_quiet_and_listed_as_guarded(record):
    with record() as rec:
        gate = threading.Lock()
        import recorder
        recorder.name(gate, "gate")
        opposite_order(gate)
    doc = rec.analyze()
    assert not kinds(doc, "potential-deadlock")
    guarded = kinds(doc, "guarded-cycle")
    assert len(guarded) == 1
    assert guarded[0]["severity"] == "info"
    assert guarded[0]["details"]["reason"] == "gate-lock"
    gates = {lk["id"]: lk["name"] for lk in doc["locks"]}
    assert [gates[g] for g in guarded[0]["details"]["gate_locks"]] == ["gate"]


def test_inversion_inside_one_thread_is_quiet(record):
    with record() as rec:
        a, b = threading.Lock(), threading.Lock()

        def both_orders():
            with a, b:
                pass
            with b, a:
                pass

        run_threads(both_orders)
    doc = rec.analyze()
    assert not kinds(doc, "potential-deadlock")
    [g] = kinds(doc, "guarded-cycle")
    assert g["details"]["reason"] == "single-actor"


def test_threads_ordered_by_join_are_quiet(record):
    with record() as rec:
        a, b = threading.Lock(), threading.Lock()

        def first():
            with a, b:
                pass

        def second():
            with b, a:
                pass

        run_threads(first)   # joined before `second` starts
        run_threads(second)
    doc = rec.analyze()
    assert not kinds(doc, "potential-deadlock")
    [g] = kinds(doc, "guarded-cycle")
    assert g["details"]["reason"] == "ordered"


def philosophers(ordered: bool):
    forks = [threading.Lock() for _ in range(3)]  # three instances, one creation line

    def philosopher(i):
        def eat():
            time.sleep(0.1 * i)  # one at a time (staggered, not signalled): all alive together
            left, right = forks[i], forks[(i + 1) % 3]
            if ordered:
                left, right = sorted((left, right), key=forks.index)
            with left:
                with right:
                    pass
            time.sleep(0.3 - 0.1 * i)
        eat.__name__ = f"philosopher{i}"
        return eat

    threads = [threading.Thread(target=philosopher(i), name=f"philosopher{i}", daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads)


def test_three_philosophers_form_a_cycle_of_three(record):
    with record() as rec:
        philosophers(ordered=False)
    doc = rec.analyze()
    [f] = kinds(doc, "potential-deadlock")
    assert f["details"]["length"] == 3
    assert len({s["actor"]["name"] for s in f["steps"]}) == 3
    assert len({lk["created_at"] for lk in f["locks"]}) == 1  # created on one line
    # lock classes (lockdep): the three forks merge into one lock
    by_site = rec.analyze(group_by="site")
    fork_class = [lk for lk in by_site["locks"] if lk["created_at"] == f["locks"][0]["created_at"]]
    assert len(fork_class) == 1 and fork_class[0]["instances"] == 3
    assert not kinds(by_site, "potential-deadlock")


def test_philosophers_who_order_their_forks_are_quiet(record):
    with record() as rec:
        philosophers(ordered=True)
    doc = rec.analyze()
    assert not kinds(doc, "potential-deadlock")
    assert not kinds(doc, "guarded-cycle")
