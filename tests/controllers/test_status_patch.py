"""status_patch: only differing managed fields, nulls for dropped ones, None when equal."""

from __future__ import annotations

from flokoa_controller.controllers.status import status_patch

MANAGED = ("ready", "conditions", "secretHash")


def test_equal_status_needs_no_write() -> None:
    current = {"ready": True, "conditions": [{"type": "Ready"}], "other": 1}
    assert (
        status_patch(current, {"ready": True, "conditions": [{"type": "Ready"}]}, MANAGED) is None
    )


def test_only_changed_fields_and_removals() -> None:
    current = {"ready": True, "secretHash": "a", "foreign": "x"}
    patch = status_patch(current, {"ready": False}, MANAGED)
    assert patch == {"ready": False, "secretHash": None}


def test_garbage_current_status() -> None:
    assert status_patch("nope", {"ready": False}, MANAGED) == {"ready": False}
    assert status_patch(None, {}, MANAGED) is None
