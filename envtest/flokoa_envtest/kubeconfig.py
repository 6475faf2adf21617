"""Kubeconfig files and throwaway TLS material for the envtest server."""

from __future__ import annotations

import base64
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme
import yaml


@dataclass(frozen=True)
class TLSMaterial:
    """A generated CA and a server certificate for 127.0.0.1 / localhost."""

    ca_pem: bytes
    ca_path: Path
    """The CA certificate on disk (what clients trust)."""
    server_context: ssl.SSLContext
    """The server side TLS context presenting the certificate."""


def make_tls(directory: Path, host: str) -> TLSMaterial:
    """Generate a CA and a certificate for ``host``, 127.0.0.1, ::1 and localhost."""
    ca = trustme.CA()
    names = sorted({host, "127.0.0.1", "::1", "localhost"})
    cert = ca.issue_cert(*names)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_pem = ca.cert_pem.bytes()
    ca_path = directory / "ca.crt"
    ca_path.write_bytes(ca_pem)
    return TLSMaterial(ca_pem=ca_pem, ca_path=ca_path, server_context=context)


def write_kubeconfig(
    path: Path,
    server: str,
    *,
    ca_pem: bytes | None = None,
    token: str | None = None,
    namespace: str = "default",
    name: str = "envtest",
) -> None:
    """Write a kubeconfig with one cluster, user and (current) context called ``name``."""
    cluster: dict[str, object] = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    user: dict[str, object] = {}
    if token is not None:
        user["token"] = token
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
        ],
        "current-context": name,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
