"""SARIF 2.1.0: one result per finding, for GitHub code scanning and IDEs."""
from __future__ import annotations

import os
from pathlib import Path

import orjson

from ..findings import KINDS

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {"critical": "error", "error": "error", "warning": "warning", "info": "note"}
DESCRIPTIONS = {
    "deadlock": "Threads or tasks were blocked in a wait-for cycle.",
    "self-deadlock": "A thread or task waited for a non-reentrant lock it already held.",
    "potential-deadlock": "Locks are taken in inconsistent orders by threads that can run concurrently.",
    "wait-cycle": "A wait on an event/condition/queue while holding a lock the signaller needs.",
    "held-across-await": "An asyncio task held a lock while suspended at an await.",
    "long-hold": "A lock was held longer than the configured threshold.",
    "stalled": "A wait never ended before the end of the trace.",
    "acquire-timeout": "A blocking acquire gave up.",
    "guarded-cycle": "A lock-order cycle that cannot deadlock (gate lock, one thread, or happens-before order).",
    "hot-lock": "A heavily contended lock.",
}


def _location(site: dict, message: str | None = None) -> dict:
    loc = {"physicalLocation": {"artifactLocation": {"uri": site["path"]},
                                "region": {"startLine": max(int(site["line"] or 1), 1)}}}
    if message:
        loc["message"] = {"text": message}
    return loc


def to_sarif(doc: dict) -> dict:
    """The SARIF log for findings document `doc`."""
    rules = [{"id": kind, "name": kind.replace("-", " ").title().replace(" ", ""),
              "shortDescription": {"text": DESCRIPTIONS.get(kind, kind)},
              "defaultConfiguration": {"level": LEVEL[sev]},
              "properties": {"severity": sev}} for kind, sev in KINDS.items()]
    index = {r["id"]: i for i, r in enumerate(rules)}
    results = []
    for f in doc["findings"]:
        sites = [s for s in f["sites"] if s and s.get("path")]
        result = {
            "ruleId": f["kind"],
            "ruleIndex": index.get(f["kind"], 0),
            "level": LEVEL[f["severity"]],
            "message": {"text": f["title"] + "\n" + f["message"]},
            "partialFingerprints": {"lockscope/v1": f["fingerprint"]},
            "properties": {"severity": f["severity"], "count": f["count"], "lockscopeId": f["id"]},
        }
        if sites:
            result["locations"] = [_location(sites[0])]
            if len(sites) > 1:
                result["relatedLocations"] = [
                    _location(s, f"{s.get('func') or ''} ({s['site']})".strip()) | {"id": i}
                    for i, s in enumerate(sites[1:], 1)]
        if f.get("partial"):  # CI readers see only the message: say the evidence is incomplete
            result["message"]["text"] += f"\nPartial evidence: {f.get('partial_reason') or 'events were lost'}."
            result["properties"]["partial"] = True
        results.append(result)
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "lockscope", "version": doc["tool"]["version"],
                                "informationUri": "https://github.com/lockscope/lockscope",
                                "rules": rules}},
            "results": results,
            "columnKind": "unicodeCodePoints",
        }],
    }


def dumps(doc: dict) -> bytes:
    """The SARIF log for `doc`, as the bytes of its file."""
    return orjson.dumps(to_sarif(doc), option=orjson.OPT_INDENT_2) + b"\n"


def write(doc: dict, path: str | os.PathLike) -> None:
    """Write the SARIF log for `doc` to `path`."""
    Path(path).write_bytes(dumps(doc))
