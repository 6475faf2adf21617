"""Cluster connection settings, loaded with the `kubernetes` package's loaders.

Kubeconfig parsing, merging (`$KUBECONFIG` lists), context selection, relative paths and
`*-data` fields are the `kubernetes` package's (`KubeConfigMerger`, `KubeConfigLoader`,
`InClusterConfigLoader`); this module reads the resulting `kubernetes.client.Configuration`
and picks the `TokenSource` that keeps the credentials current.
"""

from __future__ import annotations

import os
import platform
import ssl
import tempfile
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from kubernetes.client import Configuration
from kubernetes.config import exec_provider, incluster_config, kube_config
from kubernetes.config.config_exception import ConfigException

from flokoa_controller import __version__
from flokoa_controller.kube.tokens import (
    ConfigurationTokenSource,
    ExecTokenSource,
    FileTokenSource,
    StaticTokenSource,
    TokenSource,
)

__all__ = [
    "DEFAULT_KUBECONFIG",
    "ClusterConfig",
    "ConfigError",
    "default_user_agent",
    "load_config",
    "load_incluster",
    "load_kubeconfig",
]

DEFAULT_KUBECONFIG = "~/.kube/config"
"""Kubeconfig used when neither a path nor `$KUBECONFIG` is given and not in a cluster."""

SERVICE_TOKEN_FILENAME: str = incluster_config.SERVICE_TOKEN_FILENAME
"""The service-account token mounted into every pod."""
SERVICE_CERT_FILENAME: str = incluster_config.SERVICE_CERT_FILENAME
"""The cluster CA bundle mounted into every pod."""
SERVICE_HOST_ENV_NAME: str = incluster_config.SERVICE_HOST_ENV_NAME
"""Environment variable whose presence means "running in a cluster"."""

# The kubernetes package's config loaders are untyped: they are used through `Any`.
_ExecProvider: Any = exec_provider.ExecProvider
_InClusterConfigLoader: Any = incluster_config.InClusterConfigLoader
_KubeConfigLoader: Any = kube_config.KubeConfigLoader
_KubeConfigMerger: Any = kube_config.KubeConfigMerger
_proxy_bypass: Callable[[str, dict[str, str]], bool] = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # not in typeshed

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "i386": "386"}


class ConfigError(Exception):
    """The cluster configuration cannot be loaded (missing or invalid kubeconfig, not in a
    cluster, unsupported authentication)."""


def default_user_agent() -> str:
    """`flokoa-controller/<version> (<os>/<arch>)`, in client-go's format."""
    system = platform.system().lower() or "unknown"
    machine = platform.machine().lower()
    return f"flokoa-controller/{__version__} ({system}/{_ARCH.get(machine, machine or 'unknown')})"


@dataclass(frozen=True)
class ClusterConfig:
    """How to reach and authenticate to one API server.

    TLS material is given as files (`ca_file`, `client_cert_file`/`client_key_file`) or as
    PEM data (`ca_data`, `client_cert_data`/`client_key_data`); `ssl_context()` builds the
    context from either. No credential appears in `repr()`.
    """

    server: str
    """Base URL of the API server, e.g. "https://10.0.0.1:443" (may carry a path prefix)."""
    ca_file: str | None = None
    """PEM file of the CA bundle that signs the server certificate."""
    ca_data: str | None = field(default=None, repr=False)
    """PEM text of the CA bundle (alternative to `ca_file`)."""
    verify: bool = True
    """Verify the server certificate (kubeconfig `insecure-skip-tls-verify: true` → False)."""
    client_cert_file: str | None = None
    """PEM client certificate file for mutual TLS."""
    client_key_file: str | None = field(default=None, repr=False)
    """PEM private key file of the client certificate."""
    client_cert_data: str | None = field(default=None, repr=False)
    """PEM client certificate (alternative to `client_cert_file`)."""
    client_key_data: str | None = field(default=None, repr=False)
    """PEM private key (alternative to `client_key_file`)."""
    tls_server_name: str | None = None
    """Server name for SNI and certificate verification when it differs from the URL host."""
    proxy: str | None = None
    """HTTP(S) proxy URL for requests to the server, if any."""
    token_source: TokenSource | None = field(default=None, repr=False)
    """Supplies the bearer token of each request (None: no bearer token)."""
    user_agent: str = field(default_factory=default_user_agent)
    """User-Agent header of every request."""

    @property
    def host(self) -> str:
        """`host[:port]` of the server URL as written (the `host` label of REST metrics)."""
        netloc = urlsplit(self.server).netloc
        return netloc.rpartition("@")[2]

    @property
    def is_https(self) -> bool:
        """Whether the server is reached over TLS."""
        return urlsplit(self.server).scheme == "https"

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for the server (None for a plain-http server).

        Without a CA the system trust store is used. Client certificate data given in memory
        is loaded through a private temporary directory that is removed at once.
        """
        if not self.is_https:
            return None
        ctx = ssl.create_default_context(cafile=self.ca_file, cadata=self.ca_data)
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.client_cert_data is not None or self.client_key_data is not None:
            if not (self.client_cert_data and self.client_key_data):
                raise ConfigError("client certificate data needs both a certificate and a key")
            with tempfile.TemporaryDirectory(prefix="flokoa-tls-") as tmp:
                cert = os.path.join(tmp, "tls.crt")
                key = os.path.join(tmp, "tls.key")
                for path, text in ((cert, self.client_cert_data), (key, self.client_key_data)):
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "w", encoding="utf-8") as f:
                        f.write(text)
                ctx.load_cert_chain(cert, key)
        elif self.client_cert_file or self.client_key_file:
            if not (self.client_cert_file and self.client_key_file):
                raise ConfigError("a client certificate file needs a key file, and vice versa")
            ctx.load_cert_chain(self.client_cert_file, self.client_key_file)
        return ctx


def _proxy_for(configuration: Any, server: str) -> str | None:
    """The Configuration's proxy unless the server host is excluded by `no_proxy`."""
    proxy = configuration.proxy
    if not proxy:
        return None
    no_proxy = getattr(configuration, "no_proxy", None)
    host = urlsplit(server).hostname or ""
    if no_proxy and _proxy_bypass(host, {"no": no_proxy}):
        return None
    return str(proxy)


