"""Pure pieces of envtest: selectors, patches, storage history, request parsing, Go texts."""

from __future__ import annotations

import pytest
from flokoa_envtest.errors import StatusError
from flokoa_envtest.gocodec import base64_error, json_syntax_error, parse_int_error
from flokoa_envtest.handlers import negotiate_output, parse_request
from flokoa_envtest.patch import (
    MERGE_BY_VALUE,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from flokoa_envtest.resources import version_priority
from flokoa_envtest.selectors import (
    EVENT_FIELDS,
    parse_field_selector,
    parse_label_selector,
)
from flokoa_envtest.storage import Storage


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("a=1", {"a": "1"}, True),
        ("a==1", {"a": "2"}, False),
        ("a!=1", {}, True),
        ("a in (1, 2)", {"a": "2"}, True),
        ("a notin (1,2)", {"a": "3"}, True),
        ("a notin (1,2)", {}, True),
        ("a", {"a": ""}, True),
        ("!a", {"a": ""}, False),
        ("a=1,b in (x),!c", {"a": "1", "b": "x"}, True),
        ("example.com/tier=web", {"example.com/tier": "web"}, True),
        ("", {}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(selector).matches(labels) is expected


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a in (", "unable to parse requirement: found '', expected: ',', ')' or identifier"),
        ("=x", "found '=', expected: !, identifier, or 'end of string'"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a,", "found '', expected: identifier after ','"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("a=(", "unable to parse requirement: found '(', expected: identifier"),
        ("a ~ b", "unable to parse requirement: found '~', expected: in, notin, =, ==, !=, gt, lt"),
        (
            "a=" + "v" * 64,
            "unable to parse requirement: values[0][a]: Invalid value: "
            f'"{"v" * 64}": must be no more than 63 characters',
        ),
    ],
)
def test_malformed_label_selectors_are_400(bad: str, message: str) -> None:
    # kube's labels parser wording (k8s.io/apimachinery/pkg/labels), as kube-apiserver answers
    with pytest.raises(StatusError) as exc:
        parse_label_selector(bad)
    assert exc.value.code == 400
    assert exc.value.body["message"] == message


def test_label_selector_edge_cases_kube_accepts() -> None:
    # "()" is the set of the empty value; gt/lt compare integers
    assert parse_label_selector("a in ()").matches({"a": ""})
    assert not parse_label_selector("a in ()").matches({"a": "x"})
    assert parse_label_selector("n>3").matches({"n": "4"})
    assert not parse_label_selector("n<3").matches({"n": "x"})


def test_field_selectors() -> None:
    event = {"metadata": {"name": "e", "namespace": "ns"}, "involvedObject": {"uid": "u,1"}}
    sel = parse_field_selector(r"involvedObject.uid=u\,1,metadata.name!=x", EVENT_FIELDS)
    assert sel.matches(event)
    assert not parse_field_selector("involvedObject.kind=Pod", EVENT_FIELDS).matches(event)
    assert parse_field_selector("metadata.name=e", EVENT_FIELDS).single_name() == "e"
    with pytest.raises(StatusError):
        parse_field_selector("spec.nodeName=x", EVENT_FIELDS)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("a=b!=c", "invalid field selector: unescaped character in value: 61"),
        ("metadata.name=a\\q", "invalid field selector: invalid escape sequence: \\q"),
        # terms are parsed sorted, then checked against the resource's fields; no trimming
        ("x=1,metadata.name=y", "field label not supported: x"),
        ("metadata.name =y", "field label not supported: metadata.name "),
    ],
)
def test_malformed_field_selectors_are_400(bad: str, message: str) -> None:
    # kube's fields.ParseSelector wording (k8s.io/apimachinery/pkg/fields)
    with pytest.raises(StatusError) as exc:
        parse_field_selector(bad, EVENT_FIELDS)
    assert exc.value.code == 400
    assert exc.value.body["message"] == message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "invalid character 'n' looking for beginning of object key string"),
        (b'{"a" 1}', "invalid character '1' after object key"),
        (b'{"a":1 "b"}', "invalid character '\"' after object key:value pair"),
        (b"[1,]", "invalid character ']' looking for beginning of value"),
        (b"[1 2]", "invalid character '2' after array element"),
        (b"tru", "unexpected end of JSON input"),
        (b"trux", "invalid character 'x' in literal true (expecting 'e')"),
        (b"-x", "invalid character 'x' in numeric literal"),
        (b"1.e", "invalid character 'e' after decimal point in numeric literal"),
        (b'"\\q"', "invalid character 'q' in string escape code"),
        (b"{} {}", "invalid character '{' after top-level value"),
        (b"\x81", "invalid character '\\u0081' looking for beginning of value"),
        (b'{"a": [1, {"b": null}]}', None),
    ],
)
def test_go_json_syntax_errors(data: bytes, message: str | None) -> None:
    assert json_syntax_error(data) == message


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("c2stdGVzdA==", None),
        ("not base64!", 3),
        ("abc", 0),
        ("ab=c", 2),
        ("YQ=", 3),
        ("YQ==YQ==", 4),
        ("YWJj\nZGVm", None),
    ],
)
def test_go_base64_offsets(text: str, offset: int | None) -> None:
    expected = None if offset is None else f"illegal base64 data at input byte {offset}"
    assert base64_error(text) == expected


def test_go_parse_int() -> None:
    assert parse_int_error("x") == 'strconv.ParseInt: parsing "x": invalid syntax'
    assert parse_int_error("99999999999999999999") == (
        'strconv.ParseInt: parsing "99999999999999999999": value out of range'
    )
    assert parse_int_error("-12") is None


