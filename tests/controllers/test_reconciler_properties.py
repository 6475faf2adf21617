"""Property tests: whatever the ModelProvider, Model and Secret contents, the reconcilers never
crash and always end in a specific, CamelCase reason.

These drive the reconcilers directly over in-memory stores, because most of the generated
objects are ones the API server would refuse (the CRD's schema and CEL rules): the reconciler
must hold up even so (an older CRD, a hand-installed one, a status written by someone else).
The end-to-end tests cover the same code through envtest with valid objects.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any

import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flokoa_envtest.patch import merge_patch
from flokoa_envtest.testing import secret_manifest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from flokoa_controller.controllers.conditions import Reason, Type, is_camel_case
from flokoa_controller.controllers.model import ModelReconciler
from flokoa_controller.controllers.modelprovider import ModelProviderReconciler
from flokoa_controller.controllers.probing import Prober
from flokoa_controller.controllers.resources import MODELPROVIDERS, MODELS
from flokoa_controller.controllers.secret_digest import secret_to_digest
from flokoa_controller.controllers.status import StatusWriter
from flokoa_controller.kube.errors import NotFound
from flokoa_controller.kube.resources import ResourceType
from flokoa_controller.providers.http import ProbeHTTP
from flokoa_controller.providers.result import ProbeResult
from flokoa_controller.providers.result import Reason as ProbeReason
from flokoa_controller.providers.target import ProbeTarget
from flokoa_controller.runtime.controller import Request
from flokoa_controller.runtime.store import Store

CANARY = "sk-canary-Zq81-never-show-me"
NS = "prop"
ALL_REASONS = {v for k, v in vars(Reason).items() if k.isupper()} | {r.value for r in ProbeReason}


class MemoryCluster:
    """Just enough of an API server for the reconcilers: GET Secrets, PATCH status.

    A status patch is applied to the object in the store at once (as the informer would show
    it), so the writer's read-your-writes wait returns immediately.
    """

    def __init__(self, stores: Mapping[ResourceType, Store], secrets: dict[str, Any]) -> None:
        self.stores = stores
        self.secrets = secrets
        self.rv = itertools.count(100)
        self.patches: list[dict[str, Any]] = []

    async def get(self, rt: ResourceType, name: str, namespace: str | None = None) -> Any:
        obj = self.secrets.get(name)
        if obj is None:
            raise NotFound(404, "NotFound", f'secrets "{name}" not found')
        return obj

    async def patch(
        self,
        rt: ResourceType,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
        subresource: str | None = None,
    ) -> Any:
        assert subresource == "status"
        assert patch_type == "merge"
        self.patches.append(patch)
        store = self.stores[rt]
        current = store.get_by(name, namespace)
        if current is None:
            raise NotFound(404, "NotFound", "gone")
        status = merge_patch(current.get("status"), patch["status"])
        updated = {
            **current,
            "status": status,
            "metadata": {**current["metadata"], "resourceVersion": str(next(self.rv))},
        }
        store.add(updated)
        return updated


class Events:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, str, str]] = []

    def event(self, obj: Mapping[str, Any], type: Any, reason: str, message: str) -> None:
        self.recorded.append((type, reason, message))


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=12))
names = st.sampled_from(["creds", "ca", "sa", "aws", "missing"])
urls = st.sampled_from(
    [
        "https://api.example.test/v1",
        "http://127.0.0.1:1/v1",
        "not a url",
        "https://user@x.test/",
        "",
    ]
)
secret_ref = st.fixed_dictionaries(
    {"name": names},
    optional={"key": st.sampled_from(["api-key", "ca.crt", "credentials.json", "nope", ""])},
)
blocks = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "openai": st.fixed_dictionaries(
                {},
                optional={
                    "baseURL": urls,
                    "apiVersion": st.sampled_from(["2024-10-21", "bad version"]),
                    "timeoutSeconds": st.integers(-1, 700),
                    "organizationID": st.text(max_size=5),
                },
            )
        },
    ),
    st.fixed_dictionaries(
        {
            "anthropic": st.fixed_dictionaries(
                {}, optional={"baseURL": urls, "version": st.sampled_from(["2023-06-01", "x"])}
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "google": st.fixed_dictionaries(
                {},
                optional={
                    "baseURL": urls,
                    "vertex": st.fixed_dictionaries(
                        {},
                        optional={
                            "projectID": st.sampled_from(["fake-project", "X"]),
                            "location": st.sampled_from(["us-central1", "global", ""]),
                            "serviceAccountKeySecretRef": secret_ref,
                        },
                    ),
                },
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "bedrock": st.fixed_dictionaries(
                {},
                optional={
                    "region": st.sampled_from(["us-east-1", "moon"]),
                    "endpointURL": urls,
                    "credentialsSecretRef": st.fixed_dictionaries(
                        {"name": names},
                        optional={
                            "accessKeyIDKey": st.sampled_from(["id", "AWS_ACCESS_KEY_ID"]),
                            "sessionTokenKey": st.sampled_from(["token"]),
                        },
                    ),
                },
            )
        }
    ),
    st.dictionaries(
        st.sampled_from(["openai", "anthropic", "google", "bedrock"]),
        st.dictionaries(st.text(max_size=4), json_scalars, max_size=2),
        max_size=3,
    ),
)
specs = st.builds(
    lambda block, extra: {**block, **extra},
    blocks,
    st.fixed_dictionaries(
        {},
        optional={
            "apiKeySecretRef": st.one_of(secret_ref, json_scalars),
            "defaultHeaders": st.dictionaries(
                st.sampled_from(["X-Tenant", "Authorization", "bad header"]),
                st.sampled_from(["a", "b\r\nc"]),
                max_size=2,
            ),
            "tls": st.fixed_dictionaries(
                {},
                optional={
                    "caSecretRef": secret_ref,
                    "useSystemCAs": st.booleans(),
                    "insecureSkipVerify": st.booleans(),
                },
            ),
        },
    ),
)
_SA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
VALID_SA = json.dumps(
    {
        "type": "service_account",
        "client_email": "sa@fake-project.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.example.test/token",
        "project_id": "fake-project",
        "private_key": _SA_KEY.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    }
).encode()
VALID_CA = trustme.CA().cert_pem.bytes()

secret_values = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(
        [
            CANARY.encode(),
            CANARY.encode() + b"\n",
            b"",
            b"  \n",
            b"sk-a\r\nb",
            b"{}",
            b'{"type":"service_account"}',
            VALID_SA,
            VALID_CA,
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ]
    ),
)
secrets_strategy = st.dictionaries(
    st.sampled_from(["creds", "ca", "sa", "aws"]),
    st.dictionaries(
        st.sampled_from(
            [
                "api-key",
                "ca.crt",
                "credentials.json",
                "id",
                "token",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
            ]
        ),
        secret_values,
        max_size=4,
    ),
    max_size=4,
)
API_KEY_REF = {"name": "creds", "key": "api-key"}
valid_blocks = st.one_of(
    st.just({"apiKeySecretRef": API_KEY_REF, "openai": {"baseURL": "https://api.example.test/v1"}}),
    st.just({"apiKeySecretRef": API_KEY_REF, "anthropic": {}}),
    st.just({"apiKeySecretRef": API_KEY_REF, "google": {}}),
    st.builds(
        lambda sa: {
            "google": {"vertex": {"projectID": "fake-project", "location": "global", **sa}}
        },
        st.sampled_from([{}, {"serviceAccountKeySecretRef": {"name": "sa"}}]),
    ),
    st.builds(
        lambda extra: {"bedrock": {"region": "us-east-1", **extra}},
        st.sampled_from(
            [
                {},
                {"credentialsSecretRef": {"name": "aws"}},
                {"credentialsSecretRef": {"name": "aws", "sessionTokenKey": "token"}},
            ]
        ),
    ),
    st.just({"apiKeySecretRef": API_KEY_REF, "bedrock": {"region": "eu-west-1"}}),
)
valid_specs = st.builds(
    lambda block, tls: {**block, **tls},
    valid_blocks,
    st.sampled_from(
        [
            {},
            {"tls": {"caSecretRef": {"name": "ca"}}},
            {"tls": {"caSecretRef": {"name": "ca"}, "useSystemCAs": True}},
            {"tls": {"insecureSkipVerify": True}},
            {"defaultHeaders": {"X-Tenant": "t"}},
        ]
    ),
)
valid_secrets = st.fixed_dictionaries(
    {
        "creds": st.fixed_dictionaries({"api-key": secret_values}),
        "ca": st.fixed_dictionaries({"ca.crt": st.sampled_from([VALID_CA, b"garbage", b""])}),
        "sa": st.fixed_dictionaries({"credentials.json": st.sampled_from([VALID_SA, b"{}", b"x"])}),
        "aws": st.fixed_dictionaries(
            {
                "AWS_ACCESS_KEY_ID": st.sampled_from([b"AKIAFAKE", b" "]),
                "AWS_SECRET_ACCESS_KEY": secret_values,
            },
            optional={"token": secret_values},
        ),
    }
)
probe_results = st.builds(
    lambda reason, status: ProbeResult(
        ok=reason in (ProbeReason.PROBE_SUCCEEDED, ProbeReason.RATE_LIMITED),
        reason=reason.value,
        message=f"GET https://x.test/v1/models returned HTTP {status}",
        url="https://x.test/v1/models",
        http_status=status,
        duration=0.01,
        rate_limited=reason == ProbeReason.RATE_LIMITED,
        retryable=reason in (ProbeReason.TIMEOUT, ProbeReason.UNREACHABLE),
    ),
    st.sampled_from(list(ProbeReason)),
    st.sampled_from([None, 200, 401, 404, 429, 503]),
)


def _check_status(status: Mapping[str, Any], types: tuple[str, ...]) -> str:
    conditions = {c["type"]: c for c in status["conditions"]}
    assert set(types) <= set(conditions)
    ready = conditions[Type.READY]
    assert ready["status"] in ("True", "False")
    assert ready["reason"] in ALL_REASONS, ready
    assert is_camel_case(ready["reason"])
    assert ready["reason"] != "Ready"
    assert status["ready"] is (ready["status"] == "True")
    for c in conditions.values():
        assert c["status"] in ("True", "False", "Unknown")
        assert is_camel_case(c["reason"])
        assert CANARY not in c["message"]
    return str(ready["reason"])


model_specs = st.one_of(
    st.fixed_dictionaries(
        {
            "model": st.sampled_from(["gpt-4o", "gpt-4o", "", "a b"]),
            "providerRef": st.fixed_dictionaries({"name": st.sampled_from(["p", "p", "other"])}),
        }
    ),
    st.dictionaries(st.text(max_size=5), json_scalars, max_size=2),
)
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(spec=valid_specs, secrets=valid_secrets, result=probe_results, model_spec=model_specs)
async def test_valid_specs_end_in_a_specific_reason(
    spec: dict[str, Any],
    secrets: dict[str, dict[str, bytes]],
    result: ProbeResult,
    model_spec: dict[str, Any],
) -> None:
    await _run_reconcilers(spec, secrets, result, model_spec)


@PROPERTY_SETTINGS
@given(spec=specs, secrets=secrets_strategy, result=probe_results, model_spec=model_specs)
async def test_any_objects_end_in_a_specific_reason(
    spec: dict[str, Any],
    secrets: dict[str, dict[str, bytes]],
    result: ProbeResult,
    model_spec: dict[str, Any],
) -> None:
    await _run_reconcilers(spec, secrets, result, model_spec)


async def _run_reconcilers(
    spec: dict[str, Any],
    secrets: dict[str, dict[str, bytes]],
    result: ProbeResult,
    model_spec: dict[str, Any],
) -> None:
    providers, models, secret_store = Store(), Store(), Store()
    secret_objs = {
        name: secret_manifest(name, NS, data, metadata={"resourceVersion": "1"})
        for name, data in secrets.items()
    }
    for obj in secret_objs.values():
        secret_store.add(secret_to_digest(obj))
    providers.add(
        {
            "apiVersion": "agent.flokoa.ai/v1alpha1",
            "kind": "ModelProvider",
            "metadata": {
                "name": "p",
                "namespace": NS,
                "uid": "u1",
                "generation": 1,
                "resourceVersion": "1",
            },
            "spec": spec,
        }
    )
    models.add(
        {
            "apiVersion": "agent.flokoa.ai/v1alpha1",
            "kind": "Model",
            "metadata": {
                "name": "m",
                "namespace": NS,
                "uid": "u2",
                "generation": 1,
                "resourceVersion": "1",
            },
            "spec": model_spec,
        }
    )
    cluster = MemoryCluster({MODELPROVIDERS: providers, MODELS: models}, secret_objs)
    events = Events()
    probes: list[ProbeTarget] = []

    async def probe_provider(target: ProbeTarget, http: ProbeHTTP) -> ProbeResult:
        probes.append(target)
        return result

    async def probe_model(target: ProbeTarget, model: str, http: ProbeHTTP) -> ProbeResult:
        probes.append(target)
        return result

    http = ProbeHTTP()
    prober = Prober(cluster, http, probe_provider=probe_provider, probe_model=probe_model)
    reconciler = ModelProviderReconciler(
        providers=providers,
        secrets=secret_store,
        writer=StatusWriter(cluster, MODELPROVIDERS),
        prober=prober,
        recorder=events,
    )
    model_reconciler = ModelReconciler(
        models=models,
        providers=providers,
        writer=StatusWriter(cluster, MODELS),
        prober=prober,
        recorder=events,
    )
    try:
        first = await reconciler.reconcile(Request(NS, "p"))
        status = providers.get_by("p", NS)["status"]  # type: ignore[index]
        reason = _check_status(
            status,
            (Type.READY, Type.SECRET_RESOLVED, Type.CREDENTIALS_VALID, Type.ENDPOINT_REACHABLE),
        )
        event(f"provider ends in {reason}")
        if probes:
            assert reason == result.reason
        writes = len(cluster.patches)
        # A second reconcile of an unchanged object probes nothing and writes nothing.
        second = await reconciler.reconcile(Request(NS, "p"))
        assert len(cluster.patches) == writes
        assert second.requeue_after >= 0
        assert first.requeue_after >= 0

        await model_reconciler.reconcile(Request(NS, "m"))
        m_status = models.get_by("m", NS)["status"]  # type: ignore[index]
        event(
            "model ends in "
            + _check_status(m_status, (Type.READY, Type.PROVIDER_READY, Type.MODEL_AVAILABLE))
        )
        writes = len(cluster.patches)
        await model_reconciler.reconcile(Request(NS, "m"))
        assert len(cluster.patches) == writes
    finally:
        await http.close()
    for _type, event_reason, message in events.recorded:
        assert is_camel_case(event_reason)
        assert CANARY not in message
    for target in probes:
        assert CANARY not in repr(target)
