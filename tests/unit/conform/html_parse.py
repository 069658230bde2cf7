"""The parts of a report page the tests look at, read with html.parser (the standard
library's own HTML tokenizer, as lenient as a browser)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Page:
    tags: list[str] = field(default_factory=list)
    attributes: list[tuple[str, str, str | None]] = field(default_factory=list)  # tag, name, value
    cells: list[dict[str, str | None]] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)
    group_headings: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    lanes: list[str] = field(default_factory=list)
    close_labels: list[str] = field(default_factory=list)
    close_codes: list[str] = field(default_factory=list)
    log: str | None = None
    title: str = ""
    h1: str = ""
    broken: str = ""
    text: str = ""


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self.stack: list[tuple[str, dict[str, str | None]]] = []
        self.cell: dict[str, str | None] | None = None
        self.capture: list[str] | None = None
        self.capture_into: str = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        self.page.tags.append(tag)
        self.page.attributes.extend((tag, k, v) for k, v in attrs)
        if tag not in ("meta", "br", "link", "img", "input", "hr"):
            self.stack.append((tag, a))
        if tag == "td" and "cell" in classes:
            self.cell = {**a, "href": None, "text": ""}
            self.page.cells.append(self.cell)
        if tag == "a" and a.get("href") is not None:
            self.page.links.append(a["href"] or "")
            if self.cell is not None:
                self.cell["href"] = a["href"]
        if tag == "g" and "lane" in classes:
            self.page.lanes.append(a.get("data-conn") or "")
        if tag == "g" and "close" in classes:
            self.page.close_codes.append(a.get("data-code") or "")

    def handle_endtag(self, tag: str) -> None:
        if any(t == tag for t, _ in self.stack):
            while self.stack and self.stack.pop()[0] != tag:
                pass
        if tag == "td":
            self.cell = None

    def _inside(self, tag: str, cls: str | None = None) -> bool:
        return any(
            t == tag and (cls is None or cls in (a.get("class") or "").split())
            for t, a in self.stack
        )

    def handle_data(self, data: str) -> None:
        self.page.text += data
        if self.cell is not None:
            self.cell["text"] = (self.cell["text"] or "") + data
        top = self.stack[-1] if self.stack else ("", {})
        if top[0] == "th" and "agent" in (top[1].get("class") or "").split():
            self.page.agents.append(data)
        if self._inside("tr", "group") and top[0] == "th":
            self.page.group_headings.append(data)
        if top[0] == "text" and "close-label" in (top[1].get("class") or "").split():
            self.page.close_labels.append(data)
        if self._inside("pre", "log"):
            self.page.log = (self.page.log or "") + data
        if top[0] == "title" and not self._inside("svg"):
            self.page.title += data
        if self._inside("h1"):
            self.page.h1 += data
        if self._inside("section", "broken"):
            self.page.broken += data


def parse_page(html: str) -> Page:
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser.page
