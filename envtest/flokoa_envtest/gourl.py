"""Go's ``net/url`` parsing, as kube-apiserver uses it for CEL ``url()`` and the ``uri`` format.

:func:`parse_request_uri` mirrors ``url.ParseRequestURI`` (what ``isURL()`` and the OpenAPI
``uri`` format accept: an absolute URI or an absolute path, no fragment split); :func:`parse`
mirrors ``url.Parse`` (what ``url()`` hands to ``getHost()`` & co). Errors carry Go's text
(``parse "x": invalid URI for request``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

from flokoa_envtest.fielderrors import go_quote as _go_quote

_PATH, _HOST, _ZONE, _USER, _QUERY, _FRAGMENT = range(6)
_HEX: Final = frozenset("0123456789abcdefABCDEF")
_ALNUM: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_HOST_OK: Final = frozenset("!$&'()*+,;=:[]<>\"")
_SCHEME_REST: Final = frozenset("0123456789+-.")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_HOST_BAD: Final = re.compile(r"[^A-Za-z0-9\-_.~!$&'()*+,;=:\[\]<>\"%\x80-\U0010ffff]")
_PATH_PLAIN: Final = re.compile(r"[A-Za-z0-9\-_.~$&+,/:;=@]*")


class URLError(ValueError):
    """A parse failure, with Go's ``*url.Error`` text."""


@dataclass(frozen=True)
class URL:
    """The parts of a parsed URL, as Go's ``url.URL`` holds them."""

    scheme: str = ""
    opaque: str = ""
    user: str | None = None
    host: str = ""
    path: str = ""
    raw_path: str = ""
    raw_query: str = ""
    force_query: bool = False
    fragment: str = ""

    def hostname(self) -> str:
        """``URL.Hostname()``: the host without port and IPv6 brackets."""
        return _split_host_port(self.host)[0]

    def port(self) -> str:
        """``URL.Port()``: the port digits, or ``""``."""
        return _split_host_port(self.host)[1]

    def escaped_path(self) -> str:
        """``URL.EscapedPath()``."""
        if self.raw_path and _valid_encoded(self.raw_path):
            try:
                if _unescape(self.raw_path, _PATH) == self.path:
                    return self.raw_path
            except URLError:
                pass
        if self.path == "*":
            return "*"
        return _escape(self.path, _PATH)

    def query(self) -> dict[str, list[str]]:
        """``URL.Query()``: the query parameters (malformed pairs skipped)."""
        return parse_query(self.raw_query)


def parse_request_uri(raw: str) -> URL:
    """``url.ParseRequestURI``: raise :class:`URLError` unless ``raw`` is a request URI."""
    try:
        return _parse(raw, via_request=True)
    except URLError as err:
        raise URLError(f"parse {_go_quote(raw)}: {err}") from None


def parse(raw: str) -> URL:
    """``url.Parse``: split the fragment, then parse leniently."""
    before, hash_sign, fragment = raw.partition("#")
    try:
        url = _parse(before, via_request=False)
        if hash_sign:
            url = URL(**{**url.__dict__, "fragment": _unescape(fragment, _FRAGMENT)})
    except URLError as err:
        raise URLError(f"parse {_go_quote(raw)}: {err}") from None
    return url


def is_request_uri(raw: str) -> bool:
    """True when :func:`parse_request_uri` accepts ``raw``."""
    try:
        _parse(raw, via_request=True)
    except URLError:
        return False
    return True


def parse_query(query: str) -> dict[str, list[str]]:
    """``url.ParseQuery`` ignoring errors (pairs with ``;`` or bad escapes are skipped)."""
    result: dict[str, list[str]] = {}
    while query:
        pair, _, query = query.partition("&")
        if ";" in pair or not pair:
            continue
        key, _, value = pair.partition("=")
        try:
            key = _unescape(key, _QUERY)
            value = _unescape(value, _QUERY)
        except URLError:
            continue
        result.setdefault(key, []).append(value)
    return result


@functools.lru_cache(maxsize=4096)
def _parse(raw: str, *, via_request: bool) -> URL:
    if _CONTROL.search(raw):
        raise URLError("net/url: invalid control character in URL")
    if raw == "" and via_request:
        raise URLError("empty url")
    if raw == "*":
        return URL(path="*")
    scheme, rest = _get_scheme(raw)
    scheme = scheme.lower()
    force_query = False
    raw_query = ""
    if rest.endswith("?") and rest.count("?") == 1:
        force_query = True
        rest = rest[:-1]
    else:
        rest, _, raw_query = rest.partition("?")
    if not rest.startswith("/"):
        if scheme:
            return URL(scheme=scheme, opaque=rest, raw_query=raw_query, force_query=force_query)
        if via_request:
            raise URLError("invalid URI for request")
        segment = rest.split("/", 1)[0]
        if ":" in segment:
            raise URLError("first path segment in URL cannot contain colon")
    user: str | None = None
    host = ""
    if (scheme or (not via_request and not rest.startswith("///"))) and rest.startswith("//"):
        authority, slash, path_rest = rest[2:].partition("/")
        rest = slash + path_rest
        user, host = _parse_authority(authority)
    path = _unescape(rest, _PATH)
    raw_path = "" if _escape(path, _PATH) == rest else rest
    return URL(
        scheme=scheme,
        user=user,
        host=host,
        path=path,
        raw_path=raw_path,
        raw_query=raw_query,
        force_query=force_query,
    )


