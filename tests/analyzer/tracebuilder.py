"""Build valid lockscope v1 traces by hand for analyzer tests (a stand-in for
the recorder when a test needs an exact interleaving)."""
from __future__ import annotations

from pathlib import Path

import orjson


class Trace:
    """Records of one run; `write()` emits them as a JSONL file.

    Timestamps advance by 1 µs per event unless `ts` is given.
    """

    def __init__(self, run: str = "run1", cwd: str = "/app", mono_ns: int = 1_000_000_000,
                 wall_ns: int = 1_795_640_400_000_000_000, version: int = 1) -> None:
        self.run = run
        self.records: list[dict] = [{
            "k": "header", "format": "lockscope-trace", "version": version, "run": run,
            "part": 0, "pid": 4242, "host": "test", "runtime": "CPython 3.11", "argv": ["app.py"],
            "cwd": cwd, "clock": "monotonic", "mono_ns": mono_ns, "wall_ns": wall_ns, "settings": {},
        }]
        self.cwd = cwd
        self.ts = mono_ns
        self._next_id = 1
        self._sites: dict[tuple, int] = {}
        self.main = self.thread("MainThread")

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def tick(self, ns: int = 1000) -> int:
        self.ts += ns
        return self.ts

    def site(self, line: int, func: str = "f", file: str = "app.py") -> int:
        key = (file, line, func)
        if key not in self._sites:
            sid = len(self._sites) + 1
            self._sites[key] = sid
            path = file if file.startswith("/") else f"{self.cwd}/{file}"
            self.records.append({"k": "site", "id": sid, "file": path, "line": line, "func": func,
                                 "stack": [[path, line, func]]})
        return self._sites[key]

    def thread(self, name: str, parent: int | None = None) -> int:
        tid = self._id()
        self.records.append({"k": "thread", "id": tid, "name": name, "parent": parent,
                             "ident": 1000 + tid, "native_id": 2000 + tid, "daemon": False,
                             "ts": self.tick()})
        if parent is not None:
            self.ev(parent, tid, "start", line=900)
        return tid

    def lock(self, name: str | None = None, type: str = "threading.Lock", line: int | None = None,
             reentrant: bool | None = None, value: int | None = None) -> int:
        lid = self._id()
        rec = {"k": "lock", "id": lid, "type": type, "name": name,
               "reentrant": reentrant if reentrant is not None else type == "threading.RLock",
               "site": self.site(line if line is not None else 100 + lid, "<module>"),
               "ts": self.tick(), "th": self.main}
        if value is not None:
            rec["value"] = value
        self.records.append(rec)
        return lid

    def segment(self, name: str, kind: str = "test") -> int:
        sid = self._id()
        self.records.append({"k": "segment", "id": sid, "kind": kind, "name": name})
        return sid

    def ev(self, th: int, obj: int, op: str, line: int | None = None, ts: int | None = None,
           task: int | None = None, func: str = "f", **extra) -> None:
        rec = {"k": "ev", "ts": ts if ts is not None else self.tick(), "th": th, "task": task,
               "obj": obj, "op": op}
        if line is not None:
            rec["site"] = self.site(line, func)
        rec.update(extra)
        self.records.append(rec)

    # convenience wrappers
    def acquire(self, th: int, lock: int, line: int, wait_ns: int | None = None, **kw) -> None:
        if wait_ns is not None:
            self.ev(th, lock, "wait", line, **kw)
            self.tick(wait_ns)
        self.ev(th, lock, "acquire", line, **kw)

    def release(self, th: int, lock: int, hold_ns: int = 0, **kw) -> None:
        self.tick(hold_ns)
        self.ev(th, lock, "release", **kw)

    def start(self, parent: int, child: int) -> None:
        self.ev(parent, child, "start", line=900)

    def end(self, th: int) -> None:
        self.ev(th, th, "end")

    def join(self, joiner: int, child: int) -> None:
        self.ev(joiner, child, "join", line=901)

    def nested(self, th: int, locks: list[int], lines: list[int], hold_ns: int = 1000) -> None:
        """Take `locks` in order (at `lines`), then release them in reverse."""
        for lock, line in zip(locks, lines, strict=True):
            self.acquire(th, lock, line)
        self.tick(hold_ns)
        for lock in reversed(locks):
            self.release(th, lock)

    def write(self, path: Path, end: bool = True) -> Path:
        recs = list(self.records)
        if end:
            recs.append({"k": "end", "ts": self.tick(), "reason": "exit"})
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in recs))
        return path
