"""Registry of the scenario programs and of what the analyzer must report on each.

This is the single source of truth for ``test_scenarios_run.py``, the
end-to-end tests, ``sample_traces/regenerate.py`` and the table in
``sample_traces/README.md``. ``python tests/scenarios/catalog.py`` prints it as
JSON.

Every scenario is one file, ``<name>_<variant>.py`` in this directory, run with
no arguments. Code sites are named by marks in the scenario source (a trailing
``# mark: NAME`` comment) and resolved to line numbers and enclosing functions
when this module is imported, so the expectations follow the code when a
scenario is edited; ``test_catalog.py`` checks that each scenario's docstring
quotes the same line numbers.

What the expectations assume of the analyzer (issue 4):

* Kinds and default severities are spelled as in ``KINDS``. ``long-hold`` uses
  the default threshold of 100 ms.
* A cycle that really deadlocked is reported once, as ``deadlock``, not also as
  ``potential-deadlock``; a wait that belongs to a reported ``deadlock``,
  ``self-deadlock`` or ``wait-cycle`` is not reported again as ``stalled`` or
  ``acquire-timeout``.
* Lock-order steps list the locks held as mutual exclusion (semaphores of value
  greater than one are not listed: they exclude nothing).
* Lock creation sites are compared by ``file:line`` only (the function of a
  lock created in a list comprehension differs between Python versions).

How an end-to-end test matches a run against a ``Scenario``: every finding in
``expected`` appears exactly once (same kind, severity, lock names, steps and
sites); every other finding is a ``hot-lock`` (statistics, never asserted) or
has a kind listed in ``tolerated`` (consequences of the same bug that the
analyzer may or may not list separately, such as the ``long-hold`` of a lock
that was stuck in a deadlock) and is then folded under a main finding (one bug,
one finding); an expected finding is a main one unless its ``folded_under``
names the kind of its main finding. A ``fixed``/``ok`` twin expects nothing.
"""
from __future__ import annotations

import ast
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: Finding kinds with their default severity, exactly as issue 4 spells them.
KINDS: dict[str, str] = {
    "potential-deadlock": "error",
    "guarded-cycle": "info",
    "deadlock": "critical",
    "self-deadlock": "error",
    "wait-cycle": "error",
    "held-across-await": "warning",
    "long-hold": "warning",
    "stalled": "warning",
    "acquire-timeout": "warning",
    "hot-lock": "info",
}
#: Kinds that mean "these threads/tasks can (or did) block each other forever".
DEADLOCK_CLASS = frozenset({"potential-deadlock", "deadlock", "self-deadlock", "wait-cycle"})
#: Statistics: present on any run with locks, never asserted.
STATISTICS = frozenset({"hot-lock"})

_MARK = re.compile(r"#\s*mark:\s*([\w.-]+)")


@dataclass(frozen=True)
class Site:
    """A code location in a scenario file, named by its ``# mark:``."""

    file: str
    line: int
    func: str
    mark: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Held:
    """A lock held at the time of a step, with the site that took it."""

    lock: str
    at: Site


@dataclass(frozen=True)
class Step:
    """One edge of a cycle: ``actor`` holds ``held`` and requests ``wants`` at ``at``.

    ``wants`` is a lock name, or for a ``wait-cycle`` the resource waited on
    (an event's name, or the name of the thread being joined).
    """

    actor: str
    held: tuple[Held, ...]
    wants: str
    at: Site


