"""Hostile Secret contents end in a specific reason, never in a reconcile that raises.

A namespace user writes the Secret; a service-account key is parsed as JSON, and Python's
`json` raises `RecursionError` (not `ValueError`) on deep nesting — a 100 KB Secret of
`[` is enough.
"""

from __future__ import annotations

from flokoa_controller.controllers.setup import ControllerSettings

from .conftest import MakeOperator


async def test_deeply_nested_service_account_key_is_an_invalid_secret(
    operator: MakeOperator,
) -> None:
    async with operator(ControllerSettings()) as op:
        await op.put_secret("sa", {"credentials.json": "[" * 100_000})
        await op.put_provider(
            "nested",
            {
                "google": {
                    "vertex": {
                        "projectID": "my-project-123",
                        "location": "us-central1",
                        "serviceAccountKeySecretRef": {"name": "sa"},
                    }
                }
            },
        )
        ready = await op.wait_ready_reason("nested", "InvalidSecret")
    assert "is not a JSON service-account key" in str(ready["message"]), ready
