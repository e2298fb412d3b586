"""Every string from a trace is shown as text: in the page, in chart labels and
hover text, and in the JSON embedded in <script> elements."""
from __future__ import annotations

import json

from analyzer.report import html

from .pageparse import parse
from .sample_doc import EVIL, sample_doc

HOSTILE = ["<script>window.__xss=1;alert(1)</script>", '<img src=x onerror="window.__xss=2">',
           "</script><script>window.__xss=3</script>", "<b onmouseover=window.__xss=4>fwd</b>",
           "</script><svg onload=window.__xss=5>", "<script>window.__xss=6</script>", "evil<svg onload=alert(7)>.py"]


def assert_inert(page_html: str, hostile: list[str]) -> None:
    page = parse(page_html)
    code = [s for s in page.scripts if s.attrs.get("type") != "application/json"]
    # only our two scripts run: plotly.js and the page script (last element of the body)
    assert len(code) == 2, [s.text[:80] for s in code]
    assert code[-1].text.lstrip().startswith("(function () {")
    assert page.handlers() == []
    assert not [e for e in page.elements if e.tag in ("img", "svg", "iframe", "object", "embed")]
    for s in page.scripts:
        if s.attrs.get("type") == "application/json":
            assert "<" not in s.text and ">" not in s.text
            json.loads(s.text)
    for text in hostile:
        assert text not in page_html
    assert not any("<script" in x or "<img" in x or "<svg" in x for x in plot_strings(page_html))
    csp = next(e for e in page.elements if e.tag == "meta" and e.attrs.get("http-equiv") == "Content-Security-Policy")
    assert "script-src 'sha256-" in csp.attrs["content"] and "'unsafe-inline'" not in csp.attrs["content"].split(
        "script-src")[1]


def plot_strings(page_html: str) -> list[str]:
    """Every string inside the embedded figures, decoded."""
    out: list[str] = []

    def walk(v) -> None:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)

    for s in parse(page_html).scripts:
        if s.attrs.get("type") == "application/json":
            walk(json.loads(s.text))
    return out


def test_hostile_strings_in_every_field_are_text():
    doc = sample_doc(evil=True)
    for with_cdn in ("inline", "cdn"):
        page_html = html.render(doc, plotlyjs=with_cdn)
        assert_inert(page_html, [EVIL])
        # the reader sees the strings literally, in titles, names, sites, argv, warnings
        text = parse(page_html).text
        assert text.count(EVIL) >= 20
        assert f"sessions{EVIL}" in text and f"web-1{EVIL}" in text and f"cycle search stopped{EVIL}" in text


def test_plot_labels_are_escaped_for_plotly():
    # plotly renders a subset of HTML in labels and hover text: they carry entities, never tags
    strings = plot_strings(html.render(sample_doc(evil=True)))
    assert any("sessions&lt;script&gt;window.__xss=1&lt;/script&gt;" in x for x in strings)
    assert not any("<script" in x or "<img" in x for x in strings)


def test_real_hostile_trace_is_inert(xss):
    assert_inert(xss.html, HOSTILE)
    text = parse(xss.html).text
    lock_names = {lk["name"] for lk in xss.doc["locks"]}
    assert "<script>window.__xss=1;alert(1)</script>" in lock_names
    for name in lock_names - {None}:
        assert name in text
    assert "evil<svg onload=alert(7)>.py" in text and "<script>window.__xss=6</script>" in text
    assert "</script><svg onload=window.__xss=5>" in text
    kinds = {f["kind"] for f in xss.doc["findings"]}
    assert {"potential-deadlock", "long-hold"} <= kinds