def _base(configuration: Any) -> dict[str, Any]:
    """Fields of ClusterConfig read off a loaded Configuration."""
    server = str(configuration.host).rstrip("/")
    return {
        "server": server,
        "ca_file": configuration.ssl_ca_cert or None,
        "verify": bool(configuration.verify_ssl),
        "client_cert_file": configuration.cert_file or None,
        "client_key_file": configuration.key_file or None,
        "tls_server_name": configuration.tls_server_name or None,
        "proxy": _proxy_for(configuration, server),
    }


def _kubeconfig_paths(path: str | os.PathLike[str] | None) -> str:
    if path is not None:
        return os.fspath(path)
    return os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG


def _token_source(
    merged: Any, loader: Any, configuration: Any, user_name: str | None
) -> TokenSource | None:
    """Pick the token source matching how the loader authenticated the user.

    The order is the loader's: auth-provider, token, tokenFile, exec, username/password.
    """
    bearer = configuration.api_key.get("BearerToken")
    if not user_name:
        return None
    user_entry = merged["users"].get_with_name(user_name, safe=True)
    if user_entry is None:
        return None
    if "user" not in user_entry:
        return None
    user = user_entry["user"]  # a ConfigNode, as ExecProvider expects
    user_value: Mapping[str, Any] = user.value
    file_path = getattr(user_entry, "path", None)
    base_path = os.path.dirname(os.path.abspath(file_path)) if file_path else ""
    if "auth-provider" in user_value and bearer:
        return ConfigurationTokenSource(configuration)
    if user_value.get("token"):
        return StaticTokenSource(str(user_value["token"]))
    if user_value.get("tokenFile"):
        return FileTokenSource(os.path.normpath(os.path.join(base_path, user_value["tokenFile"])))
    if "exec" in user_value:
        context = loader.current_context["context"]
        cluster = merged["clusters"].get_with_name(context["cluster"])["cluster"]
        try:
            provider = _ExecProvider(user["exec"], base_path, cluster)
        except ConfigException as exc:
            raise ConfigError(str(exc)) from None
        expiry = getattr(loader, "expiry", None)
        return ExecTokenSource(
            provider,
            token=bearer or None,
            expires_at=expiry.timestamp() if expiry is not None else None,
        )
    if "username" in user_value and "password" in user_value:
        raise ConfigError(
            "username/password (basic) authentication is not supported "
            "(removed from kube-apiserver in Kubernetes 1.19)"
        )
    return None


def load_kubeconfig(
    path: str | os.PathLike[str] | None = None, context: str | None = None
) -> ClusterConfig:
    """Load a kubeconfig (a file or a `:`-separated list, merged like kubectl).

    `path` defaults to `$KUBECONFIG`, then `~/.kube/config`; `context` to the file's
    `current-context`. The kubeconfig file is never written back.
    """
    paths = _kubeconfig_paths(path)
    try:
        merger = _KubeConfigMerger(paths)
        if merger.config is None:
            raise ConfigError(f"no kubeconfig found at {paths}")
        loader = _KubeConfigLoader(
            config_dict=merger.config, active_context=context, config_base_path=None
        )
        configuration = Configuration()
        loader.load_and_set(configuration)
        user_name = loader.current_context["context"].get("user")
    except ConfigException as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read kubeconfig {paths}: {exc}") from None
    source = _token_source(merger.config, loader, configuration, user_name)
    return ClusterConfig(token_source=source, **_base(configuration))


def load_incluster(
    *,
    token_file: str = SERVICE_TOKEN_FILENAME,
    ca_file: str = SERVICE_CERT_FILENAME,
    environ: Mapping[str, str] | None = None,
    token_refresh_interval: float = 60.0,
) -> ClusterConfig:
    """In-cluster configuration: the service-account token and CA mounted into the pod and
    `KUBERNETES_SERVICE_HOST`/`_PORT`. The token file is re-read when it rotates (checked at
    most every `token_refresh_interval` seconds, and at once after a 401)."""
    configuration = Configuration()
    try:
        _InClusterConfigLoader(
            token_filename=token_file,
            cert_filename=ca_file,
            try_refresh_token=False,
            environ=os.environ if environ is None else environ,
        ).load_and_set(configuration)
    except ConfigException as exc:
        raise ConfigError(str(exc)) from None
    source = FileTokenSource(token_file, refresh_interval=token_refresh_interval)
    return ClusterConfig(token_source=source, **_base(configuration))


def load_config(
    kubeconfig: str | os.PathLike[str] | None = None,
    context: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> ClusterConfig:
    """The configuration a controller uses by default, like controller-runtime's
    `GetConfig`: the explicit `kubeconfig` path, else `$KUBECONFIG`, else in-cluster when
    `KUBERNETES_SERVICE_HOST` is set (and no `context` was asked for: contexts exist only
    in kubeconfigs), else `~/.kube/config`."""
    env = os.environ if environ is None else environ
    if kubeconfig is not None:
        return load_kubeconfig(kubeconfig, context)
    if env.get("KUBECONFIG"):
        return load_kubeconfig(env["KUBECONFIG"], context)
    if env.get(SERVICE_HOST_ENV_NAME) and context is None:
        return load_incluster(environ=env)
    return load_kubeconfig(DEFAULT_KUBECONFIG, context)
