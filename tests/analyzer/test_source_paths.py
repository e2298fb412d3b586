"""Paths in reports: relative to the source root (the recorded cwd, or
--source-root), the standard library as <stdlib>/, installed packages as
<site-packages>/, anything else absolute; in the terminal, HTML, JSON and SARIF."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from analyzer import analyze
from analyzer.cli import app
from analyzer.paths import shown_path
from analyzer.report import html, sarif

from .tracebuilder import Trace

ROOT = Path(__file__).resolve().parents[2]

STORE = """\
import threading

accounts = threading.Lock()  # accounts-created
ledger = threading.Lock()  # ledger-created


def pay():
    with accounts:  # pay-outer
        with ledger:  # pay-inner
            pass


def audit():
    with ledger:  # audit-outer
        with accounts:  # audit-inner
            pass
"""

MAIN = """\
import threading

import store

a = threading.Thread(target=store.pay, name="payer")
b = threading.Thread(target=store.audit, name="auditor")
a.start()
b.start()
a.join()
b.join()
"""


@pytest.mark.parametrize("file, root, cwd, shown", [
    ("/srv/app/pkg/mod.py", "/srv/app", None, "pkg/mod.py"),
    ("/srv/app/pkg/mod.py", "/srv/app/", None, "pkg/mod.py"),
    ("/srv/application/mod.py", "/srv/app", None, "/srv/application/mod.py"),  # not below /srv/app
    ("/srv/other/mod.py", "/srv/app", None, "/srv/other/mod.py"),
    ("/usr/lib/python3.12/threading.py", "/srv/app", None, "<stdlib>/threading.py"),
    ("/usr/local/lib/python3.13t/asyncio/locks.py", None, None, "<stdlib>/asyncio/locks.py"),
    ("/home/u/.pyenv/versions/3.11.7/lib/python3.11/queue.py", "/home/u", None, "<stdlib>/queue.py"),
    ("/usr/lib/python3/dist-packages/requests/api.py", None, None, "<site-packages>/requests/api.py"),
    ("/srv/app/.venv/lib/python3.12/site-packages/redis/lock.py", "/srv/app", None,
     "<site-packages>/redis/lock.py"),  # a virtualenv below the root is still a library
    ("C:\\Python312\\Lib\\threading.py", "C:\\app", None, "<stdlib>/threading.py"),
    ("C:\\app\\svc\\main.py", "C:\\app", None, "svc/main.py"),
    ("C:\\Python312\\Lib\\site-packages\\pkg\\m.py", None, None, "<site-packages>/pkg/m.py"),
    ("pkg/mod.py", "/srv", "/srv/app", "app/pkg/mod.py"),  # relative: resolved against the cwd
    ("../lib/mod.py", "/srv/app", "/srv/app", "/srv/lib/mod.py"),
    ("tests/x.py", "/srv", ".", "tests/x.py"),  # relative to an unknown directory: as recorded
    ("<frozen importlib._bootstrap>", "/srv", None, "<frozen importlib._bootstrap>"),
])
def test_shown_path(file, root, cwd, shown):
    assert shown_path(file, root, cwd) == shown


def _marks(source: str, name: str) -> dict[str, str]:
    """'pay-outer' -> 'store.py:8': the line of each `# mark` comment."""
    return {m: f"{name}:{i}" for i, line in enumerate(source.splitlines(), 1)
            for m in re.findall(r"# ([\w-]+)$", line)}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """Traces of proj/app/main.py run with cwd proj/app, with 6-frame stacks."""
    base = tmp_path_factory.mktemp("paths")
    app_dir = base / "proj" / "app"
    app_dir.mkdir(parents=True)
    (app_dir / "store.py").write_text(STORE)
    (app_dir / "main.py").write_text(MAIN)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LOCKSCOPE_OUT", None)
    subprocess.run([sys.executable, "-m", "recorder", "--out", str(base / "traces"), "--stacks", "6", "--",
                    "main.py"], cwd=app_dir, env=env, check=True, timeout=60, stdout=subprocess.DEVNULL)
    return base


def _sites(doc: dict) -> set[str]:
    """Every site text of the findings and the lock table."""
    out = {s["site"] for f in doc["findings"] for s in f["sites"]}
    out |= {h["acquired_at"] for f in doc["findings"] for s in f["steps"] for h in s["holds"]}
    out |= {lk["created_at"] for lk in doc["locks"]}
    out |= {s["site"] for lk in doc["locks"] for s in lk["top_hold_sites"]}
    return out


def _uris(log: dict) -> set[tuple[str, str | None]]:
    return {(loc["physicalLocation"]["artifactLocation"]["uri"],
             loc["physicalLocation"]["artifactLocation"].get("uriBaseId"))
            for r in log["runs"][0]["results"] for loc in r.get("locations", []) + r.get("relatedLocations", [])}


def test_paths_are_relative_to_the_recorded_cwd_by_default(recorded):
    doc = analyze([str(recorded / "traces")])
    marks = _marks(STORE, "store.py")
    assert _sites(doc) == {marks[m] for m in ("accounts-created", "ledger-created", "pay-outer", "pay-inner",
                                              "audit-outer", "audit-inner")}
    log = sarif.to_sarif(doc)
    assert _uris(log) == {("store.py", "SRCROOT")}
    assert log["runs"][0]["originalUriBaseIds"]["SRCROOT"]["uri"] == (recorded / "proj" / "app").as_uri() + "/"


def test_source_root_changes_every_path(recorded):
    doc = analyze([str(recorded / "traces")], source_root=recorded / "proj")
    marks = _marks(STORE, "app/store.py")
    assert _sites(doc) == {marks[m] for m in ("accounts-created", "ledger-created", "pay-outer", "pay-inner",
                                              "audit-outer", "audit-inner")}
    assert doc["options"]["source_root"] == str(recorded / "proj")
    log = sarif.to_sarif(doc)
    assert _uris(log) == {("app/store.py", "SRCROOT")}
    assert log["runs"][0]["originalUriBaseIds"]["SRCROOT"]["uri"] == (recorded / "proj").as_uri() + "/"


def test_paths_outside_the_source_root_stay_absolute(recorded):
    other = recorded / "other"
    doc = analyze([str(recorded / "traces")], source_root=other)
    store = recorded / "proj" / "app" / "store.py"
    assert _sites(doc) == set(_marks(STORE, str(store)).values())
    log = sarif.to_sarif(doc)
    assert _uris(log) == {(store.as_uri(), None)}
    assert "originalUriBaseIds" not in log["runs"][0]


def test_stacks_in_the_html_follow_the_source_root(recorded):
    pages: dict = {}
    analyze([str(recorded / "traces")], source_root=recorded / "proj",
            on_result=lambda d, con: pages.update(page=html.render(d, con=con)))
    page = pages["page"]
    assert "app/store.py" in page and "<stdlib>/threading.py" in page.replace("&lt;", "<").replace("&gt;", ">")
    assert str(recorded / "proj" / "app" / "store.py") not in page  # the sites' paths, absolute
    assert os.path.dirname(threading.__file__) not in page


def test_cli_source_root(recorded, tmp_path):
    out = tmp_path / "f.json"
    result = CliRunner().invoke(app, ["analyze", str(recorded / "traces"), "--source-root",
                                      str(recorded / "proj"), "--json", str(out), "--fail-on", "never"])
    assert result.exit_code == 0, result.output
    doc = orjson.loads(out.read_bytes())
    assert _sites(doc) == set(_marks(STORE, "app/store.py").values())
    assert "app/store.py:" in result.output and "proj/app/store.py" not in result.output


def test_library_sites_are_shortened(tmp_path):
    """Locks made in the standard library and a site-packages module, taken at
    sites below the cwd, outside it and in the standard library."""
    t = Trace(cwd="/srv/app")
    q = t.site(35, "__init__", file="/usr/lib/python3.12/queue.py")
    p = t.site(10, "__init__", file="/srv/app/.venv/lib/python3.12/site-packages/pool/core.py")
    locks = []
    for sid in (q, p):
        locks.append(t._id())
        t.records.append({"k": "lock", "id": locks[-1], "type": "threading.Lock", "name": None,
                          "reentrant": False, "site": sid, "ts": t.tick(), "th": t.main})
    t1, t2 = t.thread("one", parent=t.main), t.thread("two", parent=t.main)
    t.acquire(t1, locks[0], 20)
    t.ev(t1, locks[1], "acquire", site=t.site(5, "g", file="/srv/other/x.py"))
    t.release(t1, locks[1])
    t.release(t1, locks[0])
    t.ev(t2, locks[1], "acquire", site=t.site(230, "_acquireLock", file="/usr/lib/python3.12/logging/__init__.py"))
    t.acquire(t2, locks[0], 31)
    t.release(t2, locks[0])
    t.release(t2, locks[1])
    doc = analyze([str(t.write(tmp_path / "t.jsonl"))])
    (f,) = [f for f in doc["findings"] if f["kind"] == "potential-deadlock"]
    assert {lk["created_at"] for lk in f["locks"]} == {"<stdlib>/queue.py:35", "<site-packages>/pool/core.py:10"}
    assert sorted(s["site"] for s in f["sites"]) == [
        "/srv/other/x.py:5", "<stdlib>/logging/__init__.py:230", "app.py:20", "app.py:31"]
    log = sarif.to_sarif(doc)
    assert _uris(log) == {("app.py", "SRCROOT"), ("file:///srv/other/x.py", None),
                          ("logging/__init__.py", "STDLIB")}
    bases = log["runs"][0]["originalUriBaseIds"]
    assert bases["SRCROOT"]["uri"] == "file:///srv/app/"
    assert "uri" not in bases["STDLIB"]  # a directory of the recording machine
