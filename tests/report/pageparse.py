"""Parse a report page with the standard library's HTML parser, the way a
browser tokenizes it: which elements exist, which scripts would run, what text
a reader sees."""
from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Element:
    tag: str
    attrs: dict
    text: str = ""


@dataclass
class Page:
    elements: list[Element] = field(default_factory=list)
    scripts: list[Element] = field(default_factory=list)
    text: str = ""

    def by_id(self, ident: str) -> Element | None:
        return next((e for e in self.elements if e.attrs.get("id") == ident), None)

    def find(self, tag: str, cls: str | None = None) -> list[Element]:
        return [e for e in self.elements if e.tag == tag
                and (cls is None or cls in (e.attrs.get("class") or "").split())]

    def handlers(self) -> list[tuple[str, str]]:
        """Event-handler attributes (onclick, onerror, ...) on any element."""
        return [(e.tag, k) for e in self.elements for k in e.attrs if k.startswith("on")]


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._script: Element | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        el = Element(tag, {k: (v or "") for k, v in attrs})
        self.page.elements.append(el)
        if tag == "script":
            self._script = el
            self.page.scripts.append(el)

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            self._script.text += data
        else:
            self._text.append(data)

    def close(self):
        super().close()
        self.page.text = "".join(self._text)


def parse(html: str) -> Page:
    p = _Parser()
    p.feed(html)
    p.close()
    return p.page
