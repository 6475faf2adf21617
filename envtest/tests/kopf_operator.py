"""A small kopf operator that ``test_kopf.py`` runs with ``kopf run`` against envtest.

kopf is a real client nobody here wrote: if envtest differs from kube-apiserver in what kopf
relies on (discovery, list+watch or streaming lists, bookmarks, merge and JSON patches with a
``test`` op, the status subresource, finalizers, core/v1 Events), this operator stalls and the
test's deadlines fail. ``KOPF_TEST_STREAMING=1`` makes kopf use streaming lists.
"""

from __future__ import annotations

import os
from typing import Any

import kopf

GROUP, VERSION, PLURAL = "agent.flokoa.ai", "v1alpha1", "modelproviders"
ANNOTATION_UPDATED = "kopf-test/updated"
ANNOTATION_SEEN = "kopf-test/seen"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Short server-side watch timeouts (resumption is exercised), optional streaming lists."""
    settings.watching.server_timeout = 4
    settings.watching.initial_streaming = os.environ.get("KOPF_TEST_STREAMING") == "1"
    settings.posting.enabled = True


@kopf.on.create(GROUP, VERSION, PLURAL)
def created(body: kopf.Body, patch: kopf.Patch, retry: int, **_: Any) -> None:
    """Fail the first attempt: kopf must persist its progress (annotations) to retry."""
    if retry == 0:
        raise kopf.TemporaryError("the first attempt fails on purpose", delay=0.2)
    patch.status["provider"] = "openai"
    patch.status["secretHash"] = f"kopf-retry-{retry}"
    kopf.info(body, reason="KopfCreated", message="the create handler ran")


@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def updated(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """Record the new base URL in an annotation and mark the object ready."""
    patch.metadata.annotations[ANNOTATION_UPDATED] = str(body["spec"]["openai"].get("baseURL"))
    patch.status["ready"] = True


@kopf.on.delete(GROUP, VERSION, PLURAL)
def deleted(body: kopf.Body, **_: Any) -> None:
    """Runs while kopf's finalizer holds the object; kopf then removes the finalizer."""
    kopf.info(body, reason="KopfDeleted", message="the delete handler ran")


@kopf.on.event("", "v1", "secrets")
def secret_event(type: str | None, body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """Annotate every Secret with the first event type seen and post an Event about it."""
    if body.metadata.annotations.get(ANNOTATION_SEEN) is None:
        patch.metadata.annotations[ANNOTATION_SEEN] = str(type)
        kopf.info(body, reason="KopfSecretEvent", message=f"saw {type}")
