"""Shared fixtures of the operator's tests.

``envtest``, ``cluster``, ``kubectl`` and ``make_kubectl`` come from envtest's pytest plugin
(:mod:`flokoa_envtest.pytest_plugin`); here ``cluster`` is given the project's CRDs
(``config/crd``), and ``hermetic_env`` keeps the host's cloud and proxy settings out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from flokoa_envtest.pytest_plugin import crds_in
from flokoa_envtest.testing import closed_port

REPO = Path(__file__).resolve().parent.parent
CRD_DIR = REPO / "config" / "crd"


@pytest.fixture
def envtest_crds() -> list[dict[str, Any]]:
    """``cluster`` (of :mod:`flokoa_envtest.pytest_plugin`) installs the project's CRDs."""
    return crds_in(CRD_DIR)


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
