"""A parser for the VMODL data dumps ``vim-cmd`` prints (``vmsvc/get.guest``, faults, ...).

vim-cmd prints data objects the way VMware's VMODL runtime formats them::

    (vim.vm.GuestInfo) {
       toolsRunningStatus = "guestToolsRunning",
       ipAddress = "192.0.2.10",
       net = (vim.vm.GuestInfo.NicInfo) [
          (vim.vm.GuestInfo.NicInfo) {
             ipAddress = (string) [
                "192.0.2.10"
             ],
             macAddress = "00:50:56:00:00:01",
             connected = true,
             deviceConfigId = 4000,
             dnsConfig = (vim.net.DnsConfigInfo) null,
          }
       ],
       guestId = <unset>,
    }

Objects become dicts (with the type under ``_type``), arrays lists, quoted
strings str (vim-cmd does not escape quotes inside them, so a string runs to
the last quote of its line), numbers int, ``true``/``false``
bool, ``<unset>`` and ``(T) null`` None, ``'vim.X:id'`` references str.
Older hosts add ``dynamicType = <unset>`` lines and trailing commas; both are
accepted. Malformed input raises ValueError.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["parse_vmodl"]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<type>\([A-Za-z_][\w.\[\]]*\))
    | (?P<string>"[^\n]*?"(?=,?[ \t]*(?:\n|$)))
    | (?P<ref>'[^']*')
    | (?P<unset><unset>)
    | (?P<punct>[{}\[\]=,])
    | (?P<word>[-\w.:+]+)
    )""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    """Tokens up to the end, or up to the first character that starts none (the parser then
    reports what it missed, if it needed more)."""
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            break
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise ValueError(f"expected {value or 'a value'}, got {token!r}")
        self.i += 1
        return token

    def value(self) -> Any:  # noqa: PLR0911 - one return per kind of token
        kind, text = self.take()
        if kind == "type":
            nxt = self.peek()
            if nxt == ("punct", "{"):
                return self.obj(text[1:-1])
            if nxt == ("punct", "["):
                return self.array()
            if nxt == ("word", "null"):
                self.take()
                return None
            return self.value()  # "(string) 'x'": a typed scalar
        if kind == "string":
            return text[1:-1]  # vim-cmd prints strings raw: inner quotes are not escaped
        if kind == "ref":
            return text[1:-1]
        if kind == "unset":
            return None
        if kind == "word":
            if text in ("true", "false"):
                return text == "true"
            if re.fullmatch(r"-?\d+", text):
                return int(text)
            return text
        raise ValueError(f"unexpected {text!r}")

    def obj(self, type_name: str) -> dict[str, Any]:
        self.take("{")
        out: dict[str, Any] = {"_type": type_name}
        while self.peek() != ("punct", "}"):
            kind, key = self.take()
            if kind != "word":
                raise ValueError(f"expected a property name, got {key!r}")
            self.take("=")
            out[key] = self.value()
            if self.peek() == ("punct", ","):
                self.take()
        self.take("}")
        return out

    def array(self) -> list[Any]:
        self.take("[")
        items: list[Any] = []
        while self.peek() != ("punct", "]"):
            items.append(self.value())
            if self.peek() == ("punct", ","):
                self.take()
        self.take("]")
        return items


def parse_vmodl(text: str) -> Any:
    """Parse the first VMODL value in ``text`` (leading lines such as ``Guest information:`` skipped)."""
    start = text.find("(")
    if start < 0:
        raise ValueError("no VMODL object in the output")
    # Skip any header line that merely contains a parenthesis before the dump proper.
    match = re.search(r"^\((?:[A-Za-z_][\w.]*)\)\s*[{\[]", text, re.MULTILINE)
    if match is not None:
        start = match.start()
    parser = _Parser(_tokens(text[start:]))
    return parser.value()