def test_merge_patch_rfc7386() -> None:
    target = {"a": {"b": 1, "c": 2}, "l": [1, 2], "d": 1}
    assert merge_patch(target, {"a": {"b": None, "e": 3}, "l": [3], "d": None}) == {
        "a": {"c": 2, "e": 3},
        "l": [3],
    }
    assert target["a"] == {"b": 1, "c": 2}  # not modified


def test_json_patch_operations() -> None:
    doc = {"a": [1, 2], "b": {"c": 1}}
    ops = [
        {"op": "add", "path": "/a/-", "value": 3},
        {"op": "move", "from": "/b/c", "path": "/d"},
        {"op": "copy", "from": "/d", "path": "/e"},
        {"op": "replace", "path": "/a/0", "value": 0},
        {"op": "remove", "path": "/b"},
        {"op": "test", "path": "/e", "value": 1},
    ]
    assert json_patch(doc, ops) == {"a": [0, 2, 3], "d": 1, "e": 1}
    with pytest.raises(StatusError) as exc:
        json_patch(doc, [{"op": "remove", "path": "/missing"}])
    assert exc.value.code == 422
    with pytest.raises(StatusError) as exc:
        json_patch(doc, {"op": "add"})
    assert exc.value.code == 400


def test_strategic_merge_patch_directives() -> None:
    strategies = {"items": "name", "tags": MERGE_BY_VALUE}
    target = {"items": [{"name": "a", "v": 1}, {"name": "b", "v": 2}], "tags": ["x"], "m": {"k": 1}}
    result = strategic_merge_patch(
        target,
        {
            "items": [{"name": "b", "v": 3}, {"name": "c"}, {"name": "a", "$patch": "delete"}],
            "tags": ["y", "x"],
            "m": {"$patch": "replace", "z": 2},
            "$setElementOrder/items": [{"name": "c"}, {"name": "b"}],
        },
        strategies,
    )
    assert result == {
        "items": [{"name": "c"}, {"name": "b", "v": 3}],
        "tags": ["x", "y"],
        "m": {"z": 2},
    }
    replaced = strategic_merge_patch(
        target, {"items": [{"$patch": "replace"}, {"name": "z"}]}, strategies
    )
    assert replaced["items"] == [{"name": "z"}]
    retained = strategic_merge_patch({"a": 1, "b": 2}, {"$retainKeys": ["b"], "b": 3}, {})
    assert retained == {"b": 3}


def test_storage_history_window_and_snapshots() -> None:
    storage = Storage(history_limit=4)
    records = [storage.put("cm", f"ns/{i}", "ns", {"metadata": {"name": str(i)}}) for i in range(3)]
    snapshot_rv = storage.rv
    storage.put("cm", "ns/1", "ns", {"metadata": {"name": "1", "labels": {"x": "y"}}})
    storage.remove("cm", "ns/2", "ns")
    then = [
        rec.obj["metadata"].get("labels")
        for _, rec in storage.iterate("cm", "ns", at_rv=snapshot_rv)
    ]
    assert then == [None, None, None]
    now = [key for key, _ in storage.iterate("cm", "ns")]
    assert now == ["ns/0", "ns/1"]
    assert [c.type for c in storage.changes_since("cm", records[0].rv)] == [
        "ADDED", "ADDED", "MODIFIED", "DELETED"
    ]  # fmt: skip
    for i in range(10):
        storage.put("cm", "ns/0", "ns", {"metadata": {"name": "0"}, "data": {"i": str(i)}})
    with pytest.raises(StatusError) as exc:
        storage.changes_since("cm", snapshot_rv)
    assert exc.value.code == 410
    assert len(storage.changes_since("cm", storage.rv - 3)) == 3
    assert storage.namespace_counts == {"ns": 2}


def test_keys_sort_like_etcd() -> None:
    storage = Storage()
    for ns in ("a", "a-b", "b"):
        storage.put("cm", f"{ns}/x", ns, {"metadata": {"name": "x", "namespace": ns}})
    assert [k for k, _ in storage.iterate("cm")] == ["a-b/x", "a/x", "b/x"]
    assert [k for k, _ in storage.iterate("cm", "a")] == ["a/x"]


def test_request_parsing_like_kube() -> None:
    q: dict[str, str] = {}
    ns_status = parse_request("PUT", "/api/v1/namespaces/foo/status", q)
    assert (ns_status.resource, ns_status.name, ns_status.subresource, ns_status.verb) == (
        "namespaces", "foo", "status", "update"
    )  # fmt: skip
    listing = parse_request("GET", "/apis/g.io/v1/namespaces/ns/things", {"watch": "true"})
    assert (listing.group, listing.namespace, listing.resource, listing.verb) == (
        "g.io", "ns", "things", "watch"
    )  # fmt: skip
    legacy = parse_request("GET", "/api/v1/watch/namespaces/ns/configmaps/x", q)
    assert (legacy.verb, legacy.name) == ("watch", "x")
    assert parse_request("DELETE", "/api/v1/namespaces/ns/secrets", q).verb == "deletecollection"
    assert not parse_request("GET", "/version", q).is_resource


def test_accept_negotiation() -> None:
    kubectl = (
        "application/json;as=Table;v=v1;g=meta.k8s.io,"
        "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    )
    assert negotiate_output(kubectl) == ("table", "v1")
    assert negotiate_output("application/json") == ("json", "")
    assert negotiate_output("application/vnd.kubernetes.protobuf,application/json") == ("json", "")
    assert negotiate_output("") == ("json", "")


def test_version_priority_order() -> None:
    versions = ["v1alpha1", "v2", "foo", "v1beta2", "v1", "v1beta1", "v10"]
    assert sorted(versions, key=version_priority) == [
        "v10", "v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"
    ]  # fmt: skip