@dataclass(frozen=True)
class Expected:
    """One finding the analyzer must report."""

    kind: str
    locks: tuple[str, ...]
    sites: tuple[Site, ...]
    severity: str = ""
    steps: tuple[Step, ...] = ()
    actors: tuple[str, ...] = ()
    #: wait-cycle / stalled: the event, condition or thread waited on
    resource: str | None = None
    #: guarded-cycle: why it cannot deadlock ("gate-lock", "single-actor", "ordered")
    reason: str | None = None
    #: guarded-cycle by a gate: the gate lock's name
    guard: str | None = None
    #: deadlock / self-deadlock / wait-cycle / stalled: how it ended
    #: ("end-of-trace", "timeout", "cancelled"); informative, not asserted
    ended: str | None = None
    #: held-across-await: how many tasks waited for the lock meanwhile (informative)
    waiters: int | None = None
    #: the kind of the main finding this one is folded under (about the same hold or
    #: wait: analyzer/fold.py); None: it is a main finding
    folded_under: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown finding kind {self.kind!r}")
        if not self.severity:
            object.__setattr__(self, "severity", KINDS[self.kind])
        if not self.actors and self.steps:
            actors = dict.fromkeys(step.actor for step in self.steps)
            object.__setattr__(self, "actors", tuple(actors))


@dataclass(frozen=True)
class Scenario:
    """One run of one scenario program and the findings it must produce."""

    name: str
    variant: str
    shows: str
    api: str
    expected: tuple[Expected, ...] = ()
    tolerated: frozenset[str] = frozenset()
    #: named locks and resources (events, threads) -> creation site
    locks: dict[str, Site] = field(default_factory=dict)
    exit_code: int = 0
    timeout_s: float = 30.0

    @property
    def id(self) -> str:
        return f"{self.name}-{self.variant}"

    @property
    def file(self) -> str:
        return f"{self.name}_{self.variant}.py"

    @property
    def path(self) -> Path:
        return HERE / self.file

    @property
    def quiet(self) -> bool:
        """True when nothing but statistics may be reported."""
        return not self.expected and not self.tolerated

    def allowed_kinds(self) -> frozenset[str]:
        return frozenset(e.kind for e in self.expected) | self.tolerated | STATISTICS

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "variant": self.variant,
            "file": self.file,
            "api": self.api,
            "shows": self.shows,
            "exit_code": self.exit_code,
            "locks": {name: asdict(site) for name, site in self.locks.items()},
            "expected": [asdict(e) for e in self.expected],
            "tolerated": sorted(self.tolerated),
        }


class Source:
    """The marks of one scenario file, resolved to lines and enclosing functions."""

    def __init__(self, file: str) -> None:
        self.file = file
        text = (HERE / file).read_text(encoding="utf-8")
        self.marks: dict[str, int] = {}
        for lineno, line in enumerate(text.splitlines(), start=1):
            match = _MARK.search(line)
            if match:
                if match.group(1) in self.marks:
                    raise ValueError(f"{file}: mark {match.group(1)!r} used twice")
                self.marks[match.group(1)] = lineno
        self._functions = [
            (node.lineno, node.end_lineno or node.lineno, node.name)
            for node in ast.walk(ast.parse(text, filename=file))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        ]

    def func_at(self, line: int) -> str:
        """Name of the innermost function containing ``line`` (``<module>`` if none)."""
        inside = [(start, name) for start, end, name in self._functions if start <= line <= end]
        return max(inside)[1] if inside else "<module>"

    def site(self, mark: str) -> Site:
        try:
            line = self.marks[mark]
        except KeyError:
            raise KeyError(f"{self.file}: no '# mark: {mark}'") from None
        return Site(self.file, line, self.func_at(line), mark)

    def held(self, lock: str, mark: str) -> Held:
        return Held(lock, self.site(mark))


def _cycle(kind: str, src: Source, steps: list[Step], **extra) -> Expected:
    """A cycle finding whose locks (those requested, so not a gate) and sites come from its steps."""
    locks = sorted({s.wants for s in steps} - {extra.get("resource")})
    sites = dict.fromkeys(site for s in steps for site in (*[h.at for h in s.held], s.at))
    sites.update(dict.fromkeys(extra.pop("more_sites", ())))
    return Expected(kind=kind, locks=tuple(locks), sites=tuple(sites), steps=tuple(steps), **extra)


def _locks(src: Source, **marks: str) -> dict[str, Site]:
    return {name.replace("_", "-"): src.site(mark) for name, mark in marks.items()}


