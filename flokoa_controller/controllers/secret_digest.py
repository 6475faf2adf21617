"""What the controllers keep of a Secret: SHA-256 digests of its values, never the values.

:func:`secret_to_digest` is the transform of the Secrets informer (``controllers/setup.py``
hands it to the runtime): a Secret becomes its metadata, ``type``, ``immutable`` and two
fields, ``digests`` (the SHA-256 of each decoded value, by key) and ``digest`` (one SHA-256
over every key and value digest). The runtime's floor
(:func:`~flokoa_controller.runtime.transform.strip_secret_payload`) then runs on the result,
as on every Secret. A controller sees *that* a Secret changed and which keys it has, which is
all the reconcilers need to notice a rotation and to tell a missing key from a present one;
the values are read from the API server only when a probe needs them
(``controllers/secrets.py``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

from flokoa_controller.runtime.transform import SECRET_PAYLOAD_FIELDS, strip_secret_payload

__all__ = [
    "DIGEST_FIELD",
    "OVERALL_DIGEST_KEY",
    "data_digests",
    "secret_data",
    "secret_to_digest",
]

DIGEST_FIELD = "digests"
"""Top-level field of a digested Secret: ``{key: sha256 hex}`` for each data key."""

OVERALL_DIGEST_KEY = "digest"
"""Top-level field of a digested Secret: one SHA-256 over every key and value digest."""


def _value_bytes(value: object) -> bytes:
    """The bytes of one ``data`` value (base64 as sent); undecodable text is hashed as is."""
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return value.encode()
    return repr(value).encode()


def secret_data(obj: Mapping[str, Any]) -> dict[str, object]:
    """A Secret's ``data`` with ``stringData`` folded in, as the API server does on write.

    ``stringData`` values override ``data`` keys of the same name (base64-encoded here, like
    ``data``). Malformed fields (not objects) count as empty, so a hand-made object cannot
    break a reader.
    """
    data = obj.get("data")
    values: dict[str, object] = (
        {str(k): v for k, v in data.items()} if isinstance(data, Mapping) else {}
    )
    string_data = obj.get("stringData")
    if isinstance(string_data, Mapping):
        for key, text in string_data.items():
            values[str(key)] = base64.b64encode(str(text).encode()).decode()
    return values


def data_digests(data: Mapping[str, object]) -> dict[str, str]:
    """Return ``{key: sha256 hex of the decoded value}`` for a Secret's ``data``."""
    return {key: hashlib.sha256(_value_bytes(value)).hexdigest() for key, value in data.items()}


def _overall_digest(digests: Mapping[str, str]) -> str:
    h = hashlib.sha256()
    for key in sorted(digests):
        h.update(key.encode())
        h.update(b"\0")
        h.update(digests[key].encode())
        h.update(b"\n")
    return h.hexdigest()


def secret_to_digest(obj: dict[str, Any]) -> dict[str, Any]:
    """Return a payload-free summary of a Secret (see the module docstring).

    ``stringData`` (only ever present in write requests) is folded in the way the API server
    does: it overrides ``data`` keys of the same name. Nothing of the values survives except
    their SHA-256 digests. An object that is already a digest is returned unchanged.
    """
    if DIGEST_FIELD in obj and not obj.keys() & SECRET_PAYLOAD_FIELDS:
        return obj
    digests = data_digests(secret_data(obj))
    out = strip_secret_payload(obj)
    out[DIGEST_FIELD] = digests
    out[OVERALL_DIGEST_KEY] = _overall_digest(digests)
    return out
