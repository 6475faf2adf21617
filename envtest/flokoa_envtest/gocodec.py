"""How Go's decoders word their failures, for the messages kube-apiserver passes through.

kube-apiserver quotes Go's ``encoding/json`` syntax errors (``invalid character 'n' looking
for beginning of object key string``), ``encoding/base64`` offsets (``illegal base64 data at
input byte 3``) and ``strconv`` errors (``strconv.ParseInt: parsing "x": invalid syntax``)
verbatim in its ``Status`` messages; these functions reproduce them from the same input.
"""

from __future__ import annotations

from typing import Final

from flokoa_envtest.fielderrors import go_quote

_SPACE: Final = frozenset(b" \t\r\n")
_DIGITS: Final = frozenset(b"0123456789")
_HEX: Final = frozenset(b"0123456789abcdefABCDEF")
_ESCAPES: Final = frozenset(b'bfnrt\\/"')
_STD_ALPHABET: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)
_URL_ALPHABET: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)

UNEXPECTED_END: Final = "unexpected end of JSON input"


def quote_char(c: int) -> str:
    """Go's ``quoteChar`` of one input byte: ``'n'``, ``'\\u0081'``, ``'\\''``, ``'"'``."""
    if c == ord("'"):
        return "'\\''"
    if c == ord('"'):
        return "'\"'"
    return "'" + go_quote(chr(c))[1:-1] + "'"


class _Syntax(Exception):
    pass


