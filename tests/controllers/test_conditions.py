"""Condition maths: lastTransitionTime moves only on a status flip; reasons are specific."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flokoa_controller.controllers.conditions import (
    FALSE,
    TRUE,
    UNKNOWN,
    Reason,
    Type,
    find_condition,
    format_time,
    is_camel_case,
    parse_time,
    set_condition,
    set_conditions,
)

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_new_condition_gets_now_as_transition_time() -> None:
    conds = set_condition([], Type.READY, TRUE, Reason.PROBE_SUCCEEDED, "ok", 3, T0)
    assert conds == [
        {
            "type": "Ready",
            "status": "True",
            "observedGeneration": 3,
            "lastTransitionTime": "2026-01-15T10:30:00Z",
            "reason": "ProbeSucceeded",
            "message": "ok",
        }
    ]


def test_transition_time_kept_when_status_unchanged() -> None:
    first = set_condition([], Type.READY, FALSE, Reason.TIMEOUT, "a", 1, T0)
    second = set_condition(first, Type.READY, FALSE, Reason.UNREACHABLE, "b", 2, T1)
    assert second[0]["lastTransitionTime"] == format_time(T0)
    assert second[0]["reason"] == "Unreachable"
    assert second[0]["message"] == "b"
    assert second[0]["observedGeneration"] == 2
    assert first[0]["reason"] == "Timeout", "the input must not be modified"


def test_transition_time_moves_on_flip() -> None:
    first = set_condition([], Type.READY, FALSE, Reason.TIMEOUT, "a", 1, T0)
    second = set_condition(first, Type.READY, TRUE, Reason.PROBE_SUCCEEDED, "b", 1, T1)
    assert second[0]["lastTransitionTime"] == format_time(T1)


def test_other_types_keep_order_and_new_types_append() -> None:
    conds = set_conditions(
        None,
        [
            (Type.READY, FALSE, Reason.SECRET_NOT_FOUND, "m"),
            (Type.SECRET_RESOLVED, FALSE, Reason.SECRET_NOT_FOUND, "m"),
        ],
        1,
        T0,
    )
    conds = set_condition(conds, Type.CREDENTIALS_VALID, UNKNOWN, Reason.NOT_PROBED, "m", 1, T1)
    assert [c["type"] for c in conds] == ["Ready", "SecretResolved", "CredentialsValid"]


def test_duplicate_entries_collapse() -> None:
    dup = [
        {"type": "Ready", "status": "True", "lastTransitionTime": "x", "reason": "A"},
        {"type": "Ready", "status": "False", "lastTransitionTime": "y", "reason": "B"},
    ]
    out = set_condition(dup, Type.READY, TRUE, Reason.PROBE_SUCCEEDED, "", 1, T1)
    assert len(out) == 1
    assert out[0]["lastTransitionTime"] == "x"


@pytest.mark.parametrize("reason", ["Ready", "not-camel", "", "lowerCase", "With Space"])
def test_rejects_bad_reasons(reason: str) -> None:
    with pytest.raises(ValueError, match="reason"):
        set_condition([], Type.READY, FALSE, reason, "", 1, T0)


def test_ready_true_may_not_use_ready_either_way_but_false_never() -> None:
    # "Ready" is CamelCase and fine on True; on False it is the peers' bug and refused.
    assert set_condition([], Type.READY, TRUE, "Ready", "", 1, T0)[0]["reason"] == "Ready"
    with pytest.raises(ValueError, match="other than"):
        set_condition([], Type.READY, UNKNOWN, "Ready", "", 1, T0)


def test_every_declared_reason_is_camel_case() -> None:
    reasons = [v for k, v in vars(Reason).items() if k.isupper()]
    assert len(reasons) > 20
    assert all(is_camel_case(r) for r in reasons), reasons
    assert "Ready" not in reasons, "a failure reason named after the Ready type says nothing"


def test_time_round_trip_and_garbage() -> None:
    assert parse_time(format_time(T0)) == T0
    assert parse_time("2026-01-15T10:30:00+02:00") == T0 - timedelta(hours=2)
    assert parse_time(None) is None
    assert parse_time("yesterday") is None
    assert parse_time(12) is None
    assert format_time(datetime(2026, 1, 15, 10, 30)) == "2026-01-15T10:30:00Z"


def test_find_condition_tolerates_garbage() -> None:
    assert find_condition("nope", "Ready") is None
    assert find_condition([1, "x", {"type": "Ready", "status": "True"}], "Ready") == {
        "type": "Ready",
        "status": "True",
    }


statuses = st.sampled_from([TRUE, FALSE, UNKNOWN])
reasons = st.sampled_from([Reason.TIMEOUT, Reason.PROBE_SUCCEEDED, Reason.INVALID_SECRET])


@given(st.lists(st.tuples(statuses, reasons), min_size=1, max_size=12))
def test_transition_time_changes_exactly_on_flips(steps: list[tuple[str, str]]) -> None:
    conds: list = []
    now = T0
    last_status = None
    expected_transition = None
    for status, reason in steps:
        now += timedelta(seconds=1)
        conds = set_condition(conds, Type.READY, status, reason, "", 1, now)  # type: ignore[arg-type]
        if status != last_status:
            expected_transition = format_time(now)
            last_status = status
        assert len(conds) == 1
        assert conds[0]["lastTransitionTime"] == expected_transition
