"""Kubernetes protobuf request bodies (what ``kubectl create secret generic`` posts), as JSON.

kubectl's typed clients send ``Content-Type: application/vnd.kubernetes.protobuf``: the magic
``k8s\\x00`` followed by a ``runtime.Unknown`` message (field 1 ``TypeMeta{apiVersion, kind}``,
field 2 ``raw`` = the object's own message, 3 ``contentEncoding``, 4 ``contentType``).
:func:`decode_object` reads that envelope with a minimal wire-format decoder (varints and
length-delimited fields; no protobuf dependency) and returns the object as the JSON dict the
API would have received: ``Secret`` (``data`` base64-encoded), ``ConfigMap``, ``Namespace`` and
``ServiceAccount``, and ``authentication.k8s.io/v1`` ``TokenRequest``. Other kinds raise
``ValueError``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final

__all__ = ["MAGIC", "decode_object", "iter_fields"]

MAGIC: Final = b"k8s\x00"
"""The four bytes that start every Kubernetes protobuf document."""

JSON = dict[str, Any]
Field = tuple[int, int, int | bytes]

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated protobuf message (varint)")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError("malformed protobuf varint")


def iter_fields(buf: bytes) -> Iterator[Field]:
    """The ``(field number, wire type, value)`` triples of one message, in order."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("malformed protobuf message (field number 0)")
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == _BYTES:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("truncated protobuf message (length-delimited field)")
            yield number, wire, buf[pos : pos + length]
            pos += length
        elif wire == _FIXED64:
            if pos + 8 > len(buf):
                raise ValueError("truncated protobuf message (fixed64)")
            yield number, wire, int.from_bytes(buf[pos : pos + 8], "little")
            pos += 8
        elif wire == _FIXED32:
            if pos + 4 > len(buf):
                raise ValueError("truncated protobuf message (fixed32)")
            yield number, wire, int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _bytes(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise ValueError("expected a length-delimited protobuf field")
    return value


def _str(value: int | bytes) -> str:
    return _bytes(value).decode("utf-8")


def _int(value: int | bytes) -> int:
    if isinstance(value, bytes):
        raise ValueError("expected a varint protobuf field")
    return value - (1 << 64) if value >= 1 << 63 else value


def _bool(value: int | bytes) -> bool:
    return _int(value) != 0


def _map_entry(value: int | bytes) -> tuple[str, bytes]:
    key, item = "", b""
    for number, _, field_value in iter_fields(_bytes(value)):
        if number == 1:
            key = _str(field_value)
        elif number == 2:
            item = _bytes(field_value)
    return key, item


def _base64(item: bytes) -> str:
    return base64.b64encode(item).decode("ascii")


def _utf8(item: bytes) -> str:
    return item.decode("utf-8")


def _add_map_entry(
    obj: JSON, field: str, value: int | bytes, convert: Callable[[bytes], str]
) -> None:
    """Add one entry of a ``map<string, …>`` field (a key/value message) to ``obj[field]``."""
    key, item = _map_entry(value)
    obj.setdefault(field, {})[key] = convert(item)


def _time(value: int | bytes) -> str | None:
    """A ``metav1.Time`` (seconds only, like its JSON form); None for the zero time."""
    data = _bytes(value)
    if not data:
        return None
    seconds = 0
    for number, _, field_value in iter_fields(data):
        if number == 1:
            seconds = _int(field_value)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _message(
    value: int | bytes, fields: Mapping[int, tuple[str, Callable[[int | bytes], object]]]
) -> JSON:
    """Decode scalar fields by number; zero values and unknown fields are left out."""
    out: JSON = {}
    for number, _, field_value in iter_fields(_bytes(value)):
        spec = fields.get(number)
        if spec is not None:
            converted = spec[1](field_value)
            if converted not in ("", None, 0, False) or converted is True:
                out[spec[0]] = converted
    return out


_Spec = Mapping[int, tuple[str, Callable[[int | bytes], object]]]
_OWNER_REFERENCE: Final[_Spec] = {
    1: ("kind", _str),
    3: ("name", _str),
    4: ("uid", _str),
    5: ("apiVersion", _str),
    6: ("controller", _bool),
    7: ("blockOwnerDeletion", _bool),
}
_OBJECT_REFERENCE: Final[_Spec] = {
    1: ("kind", _str),
    2: ("namespace", _str),
    3: ("name", _str),
    4: ("uid", _str),
    5: ("apiVersion", _str),
    6: ("resourceVersion", _str),
    7: ("fieldPath", _str),
}


def _object_meta(value: int | bytes) -> JSON:
    """An ``ObjectMeta``; zero values (which gogo-protobuf always writes) are left out."""
    scalars: dict[int, tuple[str, Callable[[int | bytes], Any]]] = {
        1: ("name", _str),
        2: ("generateName", _str),
        3: ("namespace", _str),
        4: ("selfLink", _str),
        5: ("uid", _str),
        6: ("resourceVersion", _str),
        7: ("generation", _int),
        8: ("creationTimestamp", _time),
        9: ("deletionTimestamp", _time),
        10: ("deletionGracePeriodSeconds", _int),
    }
    meta: JSON = {}
    for number, _, field_value in iter_fields(_bytes(value)):
        if number in scalars:
            name, convert = scalars[number]
            converted = convert(field_value)
            if converted not in ("", None, 0):
                meta[name] = converted
        elif number in (11, 12):
            _add_map_entry(meta, "labels" if number == 11 else "annotations", field_value, _utf8)
        elif number == 13:
            meta.setdefault("ownerReferences", []).append(_message(field_value, _OWNER_REFERENCE))
        elif number == 14:
            meta.setdefault("finalizers", []).append(_str(field_value))
    return meta


def _secret(raw: bytes) -> JSON:
    obj: JSON = {}
    for number, _, value in iter_fields(raw):
        if number == 1:
            obj["metadata"] = _object_meta(value)
        elif number == 2:
            _add_map_entry(obj, "data", value, _base64)
        elif number == 3:
            if _str(value):
                obj["type"] = _str(value)
        elif number == 4:
            _add_map_entry(obj, "stringData", value, _utf8)
        elif number == 5:
            obj["immutable"] = _bool(value)
    return obj


def _configmap(raw: bytes) -> JSON:
    obj: JSON = {}
    for number, _, value in iter_fields(raw):
        if number == 1:
            obj["metadata"] = _object_meta(value)
        elif number == 2:
            _add_map_entry(obj, "data", value, _utf8)
        elif number == 3:
            _add_map_entry(obj, "binaryData", value, _base64)
        elif number == 4:
            obj["immutable"] = _bool(value)
    return obj


def _namespace(raw: bytes) -> JSON:
    obj: JSON = {}
    for number, _, value in iter_fields(raw):
        if number == 1:
            obj["metadata"] = _object_meta(value)
        elif number == 2:
            finalizers = [_str(v) for n, _, v in iter_fields(_bytes(value)) if n == 1]
            obj["spec"] = {"finalizers": finalizers} if finalizers else {}
        elif number == 3:
            phase = [_str(v) for n, _, v in iter_fields(_bytes(value)) if n == 1 and v]
            obj["status"] = {"phase": phase[-1]} if phase else {}
    return obj


def _serviceaccount(raw: bytes) -> JSON:
    obj: JSON = {}
    for number, _, value in iter_fields(raw):
        if number == 1:
            obj["metadata"] = _object_meta(value)
        elif number == 2:
            obj.setdefault("secrets", []).append(_message(value, _OBJECT_REFERENCE))
        elif number == 3:
            obj.setdefault("imagePullSecrets", []).append(_message(value, {1: ("name", _str)}))
        elif number == 4:
            obj["automountServiceAccountToken"] = _bool(value)
    return obj


_BOUND_OBJECT_REFERENCE: Final[_Spec] = {
    1: ("kind", _str),
    2: ("apiVersion", _str),
    3: ("name", _str),
    4: ("uid", _str),
}


def _token_request(raw: bytes) -> JSON:
    """``authentication.k8s.io/v1`` ``TokenRequest`` (what ``kubectl create token`` posts)."""
    obj: JSON = {}
    for number, _, value in iter_fields(raw):
        if number == 1:
            obj["metadata"] = _object_meta(value)
        elif number == 2:
            spec: JSON = {}
            for spec_number, _, spec_value in iter_fields(_bytes(value)):
                if spec_number == 1:
                    spec.setdefault("audiences", []).append(_str(spec_value))
                elif spec_number == 3:
                    spec["boundObjectRef"] = _message(spec_value, _BOUND_OBJECT_REFERENCE)
                elif spec_number == 4:
                    spec["expirationSeconds"] = _int(spec_value)
            obj["spec"] = spec
    return obj


_DECODERS: Final[dict[tuple[str, str], Callable[[bytes], JSON]]] = {
    ("v1", "Secret"): _secret,
    ("v1", "ConfigMap"): _configmap,
    ("v1", "Namespace"): _namespace,
    ("v1", "ServiceAccount"): _serviceaccount,
    ("authentication.k8s.io/v1", "TokenRequest"): _token_request,
}


def decode_object(body: bytes) -> JSON:
    """Decode a ``k8s\\x00`` + ``runtime.Unknown`` body to the object's JSON form.

    Raises ``ValueError`` with a clear message for a malformed envelope, an encoded
    (``contentEncoding``) payload or a kind this decoder does not know.
    """
    if not body.startswith(MAGIC):
        raise ValueError("not a Kubernetes protobuf document (missing the k8s\\x00 prefix)")
    api_version = kind = encoding = ""
    raw = b""
    for number, _, value in iter_fields(body[len(MAGIC) :]):
        if number == 1:
            for meta_number, _, meta_value in iter_fields(_bytes(value)):
                if meta_number == 1:
                    api_version = _str(meta_value)
                elif meta_number == 2:
                    kind = _str(meta_value)
        elif number == 2:
            raw = _bytes(value)
        elif number == 3:
            encoding = _str(value)
    if encoding:
        raise ValueError(f"protobuf content encoding {encoding!r} is not supported")
    decoder = _DECODERS.get((api_version, kind))
    if decoder is None:
        raise ValueError(
            f"decoding {kind or 'an object'} ({api_version or 'no apiVersion'}) from protobuf "
            "is not supported; send JSON"
        )
    obj: JSON = {"kind": kind, "apiVersion": api_version}
    obj.update(decoder(raw))
    obj.setdefault("metadata", {})
    return obj
