"""Store: keys, index maintenance on add/update/delete, scoped replace."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flokoa_controller.runtime.store import Store, key_of, namespace_index, split_key


def obj(name: str, namespace: str | None = "ns", rv: str = "1", **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "resourceVersion": rv, "labels": labels}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def by_secret(o: dict[str, Any]) -> list[str]:
    """Index objects by the comma-separated secrets in their `secrets` label."""
    value = o["metadata"]["labels"].get("secrets", "")
    ns = o["metadata"].get("namespace", "")
    return [f"{ns}/{s}" for s in value.split(".") if s]


def test_keys_namespaced_and_cluster_scoped() -> None:
    assert key_of(obj("a")) == "ns/a"
    assert key_of(obj("a", namespace=None)) == "a"
    assert split_key("ns/a") == ("ns", "a")
    assert split_key("a") == (None, "a")
    with pytest.raises(ValueError, match=r"no metadata\.name"):
        key_of({"metadata": {}})


def test_indexes_follow_add_update_delete() -> None:
    store = Store({"secret": by_secret, "namespace": namespace_index})
    store.add(obj("p1", secrets="s1.s2"))
    store.add(obj("p2", secrets="s2"))
    assert store.index_keys("secret", "ns/s2") == {"ns/p1", "ns/p2"}
    assert [o["metadata"]["name"] for o in store.by_index("secret", "ns/s1")] == ["p1"]

    old = store.update(obj("p1", rv="2", secrets="s3"))
    assert old is not None
    assert old["metadata"]["resourceVersion"] == "1"
    assert store.index_keys("secret", "ns/s1") == set()
    assert store.index_keys("secret", "ns/s2") == {"ns/p2"}
    assert store.index_keys("secret", "ns/s3") == {"ns/p1"}
    assert "ns/s1" not in store.index_values("secret")

    assert store.delete("ns/p2") is not None
    assert store.delete("ns/p2") is None
    assert store.index_keys("secret", "ns/s2") == set()
    assert store.index_keys("namespace", "ns") == {"ns/p1"}
    with pytest.raises(KeyError, match="no indexer"):
        store.by_index("missing", "x")


def test_indexer_added_late_indexes_existing_objects() -> None:
    store = Store()
    store.add(obj("p1", secrets="s1"))
    store.add_indexers({"secret": by_secret})
    assert store.index_keys("secret", "ns/s1") == {"ns/p1"}
    store.add_indexers({"secret": by_secret})  # same function again: no-op
    with pytest.raises(ValueError, match="already exists"):
        store.add_indexers({"secret": namespace_index})


def test_replace_returns_removed_and_reindexes() -> None:
    store = Store({"secret": by_secret})
    store.add(obj("a", secrets="s"))
    store.add(obj("b", secrets="s"))
    removed = store.replace([obj("b", rv="5"), obj("c", secrets="t")])
    assert set(removed) == {"ns/a"}
    assert sorted(store.keys()) == ["ns/b", "ns/c"]
    assert store.index_keys("secret", "ns/s") == set()
    assert store.index_keys("secret", "ns/t") == {"ns/c"}
    got = store.get("ns/b")
    assert got is not None
    assert got["metadata"]["resourceVersion"] == "5"
    assert store.get_by("b", "ns") is got
    assert len(store) == 2
    assert "ns/c" in store


def test_replace_scoped_to_one_namespace_keeps_the_others() -> None:
    store = Store()
    store.add(obj("a", namespace="one"))
    store.add(obj("b", namespace="two"))
    store.add(obj("c", namespace="one"))
    removed = store.replace([obj("c", namespace="one")], namespace="one")
    assert set(removed) == {"one/a"}
    assert sorted(store.keys()) == ["one/c", "two/b"]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["add", "delete"]),
            st.sampled_from(["p1", "p2", "p3"]),
            st.sampled_from(["", "s1", "s2", "s1.s2", "s2.s3", "s3.s3"]),
        ),
        max_size=30,
    )
)
def test_indexes_always_match_a_recomputation(ops: list[tuple[str, str, str]]) -> None:
    """Whatever the sequence of adds, updates (same, changed or emptied index values) and
    deletes, every index equals one computed from scratch over the stored objects."""
    store = Store({"secret": by_secret, "namespace": namespace_index})
    for op, name, secrets in ops:
        if op == "add":
            store.add(obj(name, secrets=secrets))
        else:
            store.delete(f"ns/{name}")
    for index, func in (("secret", by_secret), ("namespace", namespace_index)):
        expected: dict[str, set[str]] = {}
        for item in store.list():
            for value in func(item):
                expected.setdefault(value, set()).add(key_of(item))
        assert {v: store.index_keys(index, v) for v in store.index_values(index)} == expected
    assert set(store._filed) <= set(store.keys())  # no bookkeeping left for deleted keys
