"""pytest fixtures of envtest, loaded by pytest wherever ``flokoa-envtest`` is installed.

* ``envtest`` — a bare :class:`APIServer` (built-ins only), function scope, stopped after.
* ``envtest_crds`` — the CustomResourceDefinitions ``cluster`` installs; none unless a
  ``conftest.py`` overrides it (the repository's test suites return ``config/crd``).
* ``cluster`` — the cluster under test: the kubeconfig in ``$FLOKOA_TEST_KUBECONFIG`` (a real
  cluster; ``cluster.api`` is None) or else an envtest with ``envtest_crds`` installed and
  established.
* ``kubectl`` — runs the real kubectl against ``cluster`` with a fresh ``KUBECACHEDIR``;
  skipped when kubectl is absent, unless ``FLOKOA_REQUIRE_TOOLS=1`` (then it fails).
* ``make_kubectl(kubeconfig)`` — the same for any kubeconfig.

Registered through the ``pytest11`` entry point of the ``flokoa-envtest`` distribution.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from flokoa_envtest.server import APIServer, load_manifests
from flokoa_envtest.testing import Cluster, Kubectl, MakeKubectl, require_tool

__all__ = ["crds_in"]


def crds_in(directory: Path) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions among the manifests in ``directory`` (none if absent)."""
    if not directory.is_dir():
        return []
    return [m for m in load_manifests([directory]) if m.get("kind") == "CustomResourceDefinition"]


@pytest.fixture
async def envtest() -> AsyncIterator[APIServer]:
    """A running envtest API server with only the built-in resources."""
    async with APIServer() as api:
        yield api


@pytest.fixture
def envtest_crds() -> list[dict[str, Any]]:
    """The CRDs ``cluster`` installs in its envtest (override in a ``conftest.py``)."""
    return []


@pytest.fixture
async def cluster(envtest_crds: list[dict[str, Any]]) -> AsyncIterator[Cluster]:
    """``$FLOKOA_TEST_KUBECONFIG``'s cluster, or an envtest with ``envtest_crds``."""
    kubeconfig = os.environ.get("FLOKOA_TEST_KUBECONFIG")
    if kubeconfig:
        yield Cluster(Path(kubeconfig), None)
        return
    async with APIServer(crds=envtest_crds) as api:
        for crd in envtest_crds:
            metadata = crd["metadata"]
            assert isinstance(metadata, dict)
            await api.wait_established(str(metadata["name"]))
        yield Cluster(api.kubeconfig_path, api)


@pytest.fixture
async def make_kubectl(tmp_path: Path) -> AsyncIterator[MakeKubectl]:
    """``make_kubectl(kubeconfig)``: a :class:`Kubectl` with its own cache directory."""
    binary = require_tool("kubectl")
    made: list[Kubectl] = []

    def make(kubeconfig: Path) -> Kubectl:
        k = Kubectl(kubeconfig, tmp_path / f"kubecache-{len(made)}", binary=binary)
        made.append(k)
        return k

    yield make
    for k in made:
        await k.aclose()


@pytest.fixture
def kubectl(cluster: Cluster, make_kubectl: MakeKubectl) -> Kubectl:
    """The real kubectl pointed at ``cluster`` (fresh discovery cache)."""
    return make_kubectl(cluster.kubeconfig_path)
