"""What every rule gets: the loaded database, the options, and lookups that turn
ids into the names and sites a report shows."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property

import duckdb

from .errors import UnusableInput

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def parse_duration(text: str) -> int:
    """'100ms', '2s', '500us', '1500000' (ns) -> nanoseconds."""
    t = text.strip().lower()
    for unit in sorted(_UNITS, key=len, reverse=True):
        if t.endswith(unit):
            number = t[: -len(unit)].strip()
            break
    else:
        unit, number = "ns", t
    try:
        value = float(number)
    except ValueError:
        raise UnusableInput(f"not a duration: {text!r} (use e.g. 100ms, 2s, 500us)") from None
    if value < 0:
        raise UnusableInput(f"duration must not be negative: {text!r}")
    return int(value * _UNITS[unit])


@dataclass
class Options:
    """Analysis options (the `analyze` command's flags)."""

    group_by: str = "instance"
    actors: str = "task"
    long_hold_ns: int = 100_000_000
    max_cycle_length: int = 6
    max_cycles: int = 10_000
    hot_locks: int = 10
    source_root: str | None = None  # absolute; None: each run's recorded cwd
    all_locks: bool = False  # reports list the libraries' locks too

    def to_json(self) -> dict:
        return {"group_by": self.group_by, "actors": self.actors, "long_hold_ns": self.long_hold_ns,
                "max_cycle_length": self.max_cycle_length, "source_root": self.source_root,
                "all_locks": self.all_locks}


@dataclass
class Context:
    """The analysis state shared by the rules."""

    con: duckdb.DuckDBPyConnection
    options: Options
    warnings: list[str] = field(default_factory=list)
    cache: dict = field(default_factory=dict)

    def rows(self, sql: str, params: dict | list | None = None) -> list[dict]:
        cur = self.con.execute(sql, params) if params is not None else self.con.execute(sql)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    @cached_property
    def _clock(self) -> dict[str, tuple[int, int]]:
        return {r: (m, w) for r, m, w in self.con.execute(
            "SELECT run, mono_ns, wall_ns FROM runs").fetchall() if m is not None and w is not None}

    def wall(self, run: str | None, ts: int | None) -> str | None:
        """Trace time -> ISO 8601 UTC wall time, from the run header's clock anchor."""
        if run is None or ts is None or run not in self._clock:
            return None
        mono, wall = self._clock[run]
        ns = wall + (ts - mono)
        t = dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=dt.timezone.utc)
        return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{(ns % 1_000_000_000) // 1000:06d}Z"

    @cached_property
    def _locks(self) -> dict[int, dict]:
        return {r["lk"]: r for r in self.rows("SELECT * FROM lock_classes")}

    def lock(self, lk: int) -> dict:
        """The JSON description of lock key `lk`."""
        r = self._locks[lk]
        return {"id": r["key"], "name": r["name"], "type": r["type"], "created_at": r["created_at"],
                "label": self.lock_label(lk), "expr": r["expr"], "library": r["lib"],
                "made_by": r["made_by"]}

    def lock_label(self, lk: int) -> str:
        """What reports call lock `lk`; no two locks of one analysis share a label."""
        return self._labels[lk]

    def lock_keys(self) -> list[int]:
        """Every lock key of the analysis."""
        return list(self._locks)

    def is_library_lock(self, lk: int) -> bool:
        """True for a lock that a library (standard library, installed package) made."""
        return self._locks[lk]["lib"] is not None

    @cached_property
    def _labels(self) -> dict[int, str]:
        return lock_labels(list(self._locks.values()))

    @cached_property
    def _resource_labels(self) -> dict[tuple[str, int], str]:
        rows = self.rows(
            "SELECT r.run, r.id, r.type, r.name, r.expr, r.lib, r.owner, r.lock, r.ts, "
            "s.site AS created_at, u.site AS made_by FROM resources r "
            "LEFT JOIN sites s ON s.run = r.run AND s.id = r.site "
            "LEFT JOIN sites u ON u.run = r.run AND u.id = r.user_site")
        own_locks = {(str(run), i): lk for run, i, lk in self.con.execute(
            "SELECT run, id, lk FROM lock_keys WHERE (run, id) IN (SELECT run, lock FROM resources)").fetchall()}
        return resource_labels(rows, self._labels, own_locks)

    def resource_label(self, run: str, rid: int) -> str | None:
        """What reports call resource `rid` of `run` (an event, condition, queue, future;
        a queue's sides are the queue); None when `rid` is no resource. No two resources
        share a label, nor a resource and a lock other than its own."""
        return self._resource_labels.get((str(run), rid))

    def lock_identity(self, lk: int) -> str:
        """What a fingerprint keeps of a lock: its creation site (or type and name)."""
        r = self._locks[lk]
        return r["created_at"] or f"{r['type']}:{r['name'] or ''}"

    @cached_property
    def _sites(self) -> dict[tuple[str, int], dict]:
        return {(r["run"], r["id"]): r for r in self.rows(
            "SELECT run, id, path, line, func, site, stack FROM sites")}

    def site(self, run: str, site_id: int | None) -> dict | None:
        """`{"site": "path:line", "path", "line", "func"}` or None."""
        r = self._sites.get((run, site_id))
        if r is None:
            return None
        return {"site": r["site"], "path": r["path"], "line": r["line"], "func": r["func"]}

    def site_text(self, run: str, site_id: int | None) -> str | None:
        r = self._sites.get((run, site_id))
        return r["site"] if r else None

    def stack(self, run: str, site_id: int | None) -> list | None:
        import orjson

        r = self._sites.get((run, site_id))
        if r is None or r["stack"] is None:
            return None
        return orjson.loads(r["stack"])

    @cached_property
    def _actors(self) -> dict[tuple[str, int], dict]:
        out: dict[tuple[str, int], dict] = {}
        for run, i, name in self.con.execute("SELECT run, id, name FROM threads").fetchall():
            out[(run, i)] = {"id": f"{run}/{i}", "name": name, "kind": "thread", "run": run}
        for run, i, name in self.con.execute("SELECT run, id, name FROM tasks").fetchall():
            out[(run, i)] = {"id": f"{run}/{i}", "name": name, "kind": "task", "run": run}
        for run, i, name, kind in self.con.execute("SELECT run, id, name, kind FROM segments").fetchall():
            out[(run, i)] = {"id": f"{run}/{i}", "name": name, "kind": "job" if kind == "job" else "segment",
                             "run": run}
        return out

    def actor(self, run: str, actor_id: int) -> dict:
        return self._actors.get((run, actor_id)) or {
            "id": f"{run}/{actor_id}", "name": f"#{actor_id}", "kind": "thread", "run": run}

    def actor_kind(self, run: str, actor_id: int) -> str:
        return self.actor(run, actor_id)["kind"]


def base_label(r: dict) -> str:
    """A lock's label before it is told apart from others: the program's name, else
    the name its creation line gives it, else type@creation site; a lock a library
    made says which line of the program made it (file name and line)."""
    label = r["name"] or r["expr"] or (
        f"{_short_type(r['type'])}@{_short_site(r['created_at'])}" if r["created_at"] else r["key"])
    if not r["name"] and r["lib"] is not None and r["made_by"]:
        label += f" (made by {_short_site(r['made_by'])})"  # the full path is the lock's 'created at'
    return label


def _short_type(type_: str) -> str:
    """'threading.Lock|threading.RLock' -> 'Lock' (as the reports have shown it)."""
    return type_.split("|")[0].rsplit(".", 1)[-1]


def _short_site(site: str) -> str:
    """'src/app/cache.py:41' -> 'cache.py:41'."""
    return site.replace("\\", "/").rsplit("/", 1)[-1]


def lock_labels(rows: list[dict]) -> dict[int, str]:
    """Label per `lk` of the `lock_classes` rows: `base_label`, and where several locks
    would print the same one, `#1`, `#2`, ... after the name in order of creation."""
    ordered = sorted(rows, key=lambda r: (r["first_ts"] is None, r["first_ts"] or 0,
                                          r["first_run"] or "", r["first_id"] or 0, r["lk"]))
    return _distinct([(r["lk"], r, base_label(r)) for r in ordered], set())


def resource_labels(rows: list[dict], lock_labels: dict[int, str],
                    own_locks: dict[tuple[str, int], int]) -> dict[tuple[str, int], str]:
    """Label per (run, id) of the `resources` rows (with `created_at`, `made_by` sites).

    The resources of one object (an asyncio.Queue and its sides, a queue.Queue's
    conditions) are one thing to a reader and share its label; different objects that
    would print one label are numbered like locks (`Worker.jobs#2`). A resource does
    not take a lock's label either, unless the lock is its own (a condition's lock is
    named like the condition)."""
    objects: dict[tuple[str, int], list[dict]] = {}
    for r in sorted(rows, key=lambda r: (str(r["run"]), r["id"])):
        key = (str(r["run"]), r["owner"] if r["owner"] is not None else r["id"])
        objects.setdefault(key, []).append(r)
    items = []
    for key, members in objects.items():
        head = next((m for m in members if m["owner"] is None), members[0])
        name = next((m["name"] for m in members if m["name"]), None)
        expr = head["expr"] or next((m["expr"] for m in members if m["expr"]), None)
        r = {"name": name, "expr": expr, "type": head["type"] or "resource", "lib": head["lib"],
             "made_by": head["made_by"], "created_at": head["created_at"],
             "key": _short_type(head["type"] or "resource")}
        mine = {lock_labels.get(own_locks.get((key[0], m["lock"]))) for m in members if m["lock"] is not None}
        items.append((key, r, base_label(r), min((m["ts"] or 0) for m in members), mine))
    items.sort(key=lambda i: (i[3], i[0]))
    taken = set(lock_labels.values())
    # a label that is only the object's own lock's is not taken for it
    by_object = _distinct([(key, r, label) for key, r, label, _, _ in items],
                          taken, {key: mine for key, _, _, _, mine in items})
    return {(str(m["run"]), m["id"]): by_object[(str(m["run"]), m["owner"] if m["owner"] is not None else m["id"])]
            for m in rows}


def _distinct(items: list[tuple], taken: set[str], allowed: dict | None = None) -> dict:
    """Label per key of `items` ((key, row, base label), in order of creation): the base
    label, and where several would print the same one (or one of `taken`, unless
    `allowed[key]` has it), `#1`, `#2`, ... after the name."""
    groups: dict[str, list[tuple]] = {}
    for key, r, label in items:
        groups.setdefault(label, []).append((key, r))
    allowed = allowed or {}
    clash = {label for label, members in groups.items()
             if label in taken and any(label not in allowed.get(k, ()) for k, _ in members)}
    taken = taken | set(groups)
    out: dict = {}
    for label, members in groups.items():
        if len(members) == 1 and label not in clash:
            out[members[0][0]] = label
            continue
        # the number goes after the name: Account.lock#2, threading.Lock#2@a.py:4,
        # Future._condition#2 (made by jobs.py:9)
        first = members[0][1]
        cut = label.find(" (made by ")
        if cut < 0 and not (first["name"] or first["expr"]) and first["created_at"]:
            cut = label.rfind("@" + _short_site(first["created_at"]))
        head, tail = (label, "") if cut < 0 else (label[:cut], label[cut:])
        n = 0
        for key, _ in members:
            n += 1
            numbered = f"{head}#{n}{tail}"
            while numbered in taken and numbered not in allowed.get(key, ()):
                # a program's own name may look like one
                n += 1
                numbered = f"{head}#{n}{tail}"
            taken.add(numbered)
            out[key] = numbered
    return out
