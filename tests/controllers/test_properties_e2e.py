"""Property test through the cluster: whatever bytes a referenced Secret holds, the provider
ends in a specific reason for exactly those bytes (its secretHash), and its Model follows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from flokoa_controller.controllers.secret_digest import secret_to_digest
from flokoa_controller.controllers.secrets import Role, SecretKeyRef, resolve_from_cache

if TYPE_CHECKING:
    from conftest import Harness

REF = SecretKeyRef(Role.API_KEY, "k", "api-key", "spec.apiKeySecretRef")
REASONS = {"ProbeSucceeded", "InvalidCredentials", "InvalidSecret"}

values = st.one_of(
    st.binary(max_size=48),
    st.text(max_size=48).map(str.encode),
    st.sampled_from([b"VALID", b"VALID\n", b" VALID ", b"VALID\r\nX: y", b""]),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(value=values)
async def test_any_secret_bytes_end_in_a_specific_reason(harness: Harness, value: bytes) -> None:
    h = harness
    if h.provider("p") is None:
        await h.put_provider("p", h.openai_spec(secret="k"))
        await h.put_model("m", "p", "gpt-4o")
    value = value.replace(b"VALID", h.fakes.openai.api_key.encode())
    written = await h.put_secret("k", {"api-key": value})
    expected = resolve_from_cache(
        h.namespace, [REF], lambda ns, name: secret_to_digest(written)
    ).secret_hash

    def settled() -> dict | None:  # type: ignore[type-arg]
        obj = h.provider("p")
        ready = h.ready_condition(obj)
        if obj is None or ready is None or obj["status"].get("secretHash") != expected:
            return None
        return obj if ready["reason"] in REASONS else None

    obj = await h.wait_for(settled, what="provider status for these bytes")
    ready = h.ready_condition(obj)
    assert ready is not None
    event(ready["reason"])
    if ready["reason"] == "ProbeSucceeded":
        assert value.strip() == h.fakes.openai.api_key.encode()
        await h.wait_reason("model", "m", "ModelFound")
    else:
        await h.wait_reason("model", "m", "ProviderNotReady")
