"""The informer's local cache: objects keyed ``namespace/name`` with named secondary indexes.

A :class:`Store` is a plain dictionary of (already transformed) objects plus, for each named
indexer, a reverse map ``index value -> set of keys``. Indexes are maintained on every add,
update and delete, so a lookup such as "every ModelProvider that references Secret ``ns/x``"
is a dictionary hit instead of a scan. The store is not thread-safe: it lives on one event
loop, and the informer is its only writer. Objects handed out are the stored dictionaries
themselves: treat them as read-only (copy before changing).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

__all__ = ["IndexFunc", "Store", "key_of", "namespace_index", "split_key"]

IndexFunc = Callable[[dict[str, Any]], Iterable[str]]
"""An indexer: the index values under which an object is filed (none, one or several)."""


def key_of(obj: Mapping[str, Any]) -> str:
    """Return the cache key of ``obj``: ``namespace/name``, or ``name`` when cluster-scoped."""
    metadata = obj.get("metadata") or {}
    name = metadata.get("name")
    if not name:
        raise ValueError("object has no metadata.name")
    namespace = metadata.get("namespace")
    return f"{namespace}/{name}" if namespace else str(name)


def split_key(key: str) -> tuple[str | None, str]:
    """Split a cache key into ``(namespace, name)``; the namespace is ``None`` if absent."""
    namespace, sep, name = key.partition("/")
    return (namespace, name) if sep else (None, namespace)


def namespace_index(obj: dict[str, Any]) -> list[str]:
    """Index function filing an object under its namespace (client-go's ``namespace`` index)."""
    namespace = (obj.get("metadata") or {}).get("namespace")
    return [namespace] if namespace else []


class Store:
    """Objects keyed by :func:`key_of`, with named indexes kept up to date on every change."""

    def __init__(self, indexers: Mapping[str, IndexFunc] | None = None) -> None:
        """Create an empty store with the given named indexers."""
        self._items: dict[str, dict[str, Any]] = {}
        self._indexers: dict[str, IndexFunc] = {}
        # index name -> index value -> keys; and key -> index name -> values (for removal)
        self._indices: dict[str, dict[str, set[str]]] = {}
        self._filed: dict[str, dict[str, tuple[str, ...]]] = {}
        self.add_indexers(indexers or {})

    # -- indexes -------------------------------------------------------------------------

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Add named indexers and index the objects already stored under them.

        Adding an indexer under a name that exists with a different function is an error
        (two informer users would disagree on what the index means).
        """
        for name, func in indexers.items():
            existing = self._indexers.get(name)
            if existing is not None:
                if existing is not func:
                    raise ValueError(f"indexer {name!r} already exists with another function")
                continue
            self._indexers[name] = func
            self._indices[name] = {}
            for key, obj in self._items.items():
                self._file(name, func, key, obj)

    @property
    def indexer_names(self) -> list[str]:
        """Names of the indexers of this store."""
        return list(self._indexers)

    def _file(self, name: str, func: IndexFunc, key: str, obj: dict[str, Any]) -> None:
        values = tuple(dict.fromkeys(func(obj)))
        if not values:
            return
        self._filed.setdefault(key, {})[name] = values
        index = self._indices[name]
        for value in values:
            index.setdefault(value, set()).add(key)

    def _index(self, key: str, obj: dict[str, Any]) -> None:
        for name, func in self._indexers.items():
            self._file(name, func, key, obj)

    def _drop(self, name: str, key: str, values: tuple[str, ...]) -> None:
        index = self._indices[name]
        for value in values:
            keys = index.get(value)
            if keys is None:
                continue
            keys.discard(key)
            if not keys:
                del index[value]

    def _unindex(self, key: str) -> None:
        filed = self._filed.pop(key, None)
        if not filed:
            return
        for name, values in filed.items():
            self._drop(name, key, values)

    def _reindex(self, key: str, obj: dict[str, Any]) -> None:
        """Re-file an updated object; indexes whose values did not change are not touched
        (the common case: a status or metadata update)."""
        filed = self._filed.get(key)
        if filed is None:
            self._index(key, obj)
            return
        for name, func in self._indexers.items():
            values = tuple(dict.fromkeys(func(obj)))
            before = filed.get(name, ())
            if values == before:
                continue
            self._drop(name, key, before)
            if values:
                filed[name] = values
                index = self._indices[name]
                for value in values:
                    index.setdefault(value, set()).add(key)
            else:
                del filed[name]
        if not filed:
            del self._filed[key]

    def by_index(self, index: str, value: str) -> list[dict[str, Any]]:
        """Return the objects filed under ``value`` in the named index."""
        return [self._items[key] for key in sorted(self.index_keys(index, value))]

    def index_keys(self, index: str, value: str) -> set[str]:
        """Return the keys of the objects filed under ``value`` in the named index."""
        try:
            keys = self._indices[index].get(value)
        except KeyError:
            raise KeyError(f"no indexer named {index!r}") from None
        return set(keys) if keys else set()

    def index_values(self, index: str) -> list[str]:
        """Return every value present in the named index."""
        try:
            return list(self._indices[index])
        except KeyError:
            raise KeyError(f"no indexer named {index!r}") from None

    # -- objects -------------------------------------------------------------------------

    def add(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Insert or replace ``obj``; return the object it replaced, if any."""
        key = key_of(obj)
        old = self._items.get(key)
        self._items[key] = obj
        if old is None:
            self._index(key, obj)
        else:
            self._reindex(key, obj)
        return old

    update = add

    def delete(self, key: str) -> dict[str, Any] | None:
        """Remove the object under ``key``; return it (``None`` if absent)."""
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key)
        return old

    def get(self, key: str) -> dict[str, Any] | None:
        """Return the object under ``key``, or ``None``."""
        return self._items.get(key)

    def get_by(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """Return the object named ``name`` in ``namespace`` (``None`` for cluster-scoped)."""
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def list(self) -> list[dict[str, Any]]:
        """Return every stored object."""
        return list(self._items.values())

    def keys(self) -> builtins.list[str]:
        """Return every key."""
        return list(self._items)

    def items(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Iterate over ``(key, object)`` pairs (do not change the store meanwhile)."""
        return iter(self._items.items())

    def __len__(self) -> int:
        """Number of stored objects."""
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is stored."""
        return key in self._items

    def replace(
        self, objs: Iterable[dict[str, Any]], *, namespace: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """Make the store hold exactly ``objs`` (a relist); return the removed objects by key.

        With ``namespace``, only that namespace's objects are replaced: a store shared by one
        reflector per namespace relists one namespace at a time.
        """
        fresh: dict[str, dict[str, Any]] = {key_of(obj): obj for obj in objs}
        if namespace is None:
            stale = [key for key in self._items if key not in fresh]
        else:
            prefix = namespace + "/"
            stale = [key for key in self._items if key.startswith(prefix) and key not in fresh]
        removed: dict[str, dict[str, Any]] = {}
        for key in stale:
            old = self.delete(key)
            if old is not None:
                removed[key] = old
        for obj in fresh.values():
            self.add(obj)
        return removed
