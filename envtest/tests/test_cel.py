"""The CEL evaluator: cel-go semantics, Kubernetes libraries, and the rules CRDs use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flokoa_envtest.cel import (
    CelCompileError,
    CelError,
    UInt,
    compile_expression,
)

ONE_PROVIDER = (
    "[has(self.openai), has(self.anthropic), has(self.google), has(self.bedrock)]"
    ".filter(x, x).size() == 1"
)
TOKEN = "self.all(k, k.matches('^[!#$%&\\'*+.^_`|~0-9A-Za-z-]+$'))"
NO_CRLF = "self.all(k, !self[k].contains('\\r') && !self[k].contains('\\n'))"
HTTP_URL = "isURL(self) && url(self).getScheme() in ['http', 'https']"


def run(expression: str, self: Any = None, **variables: Any) -> Any:
    return compile_expression(expression).evaluate({"self": self, **variables})


EVAL_CASES: list[tuple[str, Any, Any]] = [
    # arithmetic and int64 semantics
    ("1 + 2 * 3 - 4 / 2", None, 5),
    ("-7 / 2", None, -3),
    ("-7 % 3", None, -1),
    ("7.0 / 2.0", None, 3.5),
    ("2u * 3u", None, UInt(6)),
    ("'ab' + 'cd'", None, "abcd"),
    ("[1] + [2]", None, [1, 2]),
    ("b'ab' + b'c'", None, b"abc"),
    ("self.x-1", {"x": 5}, 4),
    # heterogeneous equality and ordering
    ("1 == 1.0", None, True),
    ("1u == 1", None, True),
    ("1 == '1'", None, False),
    ("true == 1", None, False),
    ("null == self", None, True),
    ("[1, 'a'] == [1, 'a']", None, True),
    ("{'a': [1]} == {'a': [1.0]}", None, True),
    ("1 < 1.5", None, True),
    ("'a' < 'b'", None, True),
    ("2 in [1, 2.0]", None, True),
    ("'k' in {'k': 1}", None, True),
    # logic with error absorption
    ("self.missing || true", {}, True),
    ("true || self.missing", {}, True),
    ("self.missing && false", {}, False),
    ("false && self.missing", {}, False),
    ("[0, 'a'].all(x, x > 0)", None, False),
    ("[1, 'a'].exists(x, x == 1)", None, True),
    ("self ? 'y' : 'n'", True, "y"),
    # macros
    ("[1, 2, 3].filter(x, x > 1)", None, [2, 3]),
    ("[1, 2, 3].map(x, x * 2)", None, [2, 4, 6]),
    ("[1, 2, 3].map(x, x > 1, x * 10)", None, [20, 30]),
    ("[1, 2, 3].exists_one(x, x > 2)", None, True),
    ("[1, 2, 3].exists_one(x, x > 1)", None, False),
    ("{'a': 1, 'b': 2}.all(k, k.size() == 1)", None, True),
    ("[[1, 2], [3]].all(l, l.all(x, x > 0))", None, True),
    ("[1].all(x, [2].all(x, x == 2))", None, True),
    # has() and field access
    ("has(self.a)", {"a": None}, True),
    ("has(self.a)", {}, False),
    ("has(self.a.b)", {"a": {"b": 1}}, True),
    ("self.a['b-c']", {"a": {"b-c": 1}}, 1),
    ("self[0]", ["x"], "x"),
    # strings (standard and extended library)
    ("'héllo'.size()", None, 5),
    ("size('héllo')", None, 5),
    ("'abc'.contains('b') && 'abc'.startsWith('a') && 'abc'.endsWith('c')", None, True),
    ("'AbC'.lowerAscii() + 'aBc'.upperAscii()", None, "abcABC"),
    ("'ÉA'.lowerAscii()", None, "Éa"),
    ("'  x \\n'.trim()", None, "x"),
    ("'a,b,,c'.split(',')", None, ["a", "b", "", "c"]),
    ("'a,b,c'.split(',', 2)", None, ["a", "b,c"]),
    ("'hello'.substring(1, 3)", None, "el"),
    ("'hello'.indexOf('l')", None, 2),
    ("'hello'.lastIndexOf('l')", None, 3),
    ("'hello'.charAt(1)", None, "e"),
    ("'a-b-c'.replace('-', '+')", None, "a+b+c"),
    ("'a-b-c'.replace('-', '+', 1)", None, "a+b-c"),
    ("['a', 'b'].join('/')", None, "a/b"),
    ("'abc123'.find('[0-9]+')", None, "123"),
    ("'a1b22'.findAll('[0-9]+')", None, ["1", "22"]),
    # regexes are RE2: `$` does not match before a trailing newline
    ("'abc'.matches('^[a-z]+$')", None, True),
    ("'abc\\n'.matches('^[a-z]+$')", None, False),
    ("matches('abc', 'b')", None, True),
    ("'X-Foo'.matches('(?i)^x-foo$')", None, True),
    # lists library and sets
    ("[3, 1, 2].sum()", None, 6),
    ("[3, 1, 2].min()", None, 1),
    ("[3, 1.5, 2].max()", None, 3),
    ("[1, 2, 2].isSorted()", None, True),
    ("[1, 3, 2].isSorted()", None, False),
    ("[1, 2].indexOf(2)", None, 1),
    ("sets.contains([1, 2, 3], [3, 1])", None, True),
    ("sets.equivalent([1, 2], [2, 1, 1])", None, True),
    ("sets.intersects([1], [2])", None, False),
    # conversions
    ("int('42') + int(3.9) + int(-3.9)", None, 42),
    ("string(1.5) + '|' + string(1e6) + '|' + string(7)", None, "1.5|1e+06|7"),
    ("double(3) == 3.0", None, True),
    ("bool('true')", None, True),
    ("bytes('é').size()", None, 2),
    ("dyn(1) == 1", None, True),
    # timestamps and durations
    ("timestamp('2024-03-01T10:00:00Z').getFullYear()", None, 2024),
    ("timestamp('2024-03-01T10:00:00Z').getMonth()", None, 2),
    ("timestamp('2024-03-01T10:00:00+02:00').getHours()", None, 8),
    ("duration('1h30m') == duration('90m')", None, True),
    (
        "timestamp('2024-01-01T00:00:00Z') + duration('24h') > timestamp('2024-01-01T23:00:00Z')",
        None,
        True,
    ),
    ("string(duration('1m30s'))", None, "90s"),
]


@pytest.mark.parametrize(("expression", "self", "expected"), EVAL_CASES)
def test_evaluation(expression: str, self: Any, expected: Any) -> None:
    result = run(expression, self)
    assert result == expected
    assert type(result) is type(expected)


ERROR_CASES: list[tuple[str, Any, str]] = [
    ("self.missing", {}, "no such key: missing"),
    ("self['X-Key']", {}, "no such key: X-Key"),
    ("[1, 2][2]", None, "index out of bounds: 2"),
    ("1 / 0", None, "division by zero"),
    ("1 % 0", None, "modulus by zero"),
    ("9223372036854775807 + 1", None, "integer overflow"),
    ("-9223372036854775808 - 1", None, "integer overflow"),
    ("1 + 1.0", None, "no such overload"),
    ("'a' + 1", None, "no such overload"),
    ("self.startsWith('x')", 5, "no such overload"),
    ("self ? 1 : 2", "yes", "no such overload"),
    ("[1, 'a'].all(x, x > 0)", None, "no such overload"),
    ("[0, 'a'].exists(x, x > 0)", None, "no such overload"),
    ("self.missing || false", {}, "no such key: missing"),
    (
        "url('foo')",
        None,
        'URL parse error during conversion from string: parse "foo": invalid URI for request',
    ),
    ("[].min()", None, "min(list) argument must not be empty"),
    ("'abc'.substring(2, 1)", None, "invalid substring range. start: 2, end: 1"),
    ("int('x')", None, "cannot convert 'x' to int"),
]


@pytest.mark.parametrize(("expression", "self", "message"), ERROR_CASES)
def test_runtime_errors(expression: str, self: Any, message: str) -> None:
    with pytest.raises(CelError) as caught:
        run(expression, self)
    assert str(caught.value) == message


COMPILE_ERRORS = [
    ("self.x +", "Syntax error"),
    ("unknown == 1", "undeclared reference to 'unknown'"),
    ("self.frobnicate()", "undeclared reference to 'frobnicate'"),
    ("nosuch.contains([1], [1])", "undeclared reference to 'nosuch.contains'"),
    ("self.matches('(')", "error parsing regexp"),
    ("has(self)", "invalid argument to has() macro"),
    ("99999999999999999999 == 1", "invalid int literal"),
]


@pytest.mark.parametrize(("expression", "message"), COMPILE_ERRORS)
def test_compile_errors(expression: str, message: str) -> None:
    with pytest.raises(CelCompileError) as caught:
        compile_expression(expression)
    assert message in str(caught.value)


def test_programs_are_cached_and_know_whether_they_use_old_self() -> None:
    assert compile_expression("self == oldSelf") is compile_expression("self == oldSelf")
    assert compile_expression("self == oldSelf").uses_old_self
    assert not compile_expression("self.all(oldSelf, oldSelf > 0)").uses_old_self


# --- the rules our CRDs use, against tricky inputs ------------------------------------------

RULE_CASES: list[tuple[str, Any, bool]] = [
    (ONE_PROVIDER, {"openai": {}}, True),
    (ONE_PROVIDER, {"openai": {}, "google": {}}, False),
    (ONE_PROVIDER, {}, False),
    (ONE_PROVIDER, {"openai": None}, True),
    (TOKEN, {"X-Tenant-ID": "a", "api-version": "b", "x!#$%&'*+.^_`|~": "c"}, True),
    (TOKEN, {"Bad Key": "a"}, False),
    (TOKEN, {"": "a"}, False),
    (TOKEN, {"X-Ümlaut": "a"}, False),
    (TOKEN, {"X-Foo\n": "a"}, False),
    (TOKEN, {"X:Foo": "a"}, False),
    (TOKEN, {}, True),
    (NO_CRLF, {"a": "plain value", "b": "tabs\tare fine"}, True),
    (NO_CRLF, {"a": "x\r\ninjected: 1"}, False),
    (NO_CRLF, {"a": "trailing\n"}, False),
    (HTTP_URL, "https://api.openai.com/v1", True),
    (HTTP_URL, "http://127.0.0.1:8080/v1", True),
    (HTTP_URL, "HTTPS://EXAMPLE.COM", True),
    (HTTP_URL, "ftp://example.com", False),
    (HTTP_URL, "api.openai.com/v1", False),
    (HTTP_URL, "https://exa mple.com", False),
    (HTTP_URL, "https://example.com:port/", False),
    (HTTP_URL, "/relative/path", False),
    (HTTP_URL, "", False),
    ("self.startsWith('https://')", "https://x", True),
    ("self.startsWith('https://')", "http://x", False),
    ("!has(self.a) || !has(self.b)", {"a": 1}, True),
    ("!has(self.a) || !has(self.b)", {"a": 1, "b": 2}, False),
]


@pytest.mark.parametrize(("expression", "self", "expected"), RULE_CASES)
def test_crd_rules(expression: str, self: Any, expected: bool) -> None:
    assert run(expression, self) is expected


URL_CASES: list[tuple[str, dict[str, Any]]] = [
    (
        "https://user:pw@example.com:8443/a%20b/c?x=1&y=2&x=3#frag",
        {
            "getScheme": "https",
            "getHost": "example.com:8443",
            "getHostname": "example.com",
            "getPort": "8443",
            "getEscapedPath": "/a%20b/c",
            "getQuery": {"x": ["1", "3"], "y": ["2"]},
        },
    ),
    (
        "http://[::1]:80/",
        {"getHost": "[::1]:80", "getHostname": "::1", "getPort": "80", "getEscapedPath": "/"},
    ),
    ("http://[fe80::1]", {"getHostname": "fe80::1", "getPort": ""}),
    ("https://example.com/a b", {"getEscapedPath": "/a%20b"}),
    ("https://example.com", {"getEscapedPath": "", "getQuery": {}}),
    ("/just/a/path?q=a+b", {"getScheme": "", "getHost": "", "getQuery": {"q": ["a b"]}}),
    ("HTTP://Example.COM", {"getScheme": "http", "getHost": "Example.COM"}),
    # Go reads "host:port" without a scheme as scheme "example.com" and an opaque part
    ("example.com:8080", {"getScheme": "example.com", "getHost": "", "getPort": ""}),
]


@pytest.mark.parametrize(("url", "parts"), URL_CASES)
def test_url_library(url: str, parts: dict[str, Any]) -> None:
    assert run("isURL(self)", url) is True
    for method, expected in parts.items():
        assert run(f"url(self).{method}()", url) == expected, method


@pytest.mark.parametrize(
    "text",
    ["", "foo", "1http://x", "http://a b/", "http://x:y:z/", "http://%zz/", "http://x/\x7f"],
)
def test_is_url_rejects_what_go_rejects(text: str) -> None:
    assert run("isURL(self)", text) is False
    with pytest.raises(CelError, match="URL parse error during conversion from string"):
        run("url(self)", text)


def test_timestamps_and_durations_compare() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    assert run("self > timestamp('2023-12-31T23:59:59Z')", now) is True
    assert run("self - timestamp('2023-12-31T00:00:00Z')", now) == timedelta(days=1)
