"""The runtime of the CEL evaluator in :mod:`flokoa_envtest.cel`.

Values are plain Python objects (see :mod:`~flokoa_envtest.cel`); this module holds
the operators with cel-go's semantics (heterogeneous equality, int64 overflow, Go division)
and the function library: the standard functions, the extended strings, lists, regex, sets and
URL libraries of Kubernetes, conversions, timestamps and durations.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

from flokoa_envtest import gourl
from flokoa_envtest.fielderrors import go_float

INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1
UINT_MAX: Final = 2**64 - 1


class CelError(Exception):
    """A CEL runtime error; ``str()`` is cel-go's message (``no such key: foo``)."""


class UInt(int):
    """A CEL ``uint`` value (``1u``)."""

    def __repr__(self) -> str:
        return f"{int(self)}u"


@dataclass(frozen=True)
class CelURL:
    """The value of CEL ``url(s)``: Go's parsed ``url.URL``."""

    url: gourl.URL


class NoOverload(CelError):
    """The ``no such overload`` error: an operator or function applied to the wrong types."""


def no_overload() -> NoReturn:
    """Raise cel-go's ``no such overload`` error."""
    raise NoOverload("no such overload")


# --- runtime: types and operators -----------------------------------------------------------

_NUMERIC: Final = (int, UInt, float)
_TYPE_NAMES: Final[dict[type, str]] = {
    bool: "bool",
    int: "int",
    UInt: "uint",
    float: "double",
    str: "string",
    bytes: "bytes",
    list: "list",
    dict: "map",
    type(None): "null_type",
    datetime: "google.protobuf.Timestamp",
    timedelta: "google.protobuf.Duration",
    CelURL: "kubernetes.URL",
}


