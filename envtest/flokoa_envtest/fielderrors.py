"""Field errors as kube-apiserver renders them (``field.Error``, ``ErrorList.ToAggregate``).

A :class:`FieldError` carries kube's cause ``reason`` (``FieldValueInvalid`` …), the field
path (``spec.openai.baseURL``), the detail message and the offending value. Its
:meth:`FieldError.body` and ``str()`` reproduce apimachinery's ``ErrorBody()`` and
``Error()`` byte for byte, including Go's value formatting (``%q`` strings, ``%v`` numbers,
``%#v`` maps), so the 422 ``Status`` built by :func:`invalid_status` reads exactly like a
real API server's. Formats follow Kubernetes v1.32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

INVALID: Final = "FieldValueInvalid"
"""``field.Invalid``: a malformed value (``Invalid value: …``)."""
REQUIRED: Final = "FieldValueRequired"
"""``field.Required``: a missing value (``Required value``)."""
NOT_SUPPORTED: Final = "FieldValueNotSupported"
"""``field.NotSupported``: a value outside an enum (``Unsupported value: …``)."""
TYPE_INVALID: Final = "FieldValueTypeInvalid"
"""``field.TypeInvalid``: a value of the wrong type (rendered ``Invalid value: …``)."""
TOO_LONG: Final = "FieldValueTooLong"
"""``field.TooLong``: a string over its maximum length (``Too long: …``)."""
TOO_MANY: Final = "FieldValueTooMany"
"""``field.TooMany``: a list or object with too many members (``Too many: …``)."""
FORBIDDEN: Final = "FieldValueForbidden"
"""``field.Forbidden``: a value not allowed here (``Forbidden: …``)."""
DUPLICATE: Final = "FieldValueDuplicate"
"""``field.Duplicate``: a repeated value (``Duplicate value: …``)."""
NOT_FOUND: Final = "FieldValueNotFound"
"""``field.NotFound`` (``Not found: …``)."""
INTERNAL: Final = "InternalError"
"""``field.InternalError`` (``Internal error: …``)."""

_TYPE_TEXT: Final[dict[str, str]] = {
    NOT_FOUND: "Not found",
    REQUIRED: "Required value",
    DUPLICATE: "Duplicate value",
    INVALID: "Invalid value",
    NOT_SUPPORTED: "Unsupported value",
    FORBIDDEN: "Forbidden",
    TOO_LONG: "Too long",
    TOO_MANY: "Too many",
    INTERNAL: "Internal error",
    TYPE_INVALID: "Invalid value",
}

_VALUELESS: Final = frozenset({REQUIRED, FORBIDDEN, TOO_LONG, INTERNAL})


class _Omit:
    """The marker for "no value to print" (apimachinery's ``omitValue``)."""

    _instance: _Omit | None = None

    def __new__(cls) -> _Omit:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "OMIT"


OMIT: Final = _Omit()
"""Pass as :attr:`FieldError.value` to print the error type without a value."""

NIL_PATH: Final = "<nil>"
"""The field of an error raised on a nil ``field.Path`` (as Go prints it)."""


@dataclass(frozen=True)
class FieldError:
    """One field-level validation error, as ``k8s.io/apimachinery`` ``field.Error`` holds it."""

    type: str
    """kube's cause reason: ``FieldValueInvalid``, ``FieldValueRequired``, …"""
    field: str
    """The field path as kube prints it (``spec.items[0].name``, ``spec.headers[X-Foo]``)."""
    message: str
    """The detail text (without the field and the ``Invalid value: …`` prefix); may be empty."""
    value: object = None
    """The offending value, printed the way Go's fmt would; :data:`OMIT` prints none."""

    def body(self) -> str:
        """apimachinery's ``ErrorBody()``: the cause message of a ``Status``."""
        text = _TYPE_TEXT.get(self.type, self.type)
        if self.type not in _VALUELESS and self.value is not OMIT:
            text = f"{text}: {go_value(self.value)}"
        if self.message:
            text = f"{text}: {self.message}"
        return text

    def __str__(self) -> str:
        """apimachinery's ``Error()``: ``<field>: <body>``."""
        return f"{self.field}: {self.body()}"


def invalid(field: str, value: object, detail: str) -> FieldError:
    """``field.Invalid``."""
    return FieldError(INVALID, field, detail, value)


def type_invalid(field: str, value: object, detail: str) -> FieldError:
    """``field.TypeInvalid``."""
    return FieldError(TYPE_INVALID, field, detail, value)


def required(field: str, detail: str = "") -> FieldError:
    """``field.Required``."""
    return FieldError(REQUIRED, field, detail, "")


def forbidden(field: str, detail: str) -> FieldError:
    """``field.Forbidden``."""
    return FieldError(FORBIDDEN, field, detail, "")


def duplicate(field: str, value: object) -> FieldError:
    """``field.Duplicate``."""
    return FieldError(DUPLICATE, field, "", value)


def not_supported(field: str, value: object, valid: list[str]) -> FieldError:
    """``field.NotSupported``: ``supported values: "a", "b"``."""
    detail = ""
    if valid:
        detail = "supported values: " + ", ".join(go_quote(v) for v in valid)
    return FieldError(NOT_SUPPORTED, field, detail, value)


def too_long(field: str, value: object, max_length: int) -> FieldError:
    """``field.TooLong`` (the value is never printed)."""
    if max_length >= 0:
        unit = "byte" if max_length == 1 else "bytes"
        detail = f"may not be more than {max_length} {unit}"
    else:
        detail = "value is too long"
    return FieldError(TOO_LONG, field, detail, value)


def too_many(field: str, actual: int, maximum: int) -> FieldError:
    """``field.TooMany``: ``Too many: 3: must have at most 2 items``."""
    if maximum >= 0:
        unit = "item" if maximum == 1 else "items"
        detail = f"must have at most {maximum} {unit}"
    else:
        detail = "has too many items"
    return FieldError(TOO_MANY, field, detail, actual if actual >= 0 else OMIT)


def internal(field: str, detail: str) -> FieldError:
    """``field.InternalError``."""
    return FieldError(INTERNAL, field, detail, None)


def aggregate_message(errors: list[FieldError]) -> str:
    """``ErrorList.ToAggregate().Error()``: one error bare, several as ``[a, b]`` (deduplicated)."""
    seen: list[str] = []
    for error in errors:
        text = str(error)
        if text not in seen:
            seen.append(text)
    if len(seen) == 1:
        return seen[0]
    return "[" + ", ".join(seen) + "]"


def invalid_status(kind: str, group: str, name: str, errors: list[FieldError]) -> dict[str, Any]:
    """The 422 ``Invalid`` ``Status`` body kube-apiserver returns (``apierrors.NewInvalid``)."""
    qualified = f"{kind}.{group}" if group else kind
    message = f"{qualified} {go_quote(name)} is invalid"
    if errors:
        message = f"{message}: {aggregate_message(errors)}"
    causes: list[dict[str, str]] = []
    for error in errors:
        cause: dict[str, str] = {"reason": error.type}
        body = error.body()
        if body:
            cause["message"] = body
        if error.field:
            cause["field"] = error.field
        causes.append(cause)
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if kind:
        details["kind"] = kind
    details["causes"] = causes
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Invalid",
        "details": details,
        "code": 422,
    }


