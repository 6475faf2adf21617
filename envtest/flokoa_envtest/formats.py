"""The OpenAPI string formats kube-apiserver checks on custom resources (kube-openapi ``strfmt``).

Only string values are checked, and only for the formats in kube-openapi's default registry;
any other format name (``int32``, ``int64``, ``double``, made-up names) is not checked, as in
kube-apiserver. Names are matched like the registry does: case-insensitively, ignoring ``-``
and ``_`` (``date-time`` and ``datetime`` are one format).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from datetime import date
from typing import Any, Final

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

from flokoa_envtest import gourl
from flokoa_envtest.cellib import parse_duration

_RE2_OPTIONS: Final = re2.Options()
_RE2_OPTIONS.log_errors = False

_HOSTNAME: Final[Any] = re2.compile(
    r"^([a-zA-Z0-9\p{S}\p{L}]((-?[a-zA-Z0-9\p{S}\p{L}]{0,62})?)|([a-zA-Z0-9\p{S}\p{L}]"
    r"(([a-zA-Z0-9-\p{S}\p{L}]{0,61}[a-zA-Z0-9\p{S}\p{L}])?)(\.)){1,}([a-zA-Z\p{L}]){2,63})$",
    _RE2_OPTIONS,
)
_UUID: Final = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
_UUID3: Final = re.compile(
    r"[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I
)
_UUID4: Final = re.compile(
    r"[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}", re.I
)
_UUID5: Final = re.compile(
    r"[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}", re.I
)
_BASE64: Final = re.compile(
    r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})"
)
_TIME_OF_DAY: Final = re.compile(
    r"([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))"
)
_FULL_DATE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_HEXCOLOR: Final = re.compile(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_RGBCOLOR: Final = re.compile(
    r"rgb\(\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])"
    r"\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*\)"
)
_SSN: Final = re.compile(r"\d{3}[- ]?\d{2}[- ]?\d{4}")
_MAC: Final = re.compile(
    r"(?:[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){7}"
    r"|[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){19}"
    r"|[0-9A-Fa-f]{4}(?:\.[0-9A-Fa-f]{4}){2}|[0-9A-Fa-f]{4}(?:\.[0-9A-Fa-f]{4}){3}"
    r"|[0-9A-Fa-f]{4}(?:\.[0-9A-Fa-f]{4}){9})"
)
_EMAIL: Final = re.compile(r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+")
_DURATION_PART: Final = re.compile(r"(\d+)\s*([A-Za-zµ]+)")
_DURATION_UNITS: Final = frozenset(
    {
        "ns", "nanosecond", "nanoseconds", "us", "µs", "microsecond", "microseconds",
        "ms", "millisecond", "milliseconds", "s", "sec", "secs", "second", "seconds",
        "m", "min", "mins", "minute", "minutes", "h", "hr", "hrs", "hour", "hours",
        "d", "day", "days", "w", "wk", "wks", "week", "weeks",
    }
)  # fmt: skip


def is_date(text: str) -> bool:
    """``date``: an RFC 3339 full-date (``2024-02-29``) naming a real day."""
    match = _FULL_DATE.fullmatch(text)
    if match is None:
        return False
    try:
        date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return False
    return True


def is_date_time(text: str) -> bool:
    """``date-time``: kube-openapi's check (a date, ``T``, a time with zone; case-insensitive)."""
    if len(text) < 4:
        return False
    parts = text.lower().split("t")
    if len(parts) < 2 or not is_date(parts[0]):
        return False
    match = _TIME_OF_DAY.match(parts[1])
    if match is None or match.end() != len(parts[1]):
        return False
    return match.group(1) <= "23" and match.group(2) <= "59" and match.group(3) <= "59"


def is_hostname(text: str) -> bool:
    """``hostname``: kube-openapi's RFC 1123 check (labels up to 63, total up to 255)."""
    if len(text.encode()) > 255 or _HOSTNAME.search(text) is None:
        return False
    return all(len(label.encode()) <= 63 for label in text.split("."))


def is_ipv4(text: str) -> bool:
    """``ipv4``: a dotted quad (leading zeros tolerated, like ``ParseIPSloppy``)."""
    parts = text.split(".")
    if len(parts) != 4:
        return False
    return all(p.isdigit() and p.isascii() and int(p) <= 255 for p in parts)


def is_ipv6(text: str) -> bool:
    """``ipv6``: an address Go's ``net.ParseIP`` reads, written with a colon."""
    if ":" not in text or "%" in text:
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def is_cidr(text: str) -> bool:
    """``cidr``: ``address/prefix`` for IPv4 or IPv6 (host bits allowed)."""
    address, slash, prefix = text.partition("/")
    if not slash or not prefix.isdigit() or not prefix.isascii():
        return False
    if is_ipv4(address):
        return int(prefix) <= 32
    return is_ipv6(address) and int(prefix) <= 128


def is_duration(text: str) -> bool:
    """``duration``: Go's ``time.ParseDuration`` or kube-openapi's ``3 days``-style units."""
    try:
        parse_duration(text)
    except ValueError:
        pass
    else:
        return True
    return any(m.group(2).lower() in _DURATION_UNITS for m in _DURATION_PART.finditer(text))


def is_email(text: str) -> bool:
    """``email``: an address ``net/mail`` parses (``a@b``, ``Name <a@b>``)."""
    text = text.strip()
    if text.endswith(">") and "<" in text:
        text = text[text.rindex("<") + 1 : -1]
    return _EMAIL.fullmatch(text) is not None


def _fullmatch(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    return lambda text: pattern.fullmatch(text) is not None


_CHECKS: Final[dict[str, Callable[[str], bool]]] = {
    "uri": gourl.is_request_uri,
    "email": is_email,
    "hostname": is_hostname,
    "ipv4": is_ipv4,
    "ipv6": is_ipv6,
    "cidr": is_cidr,
    "mac": _fullmatch(_MAC),
    "uuid": _fullmatch(_UUID),
    "uuid3": _fullmatch(_UUID3),
    "uuid4": _fullmatch(_UUID4),
    "uuid5": _fullmatch(_UUID5),
    "hexcolor": _fullmatch(_HEXCOLOR),
    "rgbcolor": _fullmatch(_RGBCOLOR),
    "ssn": _fullmatch(_SSN),
    "byte": _fullmatch(_BASE64),
    "password": lambda text: True,
    "date": is_date,
    "datetime": is_date_time,
    "duration": is_duration,
}


@functools.lru_cache(maxsize=256)
def format_checker(name: str) -> Callable[[str], bool] | None:
    """The check for format ``name``, or None when kube-apiserver does not check it."""
    return _CHECKS.get(name.replace("-", "").replace("_", "").lower())