def type_name(value: Any) -> str:
    """The CEL type name of a value (for messages)."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _is_num(value: Any) -> bool:
    t = type(value)
    return t is int or t is float or t is UInt


def _int(value: int) -> int:
    if value < INT_MIN or value > INT_MAX:
        raise CelError("integer overflow")
    return value


def _uint(value: int) -> UInt:
    if value < 0 or value > UINT_MAX:
        raise CelError("unsigned integer overflow")
    return UInt(value)


def logical_not(value: Any) -> Any:
    """CEL ``!``."""
    if value is True:
        return False
    if value is False:
        return True
    no_overload()


def negate(value: Any) -> Any:
    """CEL unary ``-``."""
    t = type(value)
    if t is int:
        return _int(-value)
    if t is float:
        return -value
    if t is timedelta:
        return -value
    no_overload()


def _add(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta is tb:
        if ta is int:
            return _int(a + b)
        if ta is str or ta is float or ta is bytes or ta is list:
            return a + b
        if ta is UInt:
            return _uint(a + b)
        if ta is timedelta:
            return a + b
    elif ta is datetime and tb is timedelta:
        return a + b
    elif ta is timedelta and tb is datetime:
        return b + a
    no_overload()


def _sub(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta is tb:
        if ta is int:
            return _int(a - b)
        if ta is float:
            return a - b
        if ta is UInt:
            return _uint(a - b)
        if ta is timedelta or ta is datetime:
            return a - b
    elif ta is datetime and tb is timedelta:
        return a - b
    no_overload()


def _mul(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta is tb:
        if ta is int:
            return _int(a * b)
        if ta is float:
            return a * b
        if ta is UInt:
            return _uint(a * b)
    no_overload()


def _div(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta is tb:
        if ta is int or ta is UInt:
            if b == 0:
                raise CelError("division by zero")
            quotient = abs(a) // abs(b)
            if (a < 0) != (b < 0):
                quotient = -quotient
            return _int(quotient) if ta is int else UInt(quotient)
        if ta is float:
            if b == 0:
                if a == 0 or math.isnan(a):
                    return math.nan
                return math.copysign(math.inf, a) * math.copysign(1.0, b)
            return a / b
    no_overload()


def _mod(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta is tb and (ta is int or ta is UInt):
        if b == 0:
            raise CelError("modulus by zero")
        remainder = abs(a) % abs(b)
        if a < 0:
            remainder = -remainder
        return remainder if ta is int else UInt(remainder)
    no_overload()


def equal(a: Any, b: Any) -> bool:
    """CEL ``==``: heterogeneous equality (numbers compare across types)."""
    ta, tb = type(a), type(b)
    if ta is tb:
        if ta is list:
            return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
        if ta is dict:
            if len(a) != len(b):
                return False
            return all(key in b and equal(value, b[key]) for key, value in a.items())
        return bool(a == b)
    if _is_num(a) and _is_num(b):
        return bool(a == b)
    return False


def _ne(a: Any, b: Any) -> bool:
    return not equal(a, b)


_ORDERED: Final = (str, bytes, bool, datetime, timedelta)


def _compare(a: Any, b: Any) -> int:
    ta, tb = type(a), type(b)
    if (ta is tb and ta in _ORDERED) or (_is_num(a) and _is_num(b)):
        if a < b:
            return -1
        if a > b:
            return 1
        if a == b:
            return 0
        return 2  # NaN: unordered
    no_overload()


def _lt(a: Any, b: Any) -> bool:
    return _compare(a, b) == -1


def _le(a: Any, b: Any) -> bool:
    return _compare(a, b) in (-1, 0)


def _gt(a: Any, b: Any) -> bool:
    return _compare(a, b) == 1


def _ge(a: Any, b: Any) -> bool:
    return _compare(a, b) in (1, 0)


def _in(item: Any, container: Any) -> bool:
    t = type(container)
    if t is list:
        return any(equal(item, element) for element in container)
    if t is dict:
        try:
            if item in container:
                return True
        except TypeError:
            no_overload()
        if _is_num(item):
            return any(_is_num(k) and k == item for k in container)
        return False
    no_overload()


def index_value(container: Any, index: Any) -> Any:
    """CEL ``container[index]`` on lists and maps."""
    t = type(container)
    if t is list:
        ti = type(index)
        if ti is float and index.is_integer():
            index = int(index)
        elif ti is not int and ti is not UInt:
            no_overload()
        if index < 0 or index >= len(container):
            raise CelError(f"index out of bounds: {index}")
        return container[index]
    if t is dict:
        try:
            return container[index]
        except KeyError:
            raise CelError(f"no such key: {_key_text(index)}") from None
        except TypeError:
            no_overload()
    no_overload()


def _key_text(key: Any) -> str:
    if type(key) is bool:
        return "true" if key else "false"
    if type(key) is float:
        return go_float(key)
    return str(key)


BINARY: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "relation_lt": _lt,
    "relation_le": _le,
    "relation_gt": _gt,
    "relation_ge": _ge,
    "relation_eq": equal,
    "relation_ne": _ne,
    "relation_in": _in,
    "addition_add": _add,
    "addition_sub": _sub,
    "multiplication_mul": _mul,
    "multiplication_div": _div,
    "multiplication_mod": _mod,
}


# --- runtime: functions ---------------------------------------------------------------------


def _str_arg(value: Any) -> str:
    if type(value) is not str:
        no_overload()
    return value


def _int_arg(value: Any) -> int:
    if type(value) is not int:
        no_overload()
    return value


def _size(value: Any) -> int:
    t = type(value)
    if t is str or t is bytes or t is list or t is dict:
        return len(value)
    no_overload()


def _contains(text: Any, sub: Any) -> bool:
    return _str_arg(sub) in _str_arg(text)


def _starts_with(text: Any, prefix: Any) -> bool:
    return _str_arg(text).startswith(_str_arg(prefix))


def _ends_with(text: Any, suffix: Any) -> bool:
    return _str_arg(text).endswith(_str_arg(suffix))


_RE2_OPTIONS: Final = re2.Options()
_RE2_OPTIONS.log_errors = False
_RE2_TEST_OPTIONS: Final = re2.Options()
_RE2_TEST_OPTIONS.log_errors = False
_RE2_TEST_OPTIONS.never_capture = True
_UNANCHORED: Final = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)


class Regex:
    """A compiled RE2 expression (Go ``regexp`` syntax and semantics)."""

    __slots__ = ("_test", "pattern")

    def __init__(self, pattern: str) -> None:
        try:
            self.pattern: Any = re2.compile(pattern, _RE2_OPTIONS)
            tester = re2.compile(pattern, _RE2_TEST_OPTIONS)
        except re2.error as err:
            message = err.args[0] if err.args else err
            if isinstance(message, bytes):
                message = message.decode("utf-8", "replace")
            raise CelError(f"error parsing regexp: {message}") from None
        # google-re2's public search() decodes match offsets for every call; a boolean test
        # only needs the engine's answer, so call it directly when the binding exposes it.
        low_level = getattr(tester, "_regexp", None)
        self._test: Callable[..., Any] | None = (
            low_level.Match if low_level is not None and _UNANCHORED is not None else None
        )

    def test(self, text: str) -> bool:
        """True when the expression matches somewhere in ``text`` (Go's ``MatchString``)."""
        if self._test is None:
            return self.pattern.search(text) is not None
        data = text.encode("utf-8", "surrogatepass")
        return bool(self._test(_UNANCHORED, data, 0, len(data))[0][0] >= 0)


@functools.lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> Regex:
    """Compile an RE2 pattern (cached) like Go's ``regexp``; raise :class:`CelError`."""
    return Regex(pattern)


def _matches(text: Any, pattern: Any) -> bool:
    return compile_regex(_str_arg(pattern)).test(_str_arg(text))


def _find(text: Any, pattern: Any) -> str:
    match = compile_regex(_str_arg(pattern)).pattern.search(_str_arg(text))
    return "" if match is None else str(match.group(0))


def _find_all(text: Any, pattern: Any, limit: Any = -1) -> list[str]:
    n = _int_arg(limit)
    if n == 0:
        return []
    regex = compile_regex(_str_arg(pattern)).pattern
    found = [str(m.group(0)) for m in regex.finditer(_str_arg(text))]
    return found if n < 0 else found[:n]


_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_UPPER: Final = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_GO_SPACE: Final = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _lower_ascii(text: Any) -> str:
    return _str_arg(text).translate(_LOWER)


def _upper_ascii(text: Any) -> str:
    return _str_arg(text).translate(_UPPER)


def _trim(text: Any) -> str:
    return _str_arg(text).strip(_GO_SPACE)


def _replace(text: Any, old: Any, new: Any, limit: Any = -1) -> str:
    n = _int_arg(limit)
    return _str_arg(text).replace(_str_arg(old), _str_arg(new), n if n >= 0 else -1)


def _split(text: Any, sep: Any, limit: Any = -1) -> list[str]:
    s, separator, n = _str_arg(text), _str_arg(sep), _int_arg(limit)
    if n == 0:
        return []
    if separator == "":
        chars = list(s)
        if 0 < n < len(chars):
            return [*chars[: n - 1], "".join(chars[n - 1 :])]
        return chars
    return s.split(separator, n - 1 if n > 0 else -1)


def _substring(text: Any, start: Any, end: Any = None) -> str:
    s = _str_arg(text)
    begin = _int_arg(start)
    stop = len(s) if end is None else _int_arg(end)
    if begin < 0 or begin > len(s):
        raise CelError(f"index out of range: {begin}")
    if stop < 0 or stop > len(s):
        raise CelError(f"index out of range: {stop}")
    if begin > stop:
        raise CelError(f"invalid substring range. start: {begin}, end: {stop}")
    return s[begin:stop]


def _char_at(text: Any, index: Any) -> str:
    s, i = _str_arg(text), _int_arg(index)
    if i < 0 or i > len(s):
        raise CelError(f"index out of range: {i}")
    return s[i : i + 1]


def _index_of(target: Any, item: Any, offset: Any = 0) -> int:
    if type(target) is list:
        for i, element in enumerate(target):
            if equal(element, item):
                return i
        return -1
    s, sub, start = _str_arg(target), _str_arg(item), _int_arg(offset)
    if start < 0 or start > len(s):
        raise CelError(f"index out of range: {start}")
    return s.find(sub, start)


def _last_index_of(target: Any, item: Any, offset: Any = None) -> int:
    if type(target) is list:
        for i in range(len(target) - 1, -1, -1):
            if equal(target[i], item):
                return i
        return -1
    s, sub = _str_arg(target), _str_arg(item)
    end = len(s) if offset is None else _int_arg(offset)
    if end < 0 or end > len(s):
        raise CelError(f"index out of range: {end}")
    return s.rfind(sub, 0, end + len(sub))


def _join(items: Any, sep: Any = "") -> str:
    if type(items) is not list:
        no_overload()
    return _str_arg(sep).join(_str_arg(i) for i in items)


def _list_arg(value: Any) -> list[Any]:
    if type(value) is not list:
        no_overload()
    return value


def _sum(items: Any) -> Any:
    values = _list_arg(items)
    if not values:
        return 0
    total = values[0]
    for value in values[1:]:
        total = _add(total, value)
    return total


def _extremum(items: Any, name: str, wins: int) -> Any:
    """The first element that no later one beats (``_compare(later, best) == wins``)."""
    values = _list_arg(items)
    if not values:
        raise CelError(f"{name}(list) argument must not be empty")
    best = values[0]
    for value in values[1:]:
        if _compare(value, best) == wins:
            best = value
    return best


def _min(items: Any) -> Any:
    return _extremum(items, "min", -1)


def _max(items: Any) -> Any:
    return _extremum(items, "max", 1)


def _is_sorted(items: Any) -> bool:
    values = _list_arg(items)
    return all(_compare(values[i], values[i + 1]) != 1 for i in range(len(values) - 1))


def _sets_contains(a: Any, b: Any) -> bool:
    return all(_in(x, _list_arg(a)) for x in _list_arg(b))


def _sets_equivalent(a: Any, b: Any) -> bool:
    return _sets_contains(a, b) and _sets_contains(b, a)


def _sets_intersects(a: Any, b: Any) -> bool:
    return any(_in(x, _list_arg(a)) for x in _list_arg(b))


# URL library (k8s.io/apiserver/pkg/cel/library/urls.go)


def _url(text: Any) -> CelURL:
    s = _str_arg(text)
    try:
        gourl.parse_request_uri(s)
        return CelURL(gourl.parse(s))
    except gourl.URLError as err:
        raise CelError(f"URL parse error during conversion from string: {err}") from None


def _is_url(text: Any) -> bool:
    return gourl.is_request_uri(_str_arg(text))


def _url_arg(value: Any) -> gourl.URL:
    if type(value) is not CelURL:
        no_overload()
    return value.url


def _get_scheme(value: Any) -> str:
    return _url_arg(value).scheme


def _get_host(value: Any) -> str:
    return _url_arg(value).host


def _get_hostname(value: Any) -> str:
    return _url_arg(value).hostname()


def _get_port(value: Any) -> str:
    return _url_arg(value).port()


def _get_escaped_path(value: Any) -> str:
    return _url_arg(value).escaped_path()


def _get_query(value: Any) -> dict[str, list[str]]:
    return _url_arg(value).query()


# conversions


def _to_int(value: Any) -> int:
    t = type(value)
    if t is int:
        return int(value)
    if t is UInt:
        return _int(int(value))
    if t is float:
        if math.isnan(value) or math.isinf(value) or not INT_MIN <= value < 2.0**63:
            raise CelError("integer overflow")
        return int(value)
    if t is str:
        if re.fullmatch(r"[+-]?[0-9]+", value) is None:
            raise CelError(f"cannot convert '{value}' to int")
        return _int(int(value, 10))
    if t is datetime:
        return int(value.timestamp() // 1)
    if t is timedelta:
        return int(value / timedelta(microseconds=1)) * 1000
    no_overload()


def _to_uint(value: Any) -> UInt:
    t = type(value)
    if t is UInt:
        return UInt(value)
    if t is int:
        return _uint(value)
    if t is float:
        if math.isnan(value) or not 0 <= value < 2.0**64:
            raise CelError("unsigned integer overflow")
        return UInt(int(value))
    if t is str and re.fullmatch(r"[+]?[0-9]+", value):
        return _uint(int(value))
    if t is str:
        raise CelError(f"cannot convert '{value}' to uint")
    no_overload()


def _to_double(value: Any) -> float:
    t = type(value)
    if t is float:
        return float(value)
    if t is int or t is UInt:
        return float(value)
    if t is str:
        try:
            return float(value)
        except ValueError:
            raise CelError(f"cannot convert '{value}' to double") from None
    no_overload()


def _to_string(value: Any) -> str:
    t = type(value)
    if t is str:
        return str(value)
    if t is bool:
        return "true" if value else "false"
    if t is int or t is UInt:
        return str(int(value))
    if t is float:
        return go_float(value)
    if t is bytes:
        try:
            return str(value.decode("utf-8"))
        except UnicodeDecodeError:
            raise CelError("invalid UTF-8 in bytes, cannot convert to string") from None
    if t is datetime:
        return format_timestamp(value)
    if t is timedelta:
        return format_duration(value)
    no_overload()


def _to_bool(value: Any) -> bool:
    if type(value) is bool:
        return value
    if type(value) is str:
        if value in ("1", "t", "T", "TRUE", "true", "True"):
            return True
        if value in ("0", "f", "F", "FALSE", "false", "False"):
            return False
        raise CelError("type conversion error from 'string' to 'bool'")
    no_overload()


def _to_bytes(value: Any) -> bytes:
    if type(value) is bytes:
        return value
    return _str_arg(value).encode("utf-8")


def _dyn(value: Any) -> Any:
    return value


# timestamps and durations

_DURATION_UNITS: Final[dict[str, float]] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART: Final = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> timedelta:
    """Go's ``time.ParseDuration`` (``1h30m``, ``-1.5s``); raise ``ValueError`` when invalid."""
    s = text
    sign = 1.0
    if s[:1] in "+-" and s:
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return timedelta(0)
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    seconds = 0.0
    pos = 0
    while pos < len(s):
        match = _DURATION_PART.match(s, pos)
        if match is None or match.group(1) in ("", "."):
            raise ValueError(f'time: invalid duration "{text}"')
        seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    return timedelta(seconds=sign * seconds)


def format_duration(value: timedelta) -> str:
    """CEL's ``string(duration)``: seconds with a trailing ``s`` (``90s``, ``0.5s``)."""
    seconds = value / timedelta(seconds=1)
    text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"{text}s"


_TIMESTAMP: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})"
)


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp to an aware UTC ``datetime``; raise ``ValueError``."""
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid timestamp {text!r}")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = match.group(7) or ""
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    zone = match.group(8)
    stamp = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    if zone not in ("Z", "z"):
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        stamp = stamp - offset if zone[0] == "+" else stamp + offset
    return stamp


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with the shortest fraction (``2024-01-02T03:04:05Z``)."""
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def _timestamp(value: Any) -> datetime:
    if type(value) is datetime:
        return value
    try:
        return parse_timestamp(_str_arg(value))
    except ValueError:
        raise CelError(f"timestamp validation error: {value}") from None


