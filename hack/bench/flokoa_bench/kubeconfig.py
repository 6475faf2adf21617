"""Minimal kubeconfig reading and writing for the benchmark's own clients (not the operator's)."""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Endpoint:
    """Where an API server is and how to authenticate."""

    server: str
    token: str | None = None
    ssl_context: ssl.SSLContext | None = None

    @property
    def ssl_arg(self) -> ssl.SSLContext | bool:
        """The ``ssl`` argument for aiohttp requests."""
        return self.ssl_context if self.ssl_context is not None else True

    def headers(self, user_agent: str) -> dict[str, str]:
        """Request headers (User-Agent, Accept, Authorization when a token is set)."""
        out = {"User-Agent": user_agent, "Accept": "application/json"}
        if self.token:
            out["Authorization"] = f"Bearer {self.token}"
        return out


def load(path: str | Path) -> Endpoint:
    """The current context's server, token and TLS trust of the kubeconfig at ``path``."""
    doc: dict[str, Any] = yaml.safe_load(Path(path).read_text())
    current = doc.get("current-context")
    ctx = next(c["context"] for c in doc["contexts"] if c["name"] == current)
    cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
    user = next(
        (u.get("user") or {} for u in doc.get("users") or [] if u["name"] == ctx.get("user")), {}
    )
    context: ssl.SSLContext | None = None
    if str(cluster["server"]).startswith("https"):
        context = ssl.create_default_context()
        if cluster.get("insecure-skip-tls-verify"):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif cluster.get("certificate-authority-data"):
            pem = base64.b64decode(cluster["certificate-authority-data"]).decode()
            context.load_verify_locations(cadata=pem)
        elif cluster.get("certificate-authority"):
            context.load_verify_locations(cafile=cluster["certificate-authority"])
    return Endpoint(str(cluster["server"]).rstrip("/"), user.get("token"), context)


def write(path: Path, server: str, token: str | None = None) -> Path:
    """Write a kubeconfig for a plain-HTTP ``server`` (optionally with a bearer ``token``)."""
    user: dict[str, Any] = {"token": token} if token else {}
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "bench", "cluster": {"server": server}}],
        "users": [{"name": "bench", "user": user}],
        "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}],
        "current-context": "bench",
    }
    path.write_text(yaml.safe_dump(doc))
    return path
