"""Each rule's Python check agrees with its CEL expression (evaluated by cel-python, whose
``matches`` is RE2 like kube-apiserver's), value by value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flokoa_controller.api import rules
from flokoa_controller.api.modelprovider import OPENAI_API_VERSION_RULE, OpenAIProvider

Cel = Callable[[str, Any], bool]
FIXTURE_OK = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
TRICKY = st.sampled_from(list("aZ09-._:/?#@ \t\r\n\x00\x7f%[]!~'`|*é\u00a0\u2028٣"))
TEXT = st.one_of(st.text(TRICKY, max_size=16), st.text(max_size=16))
URLS = st.one_of(
    TEXT,
    st.builds(str.__add__, st.sampled_from(["http://", "https://", "HTTPS://"]), TEXT),
    st.builds(
        lambda host, path, tail: f"https://{host}{path}{tail}",
        st.sampled_from(["h", "api.openai.com", "[::1]:8443", "a@b"]),
        st.sampled_from(["", "/v1", "/v1/"]),
        st.sampled_from(["", "\n", "\r", " ", "?", "#", "x"]),
    ),
)
HEADER_NAMES = st.one_of(
    TEXT,
    st.sampled_from(
        [h.upper() for h in rules.RESERVED_HEADERS + rules.METADATA_HEADERS]
        + list(rules.RESERVED_HEADERS + rules.METADATA_HEADERS)
    ),
    st.text(st.sampled_from(list("!#$%&'*+-.^_`|~aZ09")), min_size=1, max_size=300),
    st.sampled_from(["authorization\n", "x-authorization", "hostname", "Content-Length2"]),
)


@FIXTURE_OK
@given(url=URLS)
@example(url="https://example.com/v1\n")
@example(url="https://example.com/v1")
def test_url_rule(url: str, cel: Cel) -> None:
    assert rules.URL_RULE.check(url) == cel(rules.URL_RULE.rule, url)


@FIXTURE_OK
@given(value=TEXT)
@example(value="a\nb")
@example(value="\r")
@example(value="ok")
def test_header_value_rule(value: str, cel: Cel) -> None:
    assert rules.HEADER_VALUE_RULE.check(value) == cel(rules.HEADER_VALUE_RULE.rule, value)


@FIXTURE_OK
@given(headers=st.dictionaries(HEADER_NAMES, st.just("v"), max_size=3))
@example(headers={"X-Tenant\n": "v"})
@example(headers={"Authorization": "v"})
@example(headers={"X-Tenant": "v"})
def test_header_map_rules(headers: dict[str, str], cel: Cel) -> None:
    for rule in (rules.HEADER_NAMES_RULE, rules.RESERVED_HEADERS_RULE, rules.METADATA_HEADERS_RULE):
        assert rule.check(headers) == cel(rule.rule, headers), rule.message


@FIXTURE_OK
@given(base_url=URLS)
@example(base_url="https://api.openai.com/v1")
@example(base_url="https://api.openai.com:443/v1")
@example(base_url="https://api.openai.com.evil.example/v1")
@example(base_url="https://api.openai.com")
def test_openai_api_version_rule(base_url: str, cel: Cel) -> None:
    block = OpenAIProvider.model_construct(base_url=base_url, api_version="2024-10-21")
    data = {"baseURL": base_url, "apiVersion": "2024-10-21"}
    expected = cel(OPENAI_API_VERSION_RULE.rule, data)
    assert OPENAI_API_VERSION_RULE.check(block) == expected


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        ("^a$", "a\n"),
        ("^a$", "a"),
        ("^a(b|$)", "a\n"),
        ("^[]$]x$", "$x"),
        ("^[^]$]x$", "ax\n"),
        ("^[0-9]$", "٣"),
        ("^x[^ ]$", "x\u00a0"),
    ],
)
def test_go_regex_reads_patterns_like_re2(pattern: str, text: str, cel: Cel) -> None:
    python = rules.go_regex(pattern).search(text) is not None
    assert python == cel(f"self.matches({rules.cel_string(pattern)})", text)


def test_service_account_name_is_accepted_for_workload_identity_clouds(
    crd_validators: dict[str, Any],
) -> None:
    """Bedrock, Vertex AI and Azure OpenAI (v1 or classic) take serviceAccountName alone."""
    from flokoa_controller.api import parse_object

    specs = [
        {"serviceAccountName": "agent", "bedrock": {"region": "us-east-1"}},
        {
            "serviceAccountName": "agent",
            "bedrock": {
                "region": "us-east-1",
                "roleARN": "arn:aws:iam::123456789012:role/r",
                "externalID": "tenant-42",
            },
        },
        {
            "serviceAccountName": "agent",
            "google": {"vertex": {"projectID": "my-project", "location": "us-central1"}},
        },
        {
            "serviceAccountName": "agent",
            "openai": {"baseURL": "https://r.openai.azure.com/openai/v1"},
        },
        {
            "serviceAccountName": "agent",
            "openai": {"baseURL": "https://gw.example.com/openai", "apiVersion": "2024-10-21"},
        },
    ]
    for spec in specs:
        obj = {
            "apiVersion": "agent.flokoa.ai/v1alpha1",
            "kind": "ModelProvider",
            "metadata": {"name": "x", "namespace": "default"},
            "spec": spec,
        }
        assert crd_validators["ModelProvider"].errors(obj) == [], spec
        assert parse_object(obj).spec.service_account_name == "agent"  # type: ignore[union-attr]
