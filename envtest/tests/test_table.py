"""Tables for ``kubectl get``: JSONPath, kubectl-style ages, column definitions and rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flokoa_envtest import jsonpath
from flokoa_envtest.table import build_table, human_duration

NOW = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


DURATIONS = [
    (timedelta(seconds=-2), "<invalid>"),
    (timedelta(seconds=-1), "0s"),
    (timedelta(0), "0s"),
    (timedelta(seconds=5), "5s"),
    (timedelta(seconds=119), "119s"),
    (timedelta(minutes=2), "2m"),
    (timedelta(minutes=3, seconds=2), "3m2s"),
    (timedelta(minutes=9, seconds=59), "9m59s"),
    (timedelta(minutes=10, seconds=30), "10m"),
    (timedelta(minutes=179), "179m"),
    (timedelta(hours=3), "3h"),
    (timedelta(hours=4, minutes=5), "4h5m"),
    (timedelta(hours=8, minutes=30), "8h"),
    (timedelta(hours=47), "47h"),
    (timedelta(days=2), "2d"),
    (timedelta(days=3, hours=4), "3d4h"),
    (timedelta(days=8), "8d"),
    (timedelta(days=729), "729d"),
    (timedelta(days=730), "2y"),
    (timedelta(days=800), "2y70d"),
    (timedelta(days=365 * 8), "8y"),
]


@pytest.mark.parametrize(("delta", "text"), DURATIONS)
def test_human_duration(delta: timedelta, text: str) -> None:
    assert human_duration(delta) == text


DOC = {
    "metadata": {"name": "p", "labels": {"app.kubernetes.io/name": "x"}},
    "spec": {"providerRef": {"name": "openai"}, "items": [{"n": 1}, {"n": 2}, {"n": 3}]},
    "status": {
        "ready": False,
        "conditions": [
            {"type": "Probed", "status": "True", "reason": "OK"},
            {"type": "Ready", "status": "False", "reason": "SecretNotFound"},
        ],
    },
}

PATHS: list[tuple[str, list[Any]]] = [
    (".status.ready", [False]),
    (".spec.providerRef.name", ["openai"]),
    ('.status.conditions[?(@.type=="Ready")].reason', ["SecretNotFound"]),
    (".status.conditions[?(@.type=='Probed')].status", ["True"]),
    ('.status.conditions[?(@.type!="Ready")].type', ["Probed"]),
    (".status.conditions[?(@.missing)].type", []),
    (".spec.items[0].n", [1]),
    (".spec.items[-1].n", [3]),
    (".spec.items[5].n", []),
    (".spec.items[*].n", [1, 2, 3]),
    (".spec.items[0:2].n", [1, 2]),
    (".spec.items[?(@.n > 1)].n", [2, 3]),
    ("..n", [1, 2, 3]),
    (".metadata.labels['app.kubernetes.io/name']", ["x"]),
    (".metadata.labels.app\\.kubernetes\\.io/name", ["x"]),
    (".status.absent", []),
    (".status.ready.deeper", []),
    ("{.metadata.name}", ["p"]),
    ("$.metadata.name", ["p"]),
]


@pytest.mark.parametrize(("path", "expected"), PATHS)
def test_jsonpath(path: str, expected: list[Any]) -> None:
    assert jsonpath.parse(path).find(DOC) == expected


def test_jsonpath_templates_render_like_kubectl() -> None:
    template = jsonpath.parse("{.metadata.name}: {.spec.items[*].n} {.status}")
    assert template.render(DOC).startswith("p: 1 2 3 {")


@pytest.mark.parametrize("bad", ["{.a", ".a[", ".a[?(x)]", ".a[x]"])
def test_jsonpath_errors(bad: str) -> None:
    with pytest.raises(jsonpath.JSONPathError):
        jsonpath.parse(bad)


MODEL_COLUMNS = [
    {"name": "Provider", "type": "string", "jsonPath": ".spec.providerRef.name"},
    {"name": "Ready", "type": "boolean", "jsonPath": ".status.ready"},
    {
        "name": "Reason",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
        "priority": 1,
    },
    {"name": "Replicas", "type": "integer", "jsonPath": ".status.replicas"},
    {"name": "Ratio", "type": "number", "jsonPath": ".status.ratio", "format": "float"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def custom(name: str, created: str, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "agent.flokoa.ai/v1alpha1",
        "kind": "Model",
        "metadata": {
            "name": name,
            "namespace": "default",
            "creationTimestamp": created,
            "uid": "u",
        },
        "spec": {"providerRef": {"name": "openai"}},
        "status": status,
    }


def test_custom_resource_table_uses_the_printer_columns() -> None:
    table = build_table(
        [
            custom(
                "a", ago(minutes=3, seconds=2), ready=True, replicas=2.0, ratio=1, conditions=[]
            ),
            custom("b", ago(days=2), ready="yes", replicas="x"),
        ],
        MODEL_COLUMNS,
        kind="Model",
        now=NOW,
        list_meta={"resourceVersion": "42"},
    )
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "42"}
    columns = table["columnDefinitions"]
    assert [c["name"] for c in columns] == [
        "Name",
        "Provider",
        "Ready",
        "Reason",
        "Replicas",
        "Ratio",
        "Age",
    ]
    assert columns[0] == {
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": columns[0]["description"],
        "priority": 0,
    }
    assert columns[0]["description"].startswith("Name must be unique within a namespace.")
    assert columns[3]["priority"] == 1
    assert columns[5]["format"] == "float"
    assert columns[1]["description"] == (
        "Custom resource definition column (in JSONPath format): .spec.providerRef.name"
    )
    assert [r["cells"] for r in table["rows"]] == [
        ["a", "openai", True, None, 2, 1.0, "3m2s"],
        ["b", "openai", None, None, None, None, "2d"],
    ]
    assert table["rows"][0]["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {
            "name": "a",
            "namespace": "default",
            "creationTimestamp": ago(minutes=3, seconds=2),
            "uid": "u",
        },
    }


def test_a_crd_without_printer_columns_gets_name_and_age() -> None:
    table = build_table([custom("a", ago(hours=5))], [], kind="Model", now=NOW)
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [
        ("Name", "string"),
        ("Age", "date"),
    ]
    assert table["rows"][0]["cells"] == ["a", "5h"]


def test_string_columns_print_json_values_like_kubectl() -> None:
    columns = [{"name": "Conditions", "type": "string", "jsonPath": ".status.conditions"},
               {"name": "Count", "type": "string", "jsonPath": ".status.count"}]  # fmt: skip
    table = build_table(
        [custom("a", ago(seconds=1), conditions=[{"type": "Ready"}], count=1.5)],
        columns,
        kind="Model",
        now=NOW,
    )
    assert table["rows"][0]["cells"] == ["a", '[{"type":"Ready"}]', "1.5"]


def test_bad_dates_render_invalid() -> None:
    table = build_table([custom("a", "yesterday")], [], kind="Model", now=NOW)
    assert table["rows"][0]["cells"] == ["a", "<invalid>"]


def test_include_object_and_headers_for_watch_events() -> None:
    item = custom("a", ago(seconds=5))
    full = build_table([item], [], kind="Model", now=NOW, include_object="Object")
    assert full["rows"][0]["object"] == item
    bare = build_table(
        [item], [], kind="Model", now=NOW, include_object="None", include_headers=False
    )
    assert bare["rows"][0]["object"] is None
    assert bare["columnDefinitions"] is None


BUILTINS: list[tuple[str, dict[str, Any], list[str], list[Any]]] = [
    (
        "Namespace",
        {
            "metadata": {"name": "default", "creationTimestamp": ago(days=3)},
            "status": {"phase": "Active"},
        },
        ["Name", "Status", "Age"],
        ["default", "Active", "3d"],
    ),
    (
        "Secret",
        {
            "metadata": {"name": "s", "creationTimestamp": ago(seconds=30)},
            "type": "Opaque",
            "data": {"a": "", "b": ""},
        },
        ["Name", "Type", "Data", "Age"],
        ["s", "Opaque", 2, "30s"],
    ),
    (
        "ConfigMap",
        {
            "metadata": {"name": "c", "creationTimestamp": ago(minutes=5)},
            "data": {"a": "1"},
            "binaryData": {"b": ""},
        },
        ["Name", "Data", "Age"],
        ["c", 2, "5m"],
    ),
    (
        "ServiceAccount",
        {"metadata": {"name": "default", "creationTimestamp": ago(hours=1)}},
        ["Name", "Secrets", "Age"],
        ["default", 0, "60m"],
    ),
    (
        "Lease",
        {
            "metadata": {"name": "leader", "creationTimestamp": ago(seconds=9)},
            "spec": {"holderIdentity": "pod-1"},
        },
        ["Name", "Holder", "Age"],
        ["leader", "pod-1", "9s"],
    ),
    (
        "CustomResourceDefinition",
        {
            "metadata": {
                "name": "models.agent.flokoa.ai",
                "creationTimestamp": "2026-01-01T10:00:00Z",
            }
        },
        ["Name", "Created At"],
        ["models.agent.flokoa.ai", "2026-01-01T10:00:00Z"],
    ),
    (
        "Event",
        {
            "apiVersion": "v1",
            "metadata": {"name": "p.1", "creationTimestamp": ago(minutes=4)},
            "involvedObject": {"kind": "ModelProvider", "name": "p", "fieldPath": ""},
            "reason": "SecretNotFound",
            "message": " secret missing \n",
            "type": "Warning",
            "firstTimestamp": ago(minutes=4),
            "lastTimestamp": ago(seconds=20),
            "count": 3,
            "source": {"component": "flokoa-controller"},
        },
        [
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "Subobject",
            "Source",
            "Message",
            "First Seen",
            "Count",
            "Name",
        ],
        [
            "20s",
            "Warning",
            "SecretNotFound",
            "modelprovider/p",
            "",
            "flokoa-controller",
            "secret missing",
            "4m",
            3,
            "p.1",
        ],
    ),
    (
        "Event",
        {
            "apiVersion": "events.k8s.io/v1",
            "metadata": {"name": "p.2", "creationTimestamp": ago(minutes=1)},
            "regarding": {"kind": "Model", "name": "m"},
            "reason": "Ready",
            "note": "ok",
            "type": "Normal",
            "eventTime": ago(seconds=50),
            "reportingController": "flokoa-controller",
            "reportingInstance": "pod-1",
        },
        [
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "Subobject",
            "Source",
            "Message",
            "First Seen",
            "Count",
            "Name",
        ],
        [
            "50s",
            "Normal",
            "Ready",
            "model/m",
            "",
            "flokoa-controller, pod-1",
            "ok",
            "50s",
            1,
            "p.2",
        ],
    ),
    (
        "Unknown",
        {"metadata": {"name": "z", "creationTimestamp": "2026-01-02T03:04:05Z"}},
        ["Name", "Created At"],
        ["z", "2026-01-02T03:04:05Z"],
    ),
]


@pytest.mark.parametrize(("kind", "item", "headers", "cells"), BUILTINS)
def test_builtin_tables(
    kind: str, item: dict[str, Any], headers: list[str], cells: list[Any]
) -> None:
    table = build_table([item], None, kind=kind, now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == headers
    assert table["rows"][0]["cells"] == cells
    for column in table["columnDefinitions"]:
        assert set(column) == {"name", "type", "format", "description", "priority"}


def test_event_priorities_hide_wide_columns() -> None:
    table = build_table([], None, kind="Event", now=NOW)
    wide = [c["name"] for c in table["columnDefinitions"] if c["priority"] == 1]
    assert wide == ["Subobject", "Source", "First Seen", "Count", "Name"]
    assert table["rows"] == []
