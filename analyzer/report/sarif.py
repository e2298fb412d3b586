"""SARIF 2.1.0: one result per main finding, for GitHub code scanning and IDEs; the
findings folded under it (analyzer/fold.py) add their sites as related locations."""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import quote

import orjson

from ..findings import KINDS
from ..fold import also_line, also_text, folded_under, main_findings
from ..paths import SITE_PACKAGES, STDLIB

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


# uriBaseIds of the shown paths' roots (paths.shown_path): relative paths are below
# the source root; <stdlib>/ and <site-packages>/ stand for directories of the
# recorded interpreter, which may not exist where the analysis runs
SRCROOT, STDLIB_BASE, PACKAGES_BASE = "SRCROOT", "STDLIB", "SITE_PACKAGES"
BASE_DESCRIPTIONS = {
    SRCROOT: "The source root: --source-root, or the recorded process's working directory.",
    STDLIB_BASE: "The Python standard library directory of the recorded interpreter.",
    PACKAGES_BASE: "The site-packages directory of the recorded interpreter.",
}


def _file_uri(path: str) -> str | None:
    """file: URI of an absolute POSIX or Windows path, else None."""
    if path.startswith("/"):
        return PurePosixPath(path).as_uri()
    if len(path) > 2 and path[1] == ":" and path[2] in "\\/":
        return PureWindowsPath(path).as_uri()
    return None


def _artifact(path: str) -> dict:
    """The artifactLocation of a shown path."""
    for prefix, base in ((STDLIB, STDLIB_BASE), (SITE_PACKAGES, PACKAGES_BASE)):
        if path.startswith(prefix):
            return {"uri": quote(path[len(prefix):]), "uriBaseId": base}
    uri = _file_uri(path)
    return {"uri": uri} if uri else {"uri": quote(path.replace("\\", "/")), "uriBaseId": SRCROOT}


def _location(site: dict, message: str | None = None) -> dict:
    loc = {"physicalLocation": {"artifactLocation": _artifact(site["path"]),
                                "region": {"startLine": max(int(site["line"] or 1), 1)}}}
    if message:
        loc["message"] = {"text": message}
    return loc


def _root_uri(doc: dict) -> str | None:
    """The file URI of the source root, when one absolute directory is it for every run."""
    root = (doc.get("options") or {}).get("source_root")
    if not root:
        cwds = {p.get("cwd") for p in doc["trace"].get("processes") or []}
        root = cwds.pop() if len(cwds) == 1 else None
    uri = _file_uri(root) if isinstance(root, str) else None
    return uri.rstrip("/") + "/" if uri else None


def _base_ids(doc: dict, results: list[dict]) -> dict:
    """originalUriBaseIds for the bases the results use."""
    used = {loc["physicalLocation"]["artifactLocation"].get("uriBaseId")
            for r in results for loc in r.get("locations", []) + r.get("relatedLocations", [])}
    out = {}
    for base, text in BASE_DESCRIPTIONS.items():
        if base in used:
            out[base] = {"description": {"text": text}}
            if base == SRCROOT and _root_uri(doc):
                out[base]["uri"] = _root_uri(doc)
    return out


def _located(site: dict | None) -> bool:
    """A site in a file: one in no file (<frozen ...>, <string>) has no location."""
    return bool(site and site.get("path")
                and (not site["path"].startswith("<") or site["path"].startswith((STDLIB, SITE_PACKAGES))))


def to_sarif(doc: dict) -> dict:
    """The SARIF log for findings document `doc`."""
    rules = [{"id": kind, "name": kind.replace("-", " ").title().replace(" ", ""),
              "shortDescription": {"text": DESCRIPTIONS.get(kind, kind)},
              "defaultConfiguration": {"level": LEVEL[sev]},
              "properties": {"severity": sev}} for kind, sev in KINDS.items()]
    index = {r["id"]: i for i, r in enumerate(rules)}
    results = []
    by_id = {f["id"]: f for f in doc["findings"]}
    for f in main_findings(doc["findings"]):
        sites = [s for s in f["sites"] if _located(s)]
        also = also_line(f, by_id)
        result = {
            "ruleId": f["kind"],
            "ruleIndex": index.get(f["kind"], 0),
            "level": LEVEL[f["severity"]],
            "message": {"text": f["title"] + "\n" + f["message"] + (f"\nAlso: {also}" if also else "")},
            "partialFingerprints": {"lockscope/v1": f["fingerprint"]},
            "properties": {"severity": f["severity"], "count": f["count"], "lockscopeId": f["id"],
                           "related": list(f.get("related") or [])},
        }
        if sites:
            result["locations"] = [_location(sites[0])]
            related = [_location(s, f"{s.get('func') or ''} ({s['site']})".strip()) for s in sites[1:]]
            shown = {s["site"] for s in sites}
            for folded in folded_under(f, by_id):  # their sites, saying which finding they are from
                for s in folded.get("sites") or []:
                    if _located(s) and s["site"] not in shown:
                        shown.add(s["site"])
                        related.append(_location(s, f"{folded['id']} {folded.get('kind')}: {also_text(folded)} "
                                                    f"({s['site']})"))
            if related:
                result["relatedLocations"] = [loc | {"id": i} for i, loc in enumerate(related, 1)]
        if f.get("partial"):  # CI readers see only the message: say the evidence is incomplete
            result["message"]["text"] += f"\nPartial evidence: {f.get('partial_reason') or 'events were lost'}."
            result["properties"]["partial"] = True
        results.append(result)
    run = {
        "tool": {"driver": {"name": "lockscope", "version": doc["tool"]["version"],
                            "informationUri": "https://github.com/lockscope/lockscope",
                            "rules": rules}},
        "results": results,
        "columnKind": "unicodeCodePoints",
    }
    bases = _base_ids(doc, results)
    if bases:
        run["originalUriBaseIds"] = bases
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


def dumps(doc: dict) -> bytes:
    """The SARIF log for `doc`, as the bytes of its file."""
    return orjson.dumps(to_sarif(doc), option=orjson.OPT_INDENT_2) + b"\n"


def write(doc: dict, path: str | os.PathLike) -> None:
    """Write the SARIF log for `doc` to `path`."""
    Path(path).write_bytes(dumps(doc))
