"""The findings model: what a rule reports, and its stable fingerprint."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

SEVERITIES = ("critical", "error", "warning", "info")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}  # 0 = most severe

KINDS = {
    "deadlock": "critical",
    "self-deadlock": "error",
    "potential-deadlock": "error",
    "wait-cycle": "error",
    "held-across-await": "warning",
    "long-hold": "warning",
    "stalled": "warning",
    "acquire-timeout": "warning",
    "guarded-cycle": "info",
    "hot-lock": "info",
}


def at_or_above(severity: str, threshold: str) -> bool:
    """True when `severity` is at least as severe as `threshold` ('never' matches nothing)."""
    if threshold == "never":
        return False
    return SEVERITY_RANK[severity] <= SEVERITY_RANK[threshold]


@dataclass
class Finding:
    """One finding, in the terms of docs/findings-format.md (ids and wall times are added on output)."""

    kind: str
    title: str
    message: str
    fingerprint_parts: list[str]
    severity: str = ""
    locks: list[dict] = field(default_factory=list)
    threads: list[dict] = field(default_factory=list)
    sites: list[dict] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    count: int = 1
    run: str | None = None
    first_ts: int | None = None
    last_ts: int | None = None
    details: dict = field(default_factory=dict)
    partial: str | None = None  # why the evidence is incomplete (events lost), when it is
    about: list[str] = field(default_factory=list)  # the holds and waits it is about (analyzer/fold.py)

    def __post_init__(self) -> None:
        if not self.severity:
            self.severity = KINDS[self.kind]

    @property
    def fingerprint(self) -> str:
        """Hash of kind + lock creation sites + code sites: stable across runs."""
        text = "\x1f".join([self.kind, *(p or "" for p in self.fingerprint_parts)])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def sort_key(self) -> tuple:
        return (SEVERITY_RANK[self.severity], self.kind, self.run or "", self.first_ts or 0, self.title)

    def to_json(self, fid: str, wall) -> dict:
        """The finding as a JSON object; `wall(run, ts)` converts trace time to ISO text."""
        return {
            "id": fid,
            "fingerprint": self.fingerprint,
            "kind": self.kind,
            "severity": self.severity,
            "title": self.title,
            "message": self.message,
            "locks": self.locks,
            "threads": self.threads,
            "sites": self.sites,
            "steps": self.steps,
            "count": self.count,
            "run": self.run,
            "first_ts": self.first_ts,
            "first_wall": wall(self.run, self.first_ts),
            "last_ts": self.last_ts,
            "last_wall": wall(self.run, self.last_ts),
            "details": self.details,
            "partial": self.partial is not None,
            "partial_reason": self.partial,
            "about": self.about,
            "folded_into": None,
            "related": [],
        }