# --- Go fmt emulation -----------------------------------------------------------------------


def go_value(value: object) -> str:
    """Format a JSON-ish value the way ``ErrorBody`` does: ``%v`` scalars, ``%q`` strings."""
    if value is None:
        return '"null"'
    return go_sharp(value)


def go_sharp(value: object) -> str:
    """Go's ``%#v`` of an unstructured JSON value (``map[string]interface {}{"a":1}``)."""
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, dict):
        items = ", ".join(
            f"{go_quote(str(k))}:{go_sharp(value[k])}" for k in sorted(value, key=str)
        )
        return "map[string]interface {}{" + items + "}"
    if isinstance(value, list | tuple):
        return "[]interface {}{" + ", ".join(go_sharp(v) for v in value) + "}"
    return str(value)


def go_float(value: float) -> str:
    """Go's ``%v`` of a float64 (``strconv.FormatFloat(f, 'g', -1, 64)``): ``2``, ``1e+06``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    mantissa, _, exponent = repr(value).lower().partition("e")
    sign = ""
    if mantissa.startswith("-"):
        sign, mantissa = "-", mantissa[1:]
    int_part, _, frac_part = mantissa.partition(".")
    digits = (int_part + frac_part).lstrip("0")
    leading_zeros = len(int_part + frac_part) - len((int_part + frac_part).lstrip("0"))
    point = len(int_part) - leading_zeros + (int(exponent) if exponent else 0)
    digits = digits.rstrip("0") or "0"
    exp = point - 1
    if exp < -4 or exp >= 6:
        # %e form: d.ddde±XX (at least two exponent digits)
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


_GO_ESCAPES: Final[dict[str, str]] = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote`` (``%q``): printable runes kept, others escaped."""
    out = ['"']
    for ch in text:
        escaped = _GO_ESCAPES.get(ch)
        if escaped is not None:
            out.append(escaped)
            continue
        code = ord(ch)
        if 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        elif ch.isprintable() or (ch == " "):
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)