class _Scanner:
    """Go's ``encoding/json`` scanner, reduced to finding the first syntax error."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def fail(self, context: str) -> _Syntax:
        if self.pos >= len(self.data):
            return _Syntax(UNEXPECTED_END)
        return _Syntax(f"invalid character {quote_char(self.data[self.pos])} {context}")

    def peek(self) -> int | None:
        return self.data[self.pos] if self.pos < len(self.data) else None

    def skip_space(self) -> int | None:
        while self.pos < len(self.data) and self.data[self.pos] in _SPACE:
            self.pos += 1
        return self.peek()

    def value(self) -> None:
        c = self.skip_space()
        if c is None:
            raise self.fail("")
        if c == ord("{"):
            self.pos += 1
            self.object()
        elif c == ord("["):
            self.pos += 1
            self.array()
        elif c == ord('"'):
            self.pos += 1
            self.string()
        elif c == ord("-") or c in _DIGITS:
            self.number()
        elif c == ord("t"):
            self.literal(b"true")
        elif c == ord("f"):
            self.literal(b"false")
        elif c == ord("n"):
            self.literal(b"null")
        else:
            raise self.fail("looking for beginning of value")

    def object(self) -> None:
        if self.skip_space() == ord("}"):
            self.pos += 1
            return
        while True:
            if self.skip_space() != ord('"'):
                raise self.fail("looking for beginning of object key string")
            self.pos += 1
            self.string()
            if self.skip_space() != ord(":"):
                raise self.fail("after object key")
            self.pos += 1
            self.value()
            c = self.skip_space()
            if c == ord(","):
                self.pos += 1
                continue
            if c == ord("}"):
                self.pos += 1
                return
            raise self.fail("after object key:value pair")

    def array(self) -> None:
        if self.skip_space() == ord("]"):
            self.pos += 1
            return
        while True:
            self.value()
            c = self.skip_space()
            if c == ord(","):
                self.pos += 1
                continue
            if c == ord("]"):
                self.pos += 1
                return
            raise self.fail("after array element")

    def string(self) -> None:
        while True:
            c = self.peek()
            if c is None:
                raise self.fail("")
            if c == ord('"'):
                self.pos += 1
                return
            if c == ord("\\"):
                self.pos += 1
                e = self.peek()
                if e is None:
                    raise self.fail("")
                if e == ord("u"):
                    self.pos += 1
                    for _ in range(4):
                        h = self.peek()
                        if h is None or h not in _HEX:
                            raise self.fail("in \\u hexadecimal character escape")
                        self.pos += 1
                    continue
                if e not in _ESCAPES:
                    raise self.fail("in string escape code")
                self.pos += 1
                continue
            if c < 0x20:
                raise self.fail("in string literal")
            self.pos += 1

    def digits(self) -> None:
        while (c := self.peek()) is not None and c in _DIGITS:
            self.pos += 1

    def number(self) -> None:
        if self.peek() == ord("-"):
            self.pos += 1
            c = self.peek()
            if c is None or c not in _DIGITS:
                raise self.fail("in numeric literal")
        if self.peek() == ord("0"):
            self.pos += 1
        else:
            self.digits()
        if self.peek() == ord("."):
            self.pos += 1
            c = self.peek()
            if c is None or c not in _DIGITS:
                raise self.fail("after decimal point in numeric literal")
            self.digits()
        if self.peek() in (ord("e"), ord("E")):
            self.pos += 1
            if self.peek() in (ord("+"), ord("-")):
                self.pos += 1
            c = self.peek()
            if c is None or c not in _DIGITS:
                raise self.fail("in exponent of numeric literal")
            self.digits()

    def literal(self, word: bytes) -> None:
        self.pos += 1
        for expected in word[1:]:
            if self.peek() != expected:
                raise self.fail(f"in literal {word.decode()} (expecting {quote_char(expected)})")
            self.pos += 1


def json_syntax_error(data: bytes) -> str | None:
    """The error ``json.Unmarshal`` reports for malformed ``data``, or None when it is valid."""
    scanner = _Scanner(data)
    try:
        scanner.value()
        if scanner.skip_space() is not None:
            raise scanner.fail("after top-level value")
    except _Syntax as exc:
        return str(exc)
    return None


def base64_error(text: str, *, url: bool = False, padded: bool = True) -> str | None:
    """``base64.StdEncoding.DecodeString`` (or ``RawURLEncoding``) failure text, or None.

    Go reports the offset of the first byte it cannot use: ``illegal base64 data at input
    byte 3``. Newlines are skipped, as Go does.
    """
    data = text.encode()
    alphabet = _URL_ALPHABET if url else _STD_ALPHABET
    si = 0
    n = len(data)

    def corrupt(offset: int) -> str:
        return f"illegal base64 data at input byte {offset}"

    while True:
        j = 0
        while j < 4:
            if si == n:
                if j == 0:
                    return None
                if j == 1 or padded:
                    return corrupt(si - j)
                return None
            c = data[si]
            si += 1
            if c in alphabet:
                j += 1
                continue
            if c in (0x0A, 0x0D):
                continue
            if not padded or c != ord("="):
                return corrupt(si - 1)
            # padding
            if j in (0, 1):
                return corrupt(si - 1)
            if j == 2:
                while si < n and data[si] in (0x0A, 0x0D):
                    si += 1
                if si == n:
                    return corrupt(n)
                if data[si] != ord("="):
                    return corrupt(si - 1)
                si += 1
            while si < n and data[si] in (0x0A, 0x0D):
                si += 1
            if si < n:
                return corrupt(si)
            return None


def parse_int_error(text: str) -> str | None:
    """``strconv.ParseInt(text, 10, 64)``'s error text, or None when ``text`` parses."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not digits.isascii() or not digits.isdigit():
        return f"strconv.ParseInt: parsing {go_quote(text)}: invalid syntax"
    value = int(text)
    if not -(2**63) <= value < 2**63:
        return f"strconv.ParseInt: parsing {go_quote(text)}: value out of range"
    return None


def summarize_data(data: bytes, max_length: int = 30) -> str:
    """apimachinery's ``summarizeData``: a body's start as text (objects) or hex."""
    if not data:
        return "<empty>"
    if data[:1] == b"{":
        head = data[:max_length].decode("utf-8", "replace")
        return head + " ..." if len(data) > max_length else head
    if len(data) > max_length:
        return data[:max_length].hex() + " ..."
    return data.hex()
