"""Property: the CRD (schema + CEL, as kube-apiserver evaluates it) and the pydantic models
accept exactly the same ModelProvider and Model specs.

The generated specs combine the parts every rule looks at (provider blocks, credential
references, TLS switches, headers) with arbitrary text for URLs and header names and values,
so the Python regular expressions are checked against RE2's reading of the same pattern.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from flokoa_controller.api import parse_object

KEY = {"name": "creds"}
TEXT = st.text(
    alphabet=st.sampled_from(list("aZ09-._:/?#@ \t\r\n%[]!~'`|*\x7fé")), min_size=0, max_size=12
)
URLS = st.one_of(
    st.sampled_from(
        [
            "https://api.openai.com/v1",
            "http://localhost:8000/v1",
            "https://res.openai.azure.com/openai",
            "https://[::1]:8443/v1",
            "ftp://example.com",
            "https://",
            "https://a@b/v1",
            "https://example.com/v1?x=1",
            "https://example.com/v1\n",
        ]
    ),
    st.builds(lambda scheme, rest: scheme + rest, st.sampled_from(["http://", "https://"]), TEXT),
)
HEADER_NAMES = st.one_of(
    st.sampled_from(
        ["X-Tenant", "authorization", "X-Api-Key", "Host", "a b", "x:y", "api-version"]
    ),
    TEXT,
)
HEADER_VALUES = st.one_of(st.sampled_from(["v", "a\r\nb", "tab\tok", ""]), TEXT)
HEADERS = st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=3)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def _block(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict whose keys are each present or absent; a None value means absent."""
    return st.fixed_dictionaries({k: _maybe(v) for k, v in fields.items()}).map(
        lambda d: {k: v for k, v in d.items() if v is not None}
    )


VERTEX = _block(
    projectID=st.sampled_from(["my-project", "example.com:my-project"]),
    location=st.sampled_from(["us-central1", "global"]),
    serviceAccountKeySecretRef=st.just({"name": "sa"}),
)
PROVIDER_BLOCKS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "openai": _block(
        baseURL=URLS, apiVersion=st.just("2024-10-21"), timeoutSeconds=st.integers(-1, 601)
    ),
    "anthropic": _block(baseURL=URLS),
    "google": _block(baseURL=URLS, vertex=VERTEX),
    "bedrock": _block(
        region=st.just("us-east-1"),
        endpointURL=URLS,
        roleARN=st.just("arn:aws:iam::123456789012:role/r"),
        credentialsSecretRef=st.just({"name": "aws"}),
    ),
}
ONE_PROVIDER = st.sampled_from(sorted(PROVIDER_BLOCKS)).flatmap(
    lambda name: PROVIDER_BLOCKS[name].map(lambda block: {name: block})
)
# Mostly exactly one block (the interesting case), sometimes none or several.
PROVIDERS = st.one_of(ONE_PROVIDER, ONE_PROVIDER, ONE_PROVIDER, _block(**PROVIDER_BLOCKS))
COMMON = _block(
    defaultHeaders=HEADERS,
    tls=_block(
        caSecretRef=st.just({"name": "ca"}),
        useSystemCAs=st.booleans(),
        insecureSkipVerify=st.booleans(),
    ),
)
SPECS = st.builds(
    lambda providers, common, key: {**providers, **common, **key},
    PROVIDERS,
    COMMON,
    st.sampled_from([{"apiKeySecretRef": KEY}, {"apiKeySecretRef": KEY}, {}]),
)
SETTINGS = _block(
    temperature=st.floats(-0.5, 2.5),
    topP=st.floats(-0.1, 1.1),
    maxTokens=st.integers(0, 3),
    stopSequences=st.lists(st.just("x"), max_size=9),
    extraHeaders=HEADERS,
)
MODEL_SPECS = st.one_of(
    st.fixed_dictionaries(
        {"model": st.just("gpt-4o"), "providerRef": st.just({"name": "p"})},
        optional={"settings": SETTINGS},
    ),
    _block(
        model=st.sampled_from(["gpt-4o", "gpt 4o"]),
        providerRef=st.just({"name": "p"}),
        settings=SETTINGS,
    ),
)


def _pydantic_accepts(obj: dict[str, Any]) -> bool:
    try:
        parse_object(obj)
    except ValidationError:
        return False
    return True


def _check(kind: str, spec: dict[str, Any], validators: dict[str, Any]) -> None:
    obj = {"apiVersion": "agent.flokoa.ai/v1alpha1", "kind": kind, "metadata": {}, "spec": spec}
    crd_errors = validators[kind].errors(obj)
    assert _pydantic_accepts(obj) == (crd_errors == []), crd_errors


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=SPECS)
@example(spec={"apiKeySecretRef": KEY, "openai": {}, "defaultHeaders": {"X-A": "\n"}})
@example(spec={"apiKeySecretRef": KEY, "openai": {"baseURL": "https://h/v1\n"}})
@example(spec={"google": {"vertex": {"projectID": "my-project", "location": "global"}}})
def test_model_provider_rules_agree(spec: dict[str, Any], crd_validators: dict[str, Any]) -> None:
    _check("ModelProvider", spec, crd_validators)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=MODEL_SPECS)
def test_model_rules_agree(spec: dict[str, Any], crd_validators: dict[str, Any]) -> None:
    _check("Model", spec, crd_validators)
