"""Shared fixtures: an envtest API server, a backend-agnostic ``cluster``, the real kubectl.

* ``envtest`` — a bare :class:`APIServer` (built-ins only), function scope, stopped after.
* ``cluster`` — the cluster under test: the kubeconfig in ``$FLOKOA_TEST_KUBECONFIG`` (a real
  cluster; ``cluster.api`` is None) or else an envtest with the project's CRDs
  (``config/crd``) installed and established.
* ``kubectl`` — runs the real kubectl against ``cluster`` with a fresh ``KUBECACHEDIR``;
  skipped when kubectl is absent, unless ``FLOKOA_REQUIRE_TOOLS=1`` (then it fails).
* ``make_kubectl(kubeconfig)`` — the same for any kubeconfig.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from flokoa_controller.envtest import APIServer
from flokoa_controller.envtest.server import load_manifests
from flokoa_controller.envtest.testing import Cluster, Kubectl, closed_port, require_tool

REPO = Path(__file__).resolve().parent.parent
CRD_DIR = REPO / "config" / "crd"


def project_crds() -> list[dict[str, object]]:
    """The CustomResourceDefinitions in ``config/crd``."""
    if not CRD_DIR.is_dir():
        return []
    return [m for m in load_manifests([CRD_DIR]) if m.get("kind") == "CustomResourceDefinition"]


@pytest.fixture
async def envtest() -> AsyncIterator[APIServer]:
    """A running envtest API server with only the built-in resources."""
    async with APIServer() as api:
        yield api


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    """``$FLOKOA_TEST_KUBECONFIG``'s cluster, or an envtest with the project's CRDs."""
    kubeconfig = os.environ.get("FLOKOA_TEST_KUBECONFIG")
    if kubeconfig:
        yield Cluster(Path(kubeconfig), None)
        return
    crds = project_crds()
    async with APIServer(crds=crds) as api:
        for crd in crds:
            metadata = crd["metadata"]
            assert isinstance(metadata, dict)
            await api.wait_established(str(metadata["name"]))
        yield Cluster(api.kubeconfig_path, api)


MakeKubectl = Callable[[Path], Kubectl]


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


_SCRUBBED_PREFIXES = ("AWS_", "GOOGLE_", "GCE_", "BOTO_")
_SCRUBBED = {
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "CLOUDSDK_CONFIG",
    "CLOUDSDK_CORE_PROJECT",
}


@pytest.fixture
def hermetic_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No proxies, AWS or Google settings from the host; ambient identities lead nowhere."""
    from google.auth.compute_engine import _metadata

    for name in list(os.environ):
        if name.upper() in _SCRUBBED or name.upper().startswith(_SCRUBBED_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    nowhere = f"127.0.0.1:{closed_port()}"
    monkeypatch.setenv("GCE_METADATA_IP", nowhere)
    monkeypatch.setenv("GCE_METADATA_HOST", nowhere)
    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", nowhere)  # read at import time