def _two_lock_inversion(src: Source, first: str, second: str, kind: str, **extra) -> Expected:
    """sessions/users taken in opposite orders by ``first`` (login) and ``second`` (rename)."""
    return _cycle(kind, src, [
        Step(first, (src.held("sessions", "login-sessions"),), "users", src.site("login-users")),
        Step(second, (src.held("users", "rename-users"),), "sessions", src.site("rename-sessions")),
    ], **extra)


def _build() -> list[Scenario]:
    out: list[Scenario] = []
    add = out.append

    # --- opposite lock order, threads ------------------------------------------------
    src = Source("lock_order_threads_bug.py")
    add(Scenario(
        "lock_order_threads", "bug", api="threading",
        shows="Two threads take sessions and users in opposite orders; staggered, so this "
              "run did not hang, but another schedule would.",
        locks=_locks(src, sessions="create-sessions", users="create-users"),
        expected=(_two_lock_inversion(src, "login", "rename", "potential-deadlock"),),
    ))
    src = Source("lock_order_threads_fixed.py")
    add(Scenario(
        "lock_order_threads", "fixed", api="threading",
        shows="Both code paths take sessions and users through one helper, always in the same order.",
        locks=_locks(src, sessions="create-sessions", users="create-users"),
    ))

    # --- opposite lock order, asyncio --------------------------------------------------
    src = Source("lock_order_async_bug.py")
    add(Scenario(
        "lock_order_async", "bug", api="asyncio",
        shows="Two asyncio tasks take sessions and users in opposite orders with an await in "
              "between; staggered, so this run did not hang.",
        locks=_locks(src, sessions="create-sessions", users="create-users"),
        expected=(_two_lock_inversion(src, "login", "rename", "potential-deadlock"),),
    ))
    src = Source("lock_order_async_fixed.py")
    add(Scenario(
        "lock_order_async", "fixed", api="asyncio",
        shows="Both tasks take sessions and users through one async helper, always in the same order.",
        locks=_locks(src, sessions="create-sessions", users="create-users"),
    ))

    # --- recursive acquisition of a non-reentrant lock ------------------------------
    src = Source("cache_reentry_bug.py")
    add(Scenario(
        "cache_reentry", "bug", api="threading",
        shows="get_or_compute holds the cache lock and calls compute_and_cache, which takes it "
              "again; a 0.2 s timeout on the inner acquire turns the hang into an error.",
        locks=_locks(src, cache="create-cache"),
        # the acquire gave up, so nothing deadlocked: an acquire-timeout that names the
        # recursion (a self-deadlock is a wait that never ended)
        expected=(Expected("acquire-timeout", ("cache",),
                           (src.site("inner-acquire"), src.site("outer-acquire")), actors=("MainThread",)),),
        tolerated=frozenset({"long-hold"}),
    ))
    src = Source("cache_reentry_fixed.py")
    add(Scenario(
        "cache_reentry", "fixed", api="threading",
        shows="Check under the lock, compute unlocked, then store under the lock.",
        locks=_locks(src, cache="create-cache"),
    ))

    # --- lock held across a slow await -------------------------------------------------
    src = Source("held_across_await_bug.py")
    config_taken = src.site("refresh-acquire")
    add(Scenario(
        "held_across_await", "bug", api="asyncio",
        shows="A task holds an asyncio lock across a 0.3 s await while three other tasks "
              "queue up for it.",
        locks=_locks(src, config="create-config"),
        expected=(
            Expected("held-across-await", ("config",), (config_taken,), actors=("refresh",),
                     waiters=3),
            Expected("long-hold", ("config",), (config_taken,), actors=("refresh",),
                     folded_under="held-across-await"),
        ),
    ))
    src = Source("held_across_await_fixed.py")
    add(Scenario(
        "held_across_await", "fixed", api="asyncio",
        shows="The slow await happens first; the lock is taken only to store the result.",
        locks=_locks(src, config="create-config"),
    ))

    # --- a threading lock held across an await: the loop freezes ------------------------
    src = Source("thread_lock_in_async_bug.py")
    add(Scenario(
        "thread_lock_in_async", "bug", api="asyncio",
        shows="A task awaits while holding a threading lock; another task on the same loop "
              "blocks on it and freezes the event loop until its 0.2 s timeout.",
        locks=_locks(src, metrics="create-metrics"),
        expected=(Expected("held-across-await", ("metrics",),
                           (src.site("flush-acquire"), src.site("collect-acquire")),
                           severity="error", actors=("flusher", "collector"), waiters=1),),
        tolerated=frozenset({"acquire-timeout", "long-hold"}),
    ))
    src = Source("thread_lock_in_async_fixed.py")
    add(Scenario(
        "thread_lock_in_async", "fixed", api="asyncio",
        shows="The threading lock is held only around plain code, never across an await.",
        locks=_locks(src, metrics="create-metrics"),
    ))

    # --- lock held across a slow blocking call ------------------------------------------
    src = Source("slow_hold_threads_bug.py")
    add(Scenario(
        "slow_hold_threads", "bug", api="threading",
        shows="A thread holds a lock across a 0.3 s blocking call while three other threads "
              "wait for it.",
        locks=_locks(src, stats="create-stats"),
        expected=(Expected("long-hold", ("stats",), (src.site("flush-acquire"),),
                           actors=("flusher",)),),
    ))
    src = Source("slow_hold_threads_fixed.py")
    add(Scenario(
        "slow_hold_threads", "fixed", api="threading",
        shows="Snapshot under the lock, make the slow call with no lock held.",
        locks=_locks(src, stats="create-stats"),
    ))

    # --- wait on an event while holding the lock its setter needs ----------------------
    src = Source("event_under_lock_async_bug.py")
    add(Scenario(
        "event_under_lock_async", "bug", api="asyncio",
        shows="A task waits for an event while holding the lock that the only task able to "
              "set the event must take first; broken by wait_for's 0.5 s timeout.",
        locks=_locks(src, state="create-state", ready="create-ready"),
        expected=(_cycle("wait-cycle", src, [
            Step("consumer", (src.held("state", "consumer-acquire"),), "ready",
                 src.site("consumer-wait")),
            Step("producer", (), "state", src.site("producer-acquire")),
        ], severity="critical", resource="ready", ended="timeout",
            more_sites=(src.site("producer-set"),)),),
        tolerated=frozenset({"held-across-await", "long-hold"}),
    ))
    src = Source("event_under_lock_async_fixed.py")
    add(Scenario(
        "event_under_lock_async", "fixed", api="asyncio",
        shows="The task waits for the event first and takes the lock afterwards.",
        locks=_locks(src, state="create-state", ready="create-ready"),
    ))

    # --- join a thread while holding the lock it needs ----------------------------------
    src = Source("join_under_lock_threads_bug.py")
    add(Scenario(
        "join_under_lock_threads", "bug", api="threading",
        shows="The main thread joins a worker while holding the lock the worker must take "
              "before it can finish; broken by the join's 0.5 s timeout.",
        locks=_locks(src, registry="create-registry"),
        expected=(_cycle("wait-cycle", src, [
            Step("MainThread", (src.held("registry", "main-acquire"),), "reporter",
                 src.site("main-join")),
            Step("reporter", (), "registry", src.site("reporter-acquire")),
        ], severity="critical", resource="reporter", ended="timeout"),),
        tolerated=frozenset({"long-hold"}),
    ))
    src = Source("join_under_lock_threads_fixed.py")
    add(Scenario(
        "join_under_lock_threads", "fixed", api="threading",
        shows="Join first, then take the lock.",
        locks=_locks(src, registry="create-registry"),
    ))

    # --- dining philosophers -------------------------------------------------------------
    src = Source("dining_philosophers_bug.py")
    forks = src.site("create-forks")
    add(Scenario(
        "dining_philosophers", "bug", api="threading",
        shows="Three philosophers take left then right fork: a cycle of three lock instances "
              "created on one line; staggered, so this run did not hang.",
        locks={f"fork-{i}": forks for i in range(3)},
        expected=(_cycle("potential-deadlock", src, [
            Step(f"philosopher-{i}", (src.held(f"fork-{i}", "take-left"),), f"fork-{(i + 1) % 3}",
                 src.site("take-right"))
            for i in range(3)
        ]),),
    ))
    src = Source("dining_philosophers_fixed.py")
    forks = src.site("create-forks")
    add(Scenario(
        "dining_philosophers", "fixed", api="threading",
        shows="Each philosopher takes the lower-numbered fork first: no cycle.",
        locks={f"fork-{i}": forks for i in range(3)},
    ))

    # --- per-key locks under a semaphore --------------------------------------------------
    src = Source("keyed_locks_bug.py")
    account = src.site("create-account")
    add(Scenario(
        "keyed_locks", "bug", api="threading",
        shows="Per-account locks created on demand and taken in caller order under a "
              "BoundedSemaphore(2), which guards nothing; staggered, so this run did not hang.",
        locks={"transfer-slots": src.site("create-slots"),
               "account-registry": src.site("create-registry"),
               **{f"account:{k}": account for k in ("alice", "bob", "carol", "dave")}},
        expected=(_cycle("potential-deadlock", src, [
            Step("transfer-1", (src.held("account:alice", "account-acquire"),), "account:bob",
                 src.site("account-acquire")),
            Step("transfer-2", (src.held("account:bob", "account-acquire"),), "account:alice",
                 src.site("account-acquire")),
        ]),),
    ))
    src = Source("keyed_locks_fixed.py")
    account = src.site("create-account")
    add(Scenario(
        "keyed_locks", "fixed", api="threading",
        shows="The same transfers lock their accounts in sorted key order.",
        locks={"transfer-slots": src.site("create-slots"),
               "account-registry": src.site("create-registry"),
               **{f"account:{k}": account for k in ("alice", "bob", "carol", "dave")}},
    ))

    # --- deadlocks that really happen -------------------------------------------------
    src = Source("deadlock_threads_bug.py")
    add(Scenario(
        "deadlock_threads", "bug", api="threading",
        shows="Two threads really deadlock on sessions and users; the program gives up "
              "after 1 s and exits with both threads still blocked.",
        locks=_locks(src, sessions="create-sessions", users="create-users"),
        expected=(_two_lock_inversion(src, "login", "rename", "deadlock", ended="end-of-trace"),),
        tolerated=frozenset({"long-hold"}),
    ))
    src = Source("deadlock_threads_fixed.py")
    add(Scenario(
        "deadlock_threads", "fixed", api="threading",
        shows="Both threads take sessions before users.",
        locks=_locks(src, sessions="create-sessions", users="create-users"),
    ))
    src = Source("deadlock_async_bug.py")
    add(Scenario(
        "deadlock_async", "bug", api="asyncio",
        shows="Two asyncio tasks really deadlock on sessions and users; after 1 s the main "
              "task cancels both.",
        locks=_locks(src, sessions="create-sessions", users="create-users"),
        expected=(_two_lock_inversion(src, "login", "rename", "deadlock", ended="cancelled"),),
        tolerated=frozenset({"held-across-await", "long-hold"}),
    ))
    src = Source("deadlock_async_fixed.py")
    add(Scenario(
        "deadlock_async", "fixed", api="asyncio",
        shows="Both tasks take sessions before users, after their await.",
        locks=_locks(src, sessions="create-sessions", users="create-users"),
    ))

    # --- waits and acquires that just did not end well -------------------------------
    src = Source("stuck_waiter_bug.py")
    add(Scenario(
        "stuck_waiter", "bug", api="threading",
        shows="A thread waits for an event nobody sets; the program exits with the wait open.",
        locks=_locks(src, shutdown="create-shutdown"),
        expected=(_cycle("stalled", src, [
            Step("worker", (), "shutdown", src.site("worker-wait")),
        ], resource="shutdown", ended="end-of-trace"),),
    ))
    src = Source("stuck_waiter_fixed.py")
    add(Scenario(
        "stuck_waiter", "fixed", api="threading",
        shows="main sets the event and joins the worker.",
        locks=_locks(src, shutdown="create-shutdown"),
    ))
    src = Source("lock_timeout_bug.py")
    add(Scenario(
        "lock_timeout", "bug", api="threading",
        shows="An acquire with a 0.1 s timeout gives up because another thread holds the "
              "lock for 0.4 s.",
        locks=_locks(src, db="create-db"),
        expected=(
            Expected("acquire-timeout", ("db",), (src.site("report-acquire"),),
                     actors=("reporter",), folded_under="long-hold"),
            Expected("long-hold", ("db",), (src.site("migrate-acquire"),), actors=("migrator",)),
        ),
    ))
    src = Source("lock_timeout_fixed.py")
    add(Scenario(
        "lock_timeout", "fixed", api="threading",
        shows="The long critical section is cut into short batches; the timed acquire succeeds.",
        locks=_locks(src, db="create-db"),
    ))

    # --- inversions that cannot deadlock ------------------------------------------------
    src = Source("guarded_inversion_gate.py")
    add(Scenario(
        "guarded_inversion", "gate", api="threading",
        shows="Opposite orders on sessions and users, both always under a common gate lock: "
              "cannot deadlock, listed as guarded.",
        locks=_locks(src, gate="create-gate", sessions="create-sessions", users="create-users"),
        expected=(_cycle("guarded-cycle", src, [
            Step("login", (src.held("gate", "login-gate"), src.held("sessions", "login-sessions")),
                 "users", src.site("login-users")),
            Step("rename", (src.held("gate", "rename-gate"), src.held("users", "rename-users")),
                 "sessions", src.site("rename-sessions")),
        ], reason="gate-lock", guard="gate"),),
    ))
    src = Source("guarded_inversion_one_thread.py")
    add(Scenario(
        "guarded_inversion", "one_thread", api="threading",
        shows="Opposite orders on sessions and users, both in the main thread: cannot "
              "deadlock, listed as guarded.",
        locks=_locks(src, sessions="create-sessions", users="create-users"),
        expected=(_two_lock_inversion(src, "MainThread", "MainThread", "guarded-cycle",
                                      reason="single-actor"),),
    ))
    src = Source("guarded_inversion_start_join.py")
    add(Scenario(
        "guarded_inversion", "start_join", api="threading",
        shows="Opposite orders on sessions and users in two threads, the second started only "
              "after the first was joined: cannot deadlock, listed as guarded.",
        locks=_locks(src, sessions="create-sessions", users="create-users"),
        expected=(_two_lock_inversion(src, "login", "rename", "guarded-cycle",
                                      reason="ordered"),),
    ))
    src = Source("guarded_inversion_event.py")
    add(Scenario(
        "guarded_inversion", "event", api="threading",
        shows="Opposite orders on sessions and users in a request thread and the main thread, "
              "which waits for the Event a listener sets when ready and the request sets when "
              "done (as logging.config.listen): cannot deadlock, listed as guarded.",
        locks=_locks(src, sessions="create-sessions", users="create-users"),
        expected=(_two_lock_inversion(src, "login", "MainThread", "guarded-cycle",
                                      reason="ordered"),),
    ))

    # --- a busy, correct service ----------------------------------------------------------
    src = Source("busy_service_ok.py")
    add(Scenario(
        "busy_service", "ok", api="threading",
        shows="A thread pool, logging, a queue.Queue producer/consumer and a Condition, all "
              "correct: nothing to report but statistics.",
        locks=_locks(src, stats="create-stats", results="create-results"),
    ))
    return out


@cache
def scenarios() -> tuple[Scenario, ...]:
    """Every scenario run, in a stable order."""
    return tuple(_build())


def by_id(scenario_id: str) -> Scenario:
    for scenario in scenarios():
        if scenario.id == scenario_id:
            return scenario
    raise KeyError(scenario_id)


if __name__ == "__main__":
    json.dump([s.as_dict() for s in scenarios()], sys.stdout, indent=2)
    sys.stdout.write("\n")