def _duration(value: Any) -> timedelta:
    if type(value) is timedelta:
        return value
    try:
        return parse_duration(_str_arg(value))
    except ValueError as err:
        raise CelError(str(err)) from None


def _in_zone(value: Any, zone: Any = None) -> datetime:
    if type(value) is not datetime:
        no_overload()
    if zone is None:
        return value.astimezone(UTC)
    name = _str_arg(zone)
    match = re.fullmatch(r"([+-])?(\d{1,2}):(\d{2})", name)
    if match:
        delta = timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))
        return value.astimezone(timezone(-delta if match.group(1) == "-" else delta))
    try:
        return value.astimezone(ZoneInfo(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise CelError(f"unknown time zone {name}") from None


def _get_full_year(value: Any, zone: Any = None) -> int:
    return _in_zone(value, zone).year


def _get_month(value: Any, zone: Any = None) -> int:
    return _in_zone(value, zone).month - 1


def _get_day_of_year(value: Any, zone: Any = None) -> int:
    return _in_zone(value, zone).timetuple().tm_yday - 1


def _get_day_of_month(value: Any, zone: Any = None) -> int:
    return _in_zone(value, zone).day - 1


def _get_date(value: Any, zone: Any = None) -> int:
    return _in_zone(value, zone).day


def _get_day_of_week(value: Any, zone: Any = None) -> int:
    return (_in_zone(value, zone).weekday() + 1) % 7


def _get_hours(value: Any, zone: Any = None) -> int:
    if type(value) is timedelta:
        return int(value / timedelta(hours=1))
    return _in_zone(value, zone).hour


def _get_minutes(value: Any, zone: Any = None) -> int:
    if type(value) is timedelta:
        return int(value / timedelta(minutes=1))
    return _in_zone(value, zone).minute


def _get_seconds(value: Any, zone: Any = None) -> int:
    if type(value) is timedelta:
        return int(value / timedelta(seconds=1))
    return _in_zone(value, zone).second


def _get_milliseconds(value: Any, zone: Any = None) -> int:
    if type(value) is timedelta:
        return int(value / timedelta(milliseconds=1))
    return _in_zone(value, zone).microsecond // 1000


FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
    "size": _size,
    "matches": _matches,
    "int": _to_int,
    "uint": _to_uint,
    "double": _to_double,
    "string": _to_string,
    "bool": _to_bool,
    "bytes": _to_bytes,
    "dyn": _dyn,
    "timestamp": _timestamp,
    "duration": _duration,
    "url": _url,
    "isURL": _is_url,
    "sets.contains": _sets_contains,
    "sets.equivalent": _sets_equivalent,
    "sets.intersects": _sets_intersects,
}

METHODS: Final[dict[str, Callable[..., Any]]] = {
    "size": _size,
    "contains": _contains,
    "startsWith": _starts_with,
    "endsWith": _ends_with,
    "matches": _matches,
    "find": _find,
    "findAll": _find_all,
    "lowerAscii": _lower_ascii,
    "upperAscii": _upper_ascii,
    "trim": _trim,
    "replace": _replace,
    "split": _split,
    "substring": _substring,
    "charAt": _char_at,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "join": _join,
    "sum": _sum,
    "min": _min,
    "max": _max,
    "isSorted": _is_sorted,
    "getScheme": _get_scheme,
    "getHost": _get_host,
    "getHostname": _get_hostname,
    "getPort": _get_port,
    "getEscapedPath": _get_escaped_path,
    "getQuery": _get_query,
    "getFullYear": _get_full_year,
    "getMonth": _get_month,
    "getDayOfYear": _get_day_of_year,
    "getDayOfMonth": _get_day_of_month,
    "getDate": _get_date,
    "getDayOfWeek": _get_day_of_week,
    "getHours": _get_hours,
    "getMinutes": _get_minutes,
    "getSeconds": _get_seconds,
    "getMilliseconds": _get_milliseconds,
}
