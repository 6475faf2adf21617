"""Predicates: which informer events a controller's watch lets through.

As controller-runtime's ``predicate.Funcs``: a :class:`Predicate` answers, per event kind,
whether the event should reach the controller's mapper and queue. A watch with several
predicates enqueues only what all of them let through. An event filtered out costs no
enqueue and no reconcile; a predicate must therefore only drop events that carry nothing a
reconcile has not already acted on (for example the echo of the controller's own status
write, see ``controllers.status.StatusWriter.is_own_write``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from flokoa_controller.runtime.informer import DeletedFinalStateUnknown

__all__ = ["Predicate", "allows_create", "allows_delete", "allows_update"]

Obj = dict[str, Any]


def _always(_obj: Any) -> bool:
    return True


def _always_update(_old: Obj, _new: Obj) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Predicate:
    """Per event kind, whether an event passes (every kind passes unless given)."""

    create: Callable[[Obj], bool] = _always
    """``create(obj)``: an added object (initial list included)."""
    update: Callable[[Obj, Obj], bool] = _always_update
    """``update(old, new)``: a changed object."""
    delete: Callable[[Obj | DeletedFinalStateUnknown], bool] = _always
    """``delete(obj)``: a deleted object or its tombstone."""


def allows_create(predicates: Sequence[Predicate], obj: Obj) -> bool:
    """Whether every predicate lets the add of ``obj`` through."""
    return all(p.create(obj) for p in predicates)


def allows_update(predicates: Sequence[Predicate], old: Obj, new: Obj) -> bool:
    """Whether every predicate lets the update ``old`` → ``new`` through."""
    return all(p.update(old, new) for p in predicates)


def allows_delete(predicates: Sequence[Predicate], obj: Obj | DeletedFinalStateUnknown) -> bool:
    """Whether every predicate lets the delete of ``obj`` through."""
    return all(p.delete(obj) for p in predicates)
