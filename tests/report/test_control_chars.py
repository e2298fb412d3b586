"""Control and bidi characters from a trace never reach a terminal or a page raw.

A crafted trace names its locks, threads, code file, argv and its own file name
with a title change (ESC ] 0 ; x BEL), a clear screen (ESC [ 2 J) followed by a
fake all-clear, and a right-to-left override (U+202E). `lockscope analyze` runs
as a subprocess, as a user would run it; its terminal output, its one-line error
messages and the HTML report must show each of those characters escaped
(`\\x1b`, `\\x07`, `\\u202e`) and nothing raw.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from analyzer.report.visible import visible, visible_lines
from tests.analyzer.tracebuilder import Trace

from .pageparse import parse

ROOT = Path(__file__).resolve().parents[2]
TITLE, CLEAR, RLO = "\x1b]0;x\x07", "\x1b[2J all clear, 0 findings", "\u202e"
EVIL = TITLE + CLEAR + RLO
# every character the reports must never print raw (line feeds and tabs are ours)
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
ESCAPED = ("\\x1b]0;x\\x07", "\\x1b[2J all clear", "\\u202e")


def crafted(tmp_path: Path) -> Path:
    """Two threads taking two locks in opposite orders, every name hostile."""
    t = Trace()
    t.records[0]["argv"] = [f"app{EVIL}.py", f"--user={RLO}gnp.exe"]
    login = t.thread(f"login{EVIL}", parent=t.main)
    rename = t.thread(f"re{RLO}name", parent=t.main)
    sessions = t.lock(f"sessions{EVIL}")
    users = t.lock(f"us{RLO}ers")
    t.nested(login, [sessions, users], [10, 11])
    t.nested(rename, [users, sessions], [20, 21])
    t.end(login)
    t.end(rename)
    for r in t.records:
        if r["k"] == "site":
            r["file"] = r["file"].replace("app.py", f"mod{EVIL}.py")
            r["stack"] = [[r["file"], r["line"], r["func"]]]
    return t.write(tmp_path / f"trace{TITLE}{RLO}.jsonl")


def lockscope(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="80", PYTHONPATH=str(ROOT))
    env.pop("LOCKSCOPE_OUT", None)
    return subprocess.run([sys.executable, "-c", "from analyzer.entry import main; main()", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, encoding="utf-8", timeout=120)


def test_visible_escapes_every_control_and_bidi_character():
    raw = "".join(map(chr, [*range(0x20), *range(0x7F, 0xA0), 0x61C, 0x200E, 0x200F, *range(0x202A, 0x202F),
                            *range(0x2066, 0x206A), 0x2028, 0x2029]))
    shown = visible("a" + raw + "b")
    assert not RAW.search(shown) and "\n" not in shown and "\t" not in shown
    assert shown.startswith("a\\x00\\x01") and shown.endswith("\\u2028\\u2029b")
    assert "\\x1b" in shown and "\\x7f" in shown and "\\x9b" in shown and "\\u202e" in shown
    assert visible("plain text, ünïcödé, 漢字, C:\\path") == "plain text, ünïcödé, 漢字, C:\\path"
    assert visible_lines("one\ntwo\x1b") == "one\ntwo\\x1b"
    assert visible(None) == ""


def test_terminal_and_html_show_hostile_names_escaped(tmp_path):
    trace = crafted(tmp_path)
    # plotly.js itself (inline by default) has raw control characters in its code: load it from its CDN
    result = lockscope("analyze", str(trace), "--html", str(tmp_path / "r.html"), "--plotlyjs", "cdn", cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # the potential deadlock is an error
    out = result.stdout + result.stderr
    assert not RAW.search(out), repr(RAW.search(out))
    assert "potential-deadlock" in out
    for text in ESCAPED:
        assert text in out, text
    assert "sessions\\x1b]0;x\\x07" in out and "re\\u202ename" in out and "us\\u202eers" in out
    assert "mod\\x1b]0;x\\x07" in out  # the code file of the sites

    page_html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert not RAW.search(page_html), repr(RAW.search(page_html))
    page = parse(page_html)
    assert "sessions\\x1b]0;x\\x07" in page.text and "us\\u202eers" in page.text
    assert "app\\x1b]0;x\\x07" in page.text and "--user=\\u202egnp.exe" in page.text  # argv
    assert "login\\x1b]0;x\\x07" in page.text
    attrs = [v for e in page.elements for v in e.attrs.values()]
    assert any("\\x1b" in v for v in attrs)  # e.g. the statistics table's sort keys
    # the chart data: plotly would draw these strings, the browser decodes the JSON escapes
    import json
    for s in page.scripts:
        if s.attrs.get("type") == "application/json":
            assert not RAW.search(json.dumps(json.loads(s.text), ensure_ascii=False))


def test_error_messages_show_hostile_names_escaped(tmp_path):
    bad = tmp_path / f"x{TITLE}{RLO}.jsonl"
    bad.write_text('{"k":"header","format":"not-lockscope\\u001b[2J\\u202e","version":1,"run":"r"}\n')
    result = lockscope("analyze", str(bad), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1, result.stderr
    assert not RAW.search(result.stderr), repr(result.stderr)
    assert "x\\x1b]0;x\\x07\\u202e.jsonl" in result.stderr and "not a lockscope trace" in result.stderr

    missing = f"gone{CLEAR}{RLO}.jsonl"
    result = lockscope("report", missing, "--html", "r.html", cwd=tmp_path)
    assert result.returncode == 2 and not RAW.search(result.stderr), repr(result.stderr)
    assert "gone\\x1b[2J all clear, 0 findings\\u202e.jsonl" in result.stderr