def _get_scheme(raw: str) -> tuple[str, str]:
    for i, c in enumerate(raw):
        if ("a" <= c <= "z") or ("A" <= c <= "Z"):
            continue
        if c in _SCHEME_REST:
            if i == 0:
                return "", raw
            continue
        if c == ":":
            if i == 0:
                raise URLError("missing protocol scheme")
            return raw[:i], raw[i + 1 :]
        return "", raw
    return "", raw


def _parse_authority(authority: str) -> tuple[str | None, str]:
    at = authority.rfind("@")
    host = _parse_host(authority[at + 1 :] if at >= 0 else authority)
    if at < 0:
        return None, host
    userinfo = authority[:at]
    for c in userinfo:
        if c in _ALNUM or c in "-._:~!$&'()*+,;=%@":
            continue
        if ord(c) < 0x80:
            raise URLError("net/url: invalid userinfo")
    return userinfo, host


def _parse_host(host: str) -> str:
    if host.startswith("["):
        close = host.rfind("]")
        if close < 0:
            raise URLError("missing ']' in host")
        colon_port = host[close + 1 :]
        if not _valid_optional_port(colon_port):
            raise URLError(f"invalid port {_go_quote(colon_port)} after host")
        zone = host[:close].find("%25")
        if zone >= 0:
            return (
                _unescape(host[:zone], _HOST)
                + _unescape(host[zone:close], _ZONE)
                + _unescape(host[close:], _HOST)
            )
    else:
        colon = host.rfind(":")
        if colon >= 0:
            colon_port = host[colon:]
            if not _valid_optional_port(colon_port):
                raise URLError(f"invalid port {_go_quote(colon_port)} after host")
    return _unescape(host, _HOST)


def _valid_optional_port(port: str) -> bool:
    if port == "":
        return True
    return port[0] == ":" and all("0" <= c <= "9" for c in port[1:])


def _split_host_port(host_port: str) -> tuple[str, str]:
    host, port = host_port, ""
    colon = host.rfind(":")
    if colon >= 0 and _valid_optional_port(host[colon:]):
        host, port = host[:colon], host[colon + 1 :]
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def _should_escape(c: str, mode: int) -> bool:
    if c in _ALNUM:
        return False
    if mode in (_HOST, _ZONE) and c in _HOST_OK:
        return False
    if c in "-_.~":
        return False
    if c in "$&+,/:;=?@":
        if mode == _PATH:
            return c == "?"
        if mode == _USER:
            return c in "@/?:"
        if mode == _QUERY:
            return True
        if mode == _FRAGMENT:
            return False
    return not (mode == _FRAGMENT and c in "!()*")


def _unescape(text: str, mode: int) -> str:
    """Go's ``unescape``: validate ``%XX`` escapes (and host characters), then decode."""
    if "%" not in text and (mode not in (_HOST, _ZONE) or not _HOST_BAD.search(text)):
        return text.replace("+", " ") if mode == _QUERY else text
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "%":
            if i + 2 >= n:
                raise URLError(f"invalid URL escape {_go_quote(text[i : i + 3])}")
            if text[i + 1] not in _HEX or text[i + 2] not in _HEX:
                raise URLError(f"invalid URL escape {_go_quote(text[i : i + 3])}")
            if mode == _HOST and int(text[i + 1], 16) < 8 and text[i : i + 3] != "%25":
                raise URLError(f"invalid URL escape {_go_quote(text[i : i + 3])}")
            if mode == _ZONE:
                value = int(text[i + 1 : i + 3], 16)
                if text[i : i + 3] != "%25" and value != 0x20 and _should_escape(chr(value), _HOST):
                    raise URLError(f"invalid URL escape {_go_quote(text[i : i + 3])}")
            i += 3
            continue
        if mode in (_HOST, _ZONE) and ord(c) < 0x80 and _should_escape(c, mode):
            raise URLError(f"invalid character {_go_quote(c)} in host name")
        i += 1
    if "%" not in text and not (mode == _QUERY and "+" in text):
        return text
    raw = text.encode("utf-8", "surrogatepass")
    out = bytearray()
    j = 0
    while j < len(raw):
        b = raw[j]
        if b == 0x25:  # '%'
            out.append(int(raw[j + 1 : j + 3], 16))
            j += 3
            continue
        if b == 0x2B and mode == _QUERY:  # '+'
            out.append(0x20)
        else:
            out.append(b)
        j += 1
    return out.decode("utf-8", "replace")


def _escape(text: str, mode: int) -> str:
    if mode == _PATH and _PATH_PLAIN.fullmatch(text):
        return text
    out: list[str] = []
    for c in text:
        if ord(c) >= 0x80:
            out.extend(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
        elif _should_escape(c, mode):
            if c == " " and mode == _QUERY:
                out.append("+")
            else:
                out.append(f"%{ord(c):02X}")
        else:
            out.append(c)
    return "".join(out)


def _valid_encoded(text: str) -> bool:
    for c in text:
        if c in "!$&'()*+,;=:@[]%":
            continue
        if ord(c) >= 0x80 or _should_escape(c, _PATH):
            return False
    return True
