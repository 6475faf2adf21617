"""Fixtures of envtest's own tests: those of :mod:`flokoa_envtest.pytest_plugin`, with the
repository's CRDs (``config/crd``: CEL rules, printer columns, status subresources that the
recorded kube-apiserver answers exercise) installed by ``cluster``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flokoa_envtest.pytest_plugin import crds_in

CRD_DIR = Path(__file__).resolve().parents[2] / "config" / "crd"


@pytest.fixture
def envtest_crds() -> list[dict[str, Any]]:
    """``cluster`` installs the repository's CRDs."""
    return crds_in(CRD_DIR)
