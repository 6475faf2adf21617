"""``flokoa-controller dev``: the operator on an embedded cluster with fake providers.

One command, nothing to install: it starts

1. the in-memory API server (``envtest``), writing a kubeconfig for ``kubectl``;
2. the ModelProvider and Model CRDs (generated from the API types, the same as
   ``config/crd/``);
3. local fake provider endpoints that enforce each provider's real authentication: OpenAI,
   Azure OpenAI (classic ``api-version``), Anthropic, Gemini, Vertex AI (service-account JWT
   grant), Bedrock (SigV4), and one more OpenAI-compatible endpoint served over HTTPS with a
   certificate from a throwaway CA;
4. demo objects in one namespace: a ready provider of every kind with a Model, one whose key
   is revoked (``InvalidCredentials``), one whose Secret is missing (``SecretNotFound``), one
   behind TLS with the custom CA, and a Model the provider does not serve (``ModelNotFound``);
5. the controllers (a Manager without leader election) against that API server, with
   loopback (``127.0.0.0/8``, ``::1/128``) added to ``--allow-destinations``
   (``DEV_ALLOWED_DESTINATIONS``: the fakes listen on loopback, which the destination policy
   denies by default);

then prints the kubeconfig path and ``kubectl`` commands to watch and poke it. Ctrl-C (or
SIGTERM) stops everything cleanly. Valid keys for the poke commands are written next to the
kubeconfig (mode 0600), never printed.

This module sits beside ``cli`` at the top of the layers: it is the only operator module
besides ``cli`` that may import ``envtest``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import trustme

from flokoa_controller.api.crdgen import crd
from flokoa_controller.api.meta import MODEL, MODEL_PROVIDER
from flokoa_controller.api.model import Model
from flokoa_controller.api.modelprovider import ModelProvider
from flokoa_controller.controllers.identity import SERVICEACCOUNTS
from flokoa_controller.controllers.resources import MODELPROVIDERS, MODELS
from flokoa_controller.controllers.setup import ControllerSettings, add_flags, setup_controllers
from flokoa_controller.kube.client import KubeClient
from flokoa_controller.kube.config import load_kubeconfig
from flokoa_controller.kube.errors import AlreadyExists
from flokoa_controller.kube.resources import CRDS, NAMESPACES, SECRETS, ResourceType
from flokoa_controller.runtime import eventloop
from flokoa_controller.runtime.logging import LOG_LEVELS, configure_logging
from flokoa_controller.runtime.manager import Manager
from flokoa_envtest.fakes import FakeOpenAI, FakeProviders
from flokoa_envtest.testing import secret_manifest

if TYPE_CHECKING:
    from flokoa_envtest import APIServer
from flokoa_controller.runtime.options import ManagerOptions

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEV_ALLOWED_DESTINATIONS",
    "DemoFakes",
    "DevEnvironment",
    "add_parser",
    "demo_objects",
    "dev_settings",
    "install_crds",
    "run_dev",
]

log = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "demo"
"""Namespace of the demo objects."""

DEV_ALLOWED_DESTINATIONS: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
"""``--allow-destinations`` entries ``dev`` always adds: its fakes listen on 127.0.0.1,
which the destination policy denies by default; ``::1`` too, as ``localhost`` resolves to
both loopback addresses (c-ares, whatever the hosts file lists)."""


def dev_settings(args: argparse.Namespace) -> ControllerSettings:
    """The controllers' settings of ``dev``: the flags, plus loopback allowed for the fakes
    (``DEV_ALLOWED_DESTINATIONS``); the built-in deny list is otherwise unchanged."""
    settings = ControllerSettings.from_args(args)
    allowed = tuple(dict.fromkeys((*DEV_ALLOWED_DESTINATIONS, *settings.allow_destinations)))
    return dataclasses.replace(settings, allow_destinations=allowed)


@dataclass
class DemoFakes:
    """The fake endpoints the demo objects point at."""

    providers: FakeProviders
    """One fake of every provider (plain HTTP)."""
    tls_openai: FakeOpenAI
    """An OpenAI-compatible fake behind HTTPS with a certificate from ``ca``."""
    ca: trustme.CA
    """The throwaway CA of ``tls_openai``."""
    revoked_key: str = ""
    """The key of the ``openai-revoked`` demo provider (revoked at the fake)."""
    poke_keys: dict[str, str] = field(default_factory=dict)
    """Valid keys for the poke commands (written to a 0600 file, never printed)."""


@dataclass(frozen=True)
class DevEnvironment:
    """What a running ``dev`` offers (handed to ``on_ready``; tests use it)."""

    kubeconfig: Path
    """The kubeconfig of the embedded API server."""
    namespace: str
    """Namespace of the demo objects."""
    keys_file: Path
    """File (0600) with valid keys for the poke commands, one ``NAME=value`` per line."""
    manager: Manager[KubeClient]
    """The running manager (``manager.stop()`` ends ``dev``)."""
    fakes: DemoFakes
    """The fake endpoints."""


def _provider(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    obj = {
        "apiVersion": MODEL_PROVIDER.api_version,
        "kind": MODEL_PROVIDER.kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    ModelProvider.model_validate(obj)  # the demo itself must be valid
    return obj


def _model(name: str, namespace: str, provider: str, model: str) -> dict[str, Any]:
    obj = {
        "apiVersion": MODEL.api_version,
        "kind": MODEL.kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": model, "providerRef": {"name": provider}},
    }
    Model.model_validate(obj)
    return obj


KEYLESS_SERVICE_ACCOUNT = "bedrock-agent"
"""The demo ServiceAccount whose IRSA-style identity the `bedrock-keyless` provider uses."""
KEYLESS_ROLE_ARN = "arn:aws:iam::123456789012:role/flokoa-dev-keyless"
"""The IAM role the fake STS lets that ServiceAccount assume."""


def trust_demo_service_account(fakes: FakeProviders, api: APIServer, namespace: str) -> None:
    """The fake clouds trust envtest's ServiceAccount issuer, and the fake STS lets the demo
    ServiceAccount assume `KEYLESS_ROLE_ARN` (what an IAM trust policy would say)."""
    issuer = api.service_account_issuer
    fakes.trust_issuer(issuer, jwks=api.jwks())
    fakes.sts.add_oidc_provider(issuer)
    subject = f"system:serviceaccount:{namespace}:{KEYLESS_SERVICE_ACCOUNT}"
    fakes.sts.allow_web_identity(KEYLESS_ROLE_ARN, issuer, subject)


def demo_objects(fakes: DemoFakes, namespace: str = DEFAULT_NAMESPACE) -> list[dict[str, Any]]:
    """The demo Secrets, ModelProviders and Models, pointing at ``fakes`` (in apply order)."""
    p = fakes.providers
    ns = namespace
    sa_key = p.google_oauth.issue_service_account(project_id="fake-project")
    aws_key = p.aws_credentials.add_static()
    revoked = p.openai.keys.new()
    p.openai.keys.revoke(revoked)
    fakes.revoked_key = revoked
    fakes.poke_keys = {
        "OPENAI_API_KEY": p.openai.keys.new(),
        "TLS_OPENAI_API_KEY": fakes.tls_openai.api_key,
    }
    objs: list[dict[str, Any]] = [
        secret_manifest("openai-credentials", ns, {"api-key": p.openai.api_key}),
        secret_manifest("azure-credentials", ns, {"api-key": p.azure.api_key}),
        secret_manifest("anthropic-credentials", ns, {"api-key": p.anthropic.api_key}),
        secret_manifest("gemini-credentials", ns, {"api-key": p.gemini.api_key}),
        secret_manifest("vertex-service-account", ns, {"credentials.json": json.dumps(sa_key)}),
        secret_manifest(
            "bedrock-credentials",
            ns,
            {
                "AWS_ACCESS_KEY_ID": aws_key.access_key_id,
                "AWS_SECRET_ACCESS_KEY": aws_key.secret_access_key,
            },
        ),
        secret_manifest("openai-revoked-credentials", ns, {"api-key": revoked}),
        secret_manifest("internal-ca", ns, {"ca.crt": fakes.ca.cert_pem.bytes()}),
        secret_manifest("internal-llm-credentials", ns, {"api-key": fakes.tls_openai.api_key}),
        _provider(
            "openai",
            ns,
            {
                "apiKeySecretRef": {"name": "openai-credentials", "key": "api-key"},
                "openai": {"baseURL": p.openai.base_url, "timeoutSeconds": 10},
                "defaultHeaders": {"X-Request-Source": "flokoa-dev"},
            },
        ),
        _provider(
            "azure-openai",
            ns,
            {
                "apiKeySecretRef": {"name": "azure-credentials"},
                "openai": {
                    "baseURL": p.azure.classic_base_url,
                    "apiVersion": "2024-10-21",
                    "timeoutSeconds": 10,
                },
            },
        ),
        _provider(
            "anthropic",
            ns,
            {
                "apiKeySecretRef": {"name": "anthropic-credentials"},
                "anthropic": {"baseURL": p.anthropic.base_url, "timeoutSeconds": 10},
            },
        ),
        _provider(
            "gemini",
            ns,
            {
                "apiKeySecretRef": {"name": "gemini-credentials"},
                "google": {"baseURL": p.gemini.base_url, "timeoutSeconds": 10},
            },
        ),
        _provider(
            "vertex",
            ns,
            {
                "google": {
                    "baseURL": p.vertex.base_url,
                    "timeoutSeconds": 10,
                    "vertex": {
                        "projectID": "fake-project",
                        "location": "us-central1",
                        "serviceAccountKeySecretRef": {"name": "vertex-service-account"},
                    },
                },
            },
        ),
        _provider(
            "bedrock",
            ns,
            {
                "bedrock": {
                    "region": p.bedrock.region,
                    "endpointURL": p.bedrock.url,
                    "credentialsSecretRef": {"name": "bedrock-credentials"},
                    "timeoutSeconds": 10,
                },
            },
        ),
        _provider(
            "openai-revoked",
            ns,
            {
                "apiKeySecretRef": {"name": "openai-revoked-credentials"},
                "openai": {"baseURL": p.openai.base_url, "timeoutSeconds": 10},
            },
        ),
        _provider(
            "openai-missing-secret",
            ns,
            {
                "apiKeySecretRef": {"name": "missing-credentials"},
                "openai": {"baseURL": p.openai.base_url, "timeoutSeconds": 10},
            },
        ),
        _provider(
            "internal-llm",
            ns,
            {
                "apiKeySecretRef": {"name": "internal-llm-credentials"},
                "openai": {"baseURL": fakes.tls_openai.base_url, "timeoutSeconds": 10},
                "tls": {"caSecretRef": {"name": "internal-ca", "key": "ca.crt"}},
            },
        ),
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": KEYLESS_SERVICE_ACCOUNT,
                "namespace": ns,
                "annotations": {"eks.amazonaws.com/role-arn": KEYLESS_ROLE_ARN},
            },
        },
        _provider(
            "bedrock-keyless",
            ns,
            {
                "serviceAccountName": KEYLESS_SERVICE_ACCOUNT,
                "bedrock": {
                    "region": p.bedrock.region,
                    "endpointURL": p.bedrock.url,
                    "timeoutSeconds": 10,
                },
            },
        ),
        _model("connectivity-test", ns, "openai", "gpt-4o-mini"),
        _model("azure-gpt-4o", ns, "azure-openai", "gpt-4o"),
        _model("claude-sonnet", ns, "anthropic", "claude-sonnet-4-20250514"),
        _model("gemini-flash", ns, "gemini", "gemini-2.0-flash"),
        _model("vertex-gemini", ns, "vertex", "gemini-2.0-flash"),
        _model("bedrock-claude", ns, "bedrock", "anthropic.claude-3-haiku-20240307-v1:0"),
        _model("revoked-gpt", ns, "openai-revoked", "gpt-4o"),
        _model("waiting-for-secret", ns, "openai-missing-secret", "gpt-4o"),
        _model("internal-gpt", ns, "internal-llm", "gpt-4o"),
        _model("no-such-model", ns, "openai", "gpt-9-imaginary"),
    ]
    return objs


def _resource_of(obj: dict[str, Any]) -> ResourceType:
    kind = obj.get("kind")
    if kind == "Secret":
        return SECRETS
    if kind == "ServiceAccount":
        return SERVICEACCOUNTS
    if kind == MODEL_PROVIDER.kind:
        return MODELPROVIDERS
    if kind == MODEL.kind:
        return MODELS
    raise ValueError(f"unexpected demo kind {kind!r}")


async def install_crds(client: KubeClient, *, wait: float = 30.0) -> None:
    """Create (or keep) the two CRDs and wait (up to ``wait`` s) until they are served."""
    for resource, root in ((MODEL_PROVIDER, ModelProvider), (MODEL, Model)):
        with contextlib.suppress(AlreadyExists):
            await client.create(CRDS, crd(resource, root))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    for rt in (MODELPROVIDERS, MODELS):
        while True:
            try:
                await client.list(rt, limit=1)
                break
            except Exception:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.05)  # the CRD is being established


async def apply_objects(client: KubeClient, objs: list[dict[str, Any]], namespace: str) -> None:
    """Create the namespace and ``objs`` (existing ones are left as they are)."""
    with contextlib.suppress(AlreadyExists):
        await client.create(
            NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        )
    for obj in objs:
        with contextlib.suppress(AlreadyExists):
            await client.create(_resource_of(obj), obj, namespace)


def _write_keys(directory: Path, keys: dict[str, str]) -> Path:
    path = directory / "dev-keys.env"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        for name, value in keys.items():
            handle.write(f"{name}={value}\n")
    return path


def banner(env: DevEnvironment) -> str:
    """The instructions printed once everything runs."""
    ns = env.namespace
    keys = env.keys_file
    lines = [
        "",
        "flokoa-controller dev is running: an in-memory API server, fake LLM providers and",
        "the ModelProvider/Model controllers.",
        "",
        f"  export KUBECONFIG={env.kubeconfig}",
        "",
        "Look:",
        f"  kubectl get modelproviders,models -n {ns}",
        f"  kubectl get models -n {ns} -w",
        f"  kubectl describe modelprovider openai-revoked -n {ns}",
        f"  kubectl get modelprovider internal-llm -n {ns} -o yaml",
        "",
        "Poke (valid keys are in " + str(keys) + "):",
        f"  source {keys}",
        "  # fix the revoked key: Ready within a second",
        f"  kubectl create secret generic openai-revoked-credentials -n {ns} \\",
        '      --from-literal=api-key="$OPENAI_API_KEY" \\',
        "      --dry-run=client -o yaml | kubectl apply -f -",
        "  # create the missing Secret: openai-missing-secret and its Model turn Ready",
        f"  kubectl create secret generic missing-credentials -n {ns} \\",
        '      --from-literal=api-key="$OPENAI_API_KEY" \\',
        "      --dry-run=client -o yaml | kubectl apply -f -",
        "  # break a working provider",
        f"  kubectl create secret generic openai-credentials -n {ns} \\",
        "      --from-literal=api-key=sk-wrong \\",
        "      --dry-run=client -o yaml | kubectl apply -f -",
        "",
        "Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


def _dev_options(args: argparse.Namespace) -> ManagerOptions:
    return ManagerOptions(
        namespaces=(),
        leader_elect=False,
        metrics_bind_address=args.metrics_bind_address,
        health_probe_bind_address=args.health_probe_bind_address,
        max_concurrent_reconciles=4,
        install_signal_handlers=True,
        log_level=args.log_level,
        args=args,
    )


async def run_dev(
    args: argparse.Namespace,
    *,
    on_ready: Callable[[DevEnvironment], None] | None = None,
    out: TextIO | None = None,
) -> int:
    """Run the dev environment until a signal (or ``manager.stop()``); the exit code."""
    from flokoa_envtest import APIServer

    out = out or sys.stdout
    workdir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="flokoa-dev-"))
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = workdir / "kubeconfig"
    ca = trustme.CA()
    async with (
        APIServer(port=args.port, kubeconfig_path=kubeconfig) as api,
        FakeProviders() as fake_providers,
        FakeOpenAI(tls=ca) as tls_openai,
    ):
        fakes = DemoFakes(fake_providers, tls_openai, ca)
        config = load_kubeconfig(str(api.kubeconfig_path))
        async with KubeClient(config) as client:
            await install_crds(client)
            if not args.no_demo:
                objs = demo_objects(fakes, args.namespace)
                await apply_objects(client, objs, args.namespace)
            keys_file = _write_keys(workdir, fakes.poke_keys)
            options = _dev_options(args)
            manager = Manager(client, options)
            settings = dev_settings(args)
            # the dev cluster's administrator allows the fake Google token endpoint, the fake
            # STS, and identity-derived credentials to the loopback fakes
            trust_demo_service_account(fake_providers, api, args.namespace)
            identity = dataclasses.replace(
                settings.identity,
                google_token_uris=(
                    *settings.identity.google_token_uris,
                    fake_providers.google_oauth.token_uri,
                ),
                aws_sts_endpoint=settings.identity.aws_sts_endpoint or fake_providers.sts.url,
                allowed_hosts=(*settings.identity.allowed_hosts, "127.0.0.1"),
            )
            settings = dataclasses.replace(settings, identity=identity)
            setup_controllers(manager, options, settings=settings)
            env = DevEnvironment(
                Path(api.kubeconfig_path), args.namespace, keys_file, manager, fakes
            )
            print(banner(env), file=out, flush=True)
            if on_ready is not None:
                on_ready(env)
            await manager.run()
    return 0


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register ``dev`` (with the controllers' own flags)."""
    parser = subparsers.add_parser(
        "dev",
        help="Run the operator on an embedded API server with fake providers and demo objects.",
        description="Start an in-memory API server, install the CRDs, start local fake LLM "
        "providers (each enforcing its real authentication), create demo objects and run the "
        "controllers against them; print the kubeconfig and kubectl commands to watch and "
        "poke it. Ctrl-C stops everything.",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="Port of the embedded API server (0: any free)."
    )
    parser.add_argument(
        "--dir",
        default=None,
        help="Directory for the kubeconfig and the keys file (default: a new temporary one).",
    )
    parser.add_argument(
        "--namespace", default=DEFAULT_NAMESPACE, help="Namespace of the demo objects."
    )
    parser.add_argument("--no-demo", action="store_true", help="Do not create demo objects.")
    parser.add_argument(
        "--metrics-bind-address",
        default="127.0.0.1:0",
        help='Address of /metrics ("0" disables it; default: a free port on 127.0.0.1).',
    )
    parser.add_argument(
        "--health-probe-bind-address",
        default="0",
        help='Address of /healthz and /readyz ("0", the default, disables them).',
    )
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info",
        type=str.lower,
        help="Least severe level logged.",
    )
    parser.add_argument(
        "--log-format", choices=("text", "json", "auto"), default="text", help="Log format."
    )
    add_flags(parser)
    parser.set_defaults(handler=_handler)
    return parser


def _handler(args: argparse.Namespace) -> int:
    configure_logging(args.log_format, args.log_level)
    try:
        return eventloop.run(run_dev(args))
    except KeyboardInterrupt:
        return 0
