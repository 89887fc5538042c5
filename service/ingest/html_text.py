"""Message bodies that arrive as HTML (Intercom conversation parts, Freshdesk comments)
turned into the plain text the models read.

Block elements and `<br>` become line breaks, entities are decoded, and runs of spaces
collapse. Quoted history is dropped: `<blockquote>` and elements whose class ends in
`quote` (`gmail_quote`, `freshdesk_quote`), because an email reply that quotes the earlier
thread would otherwise put the agent's words, already recorded, in the customer's
message. Scripts and styles are dropped too. A body without tags or entities is plain
text and is only trimmed, so a customer who types `a < b` keeps their `<`."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_LOOKS_LIKE_HTML = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(\s[^<>]*)?/?>|&(#[0-9]+|#x[0-9A-Fa-f]+|[A-Za-z]+);")
_SKIPPED_TAGS = frozenset({"blockquote", "script", "style", "head", "template"})
_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "hr", "section"}
)
_VOID_TAGS = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "wbr"})
_SPACES = re.compile(r"[^\S\n]+")


def looks_like_html(text: str) -> bool:
    """Whether `text` holds a tag or an entity."""
    return _LOOKS_LIKE_HTML.search(text) is not None


def message_text(body: str) -> str:
    """The text of a message body: HTML made plain (see the module), plain text trimmed."""
    if not looks_like_html(body):
        return body.strip()
    collector = _TextCollector()
    collector.feed(body)
    collector.close()
    lines = (_SPACES.sub(" ", line).strip() for line in "".join(collector.parts).split("\n"))
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):  # at most one empty line in a row
            kept.append(line)
    return "\n".join(kept).strip()


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping: str | None = None  # the tag whose content is being dropped
        self._depth = 0  # how many of that tag are open (they may nest)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skipping is not None:
            if tag == self._skipping:
                self._depth += 1
            return
        if tag not in _VOID_TAGS and (tag in _SKIPPED_TAGS or _is_quote(attrs)):
            self._skipping, self._depth = tag, 1
            return
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # `<br/>`: one break, and an element without content has nothing to skip.
        if self._skipping is None and tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._skipping is not None:
            if tag == self._skipping:
                self._depth -= 1
                if self._depth == 0:
                    self._skipping = None
            return
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skipping is None:
            # Line breaks in HTML source are spaces; only tags make lines.
            self.parts.append(data.replace("\n", " "))


def _is_quote(attrs: list[tuple[str, str | None]]) -> bool:
    classes = next((value or "" for name, value in attrs if name == "class"), "")
    return any(name.lower().endswith("quote") for name in classes.split())
