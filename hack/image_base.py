"""A Debian base image made locally with debootstrap, for building the image without a registry.

``python hack/image_base.py`` prints the tag of the base (building it on first use), so that

    make image BASE_IMAGE=$(.venv/bin/python hack/image_base.py)

builds the operator's image where no registry can be pulled from (tests/packaging/test_image.py
does the same). The base is Debian bookworm ``minbase`` plus python3, its venv module and the
CA certificates, from the Debian mirror this machine's apt uses; apt's package lists and
downloaded .debs are removed. It is imported into podman's image store under a tag that names
the recipe (:data:`RECIPE`), and reused from there: later runs cost nothing.

Needs root (debootstrap), podman, and the settings of hack/containers.conf on machines without
systemd (:func:`podman_env` points ``CONTAINERS_CONF`` at it unless already set).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONTAINERS_CONF = REPO / "hack" / "containers.conf"

SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
RECIPE = f"debootstrap --variant=minbase --include={','.join(PACKAGES)} {SUITE}; apt lists dropped"
"""What the base is made of; its hash is part of the tag, so a changed recipe makes a new base."""

DEFAULT_MIRROR = "http://deb.debian.org/debian"
SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))


class BaseUnavailable(RuntimeError):
    """The base cannot be made here (not root, no debootstrap or podman, no mirror)."""


def podman_env() -> dict[str, str]:
    """The environment for podman: ``CONTAINERS_CONF`` set to hack/containers.conf unless the
    caller chose one."""
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    return env


def mirror() -> str:
    """The Debian archive apt uses on this machine (not the security archive)."""
    for path in SOURCES:
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            words = line.split()
            if path.suffix == ".sources" and words[:1] == ["URIs:"]:
                uris = [u for u in words[1:] if "security" not in u]
                if uris:
                    return uris[0]
            if path.suffix == ".list" and words[:1] == ["deb"]:
                uri = next((w for w in words[1:] if "://" in w), "")
                if uri and "security" not in uri:
                    return uri
    return DEFAULT_MIRROR


def base_tag() -> str:
    """The podman tag of the base made by :data:`RECIPE`."""
    digest = hashlib.sha256(RECIPE.encode()).hexdigest()[:12]
    return f"localhost/flokoa-base:{SUITE}-{digest}"


def _run(args: list[str], env: dict[str, str], timeout: float) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-3000:]
        raise BaseUnavailable(f"{' '.join(args[:3])}... failed ({result.returncode}):\n{tail}")


def ensure_base(podman: str = "podman") -> str:
    """The tag of the base image, made with debootstrap and imported when absent."""
    env = podman_env()
    tag = base_tag()
    exists = subprocess.run(
        [podman, "image", "exists", tag], env=env, capture_output=True, timeout=60
    )
    if exists.returncode == 0:
        return tag
    debootstrap = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin")
    if debootstrap is None:
        raise BaseUnavailable("debootstrap is not installed")
    if os.geteuid() != 0:
        raise BaseUnavailable("debootstrap needs root")
    with tempfile.TemporaryDirectory(prefix="flokoa-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _run(
            [
                debootstrap,
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(rootfs),
                mirror(),
            ],
            env,
            timeout=1200,
        )
        for leftovers in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / leftovers).glob("*"):
                if entry.is_file():
                    entry.unlink()
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE
        )
        try:
            imported = subprocess.run(
                [podman, "import", "--quiet", "-", tag],
                stdin=tar.stdout,
                capture_output=True,
                text=True,
                env=env,
                timeout=600,
            )
        finally:
            if tar.stdout is not None:
                tar.stdout.close()
            tar.wait(timeout=600)
        if imported.returncode != 0 or tar.returncode != 0:
            raise BaseUnavailable(f"podman import failed: {imported.stderr[-2000:]}")
    return tag


def main() -> int:
    """Print the base's tag (exit 1 with the reason when it cannot be made)."""
    try:
        print(ensure_base())
    except BaseUnavailable as exc:
        print(f"no base image: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
