"""The destination policy: probes cannot reach what the administrator forbids.

Every fake listens on 127.0.0.1; the default policy denies loopback, so a probe of a fake is
refused unless the test allows it — exactly the position of a tenant pointing `baseURL` at
the operator pod's own loopback, the metadata service or the Kubernetes API.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
import trustme
from flokoa_envtest.fakes import FakeOpenAI, FakeProxy

from flokoa_controller.providers import ProbeHTTP, ProbeTarget, TLSSettings, probe_provider
from flokoa_controller.providers.destinations import (
    DestinationNotAllowed,
    DestinationPolicy,
    kubernetes_api_hosts,
    parse_entry,
    policy_socket_factory,
)

from .conftest import HostsResolver

DENIED = "DestinationNotAllowed"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as started:
        yield started


@pytest.fixture
async def tls_fake(ca: trustme.CA) -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(tls=ca) as started:
        yield started


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def target(fake: FakeOpenAI, host: str | None = None, **kw: object) -> ProbeTarget:
    base = fake.base_url if host is None else fake.base_url.replace("127.0.0.1", host, 1)
    return ProbeTarget(kind="openai", base_url=base, api_key=fake.api_key, **kw)  # type: ignore[arg-type]


def assert_refusal(message: str, shown: str) -> None:
    assert f"destination {shown}" in message, message
    assert "--deny-destinations" in message, message
    assert "--allow-destinations" in message, message


# -- refused: nothing sent ------------------------------------------------------------------


async def test_loopback_fake_refused_with_zero_requests(fake: FakeOpenAI) -> None:
    async with ProbeHTTP() as http:  # the default policy
        result = await probe_provider(target(fake), http)
    assert (result.ok, result.reason) == (False, DENIED), result
    assert result.http_status is None
    assert_refusal(result.message, "127.0.0.1")
    assert fake.requests == []


@pytest.mark.parametrize(
    "host",
    [
        "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
        "[::ffff:7f00:1]",
        "[64:ff9b::7f00:1]",  # NAT64
        "2130706433",  # decimal
        "0x7f.0.0.1",  # hex
        "0177.0.0.1",  # octal
        "127.1",  # short form
        "0.0.0.0",  # "this host": reaches loopback listeners
        "127.0.0.1.",  # trailing dot
    ],
)
async def test_other_encodings_of_loopback_refused(fake: FakeOpenAI, host: str) -> None:
    async with ProbeHTTP() as http:
        result = await probe_provider(target(fake, host), http)
    assert result.reason in (DENIED, "EndpointNotFound"), result  # never a connection
    assert fake.requests == []


@pytest.mark.parametrize(
    "base_url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/latest",
        "http://100.100.100.200/latest",
        "http://168.63.129.16/machine",
        "http://[fd00:ec2::23]/v1/credentials",
        "http://[fd20:ce::254]/computeMetadata/v1",  # GCP's metadata server over IPv6
        "http://metadata.google.internal/computeMetadata/v1",
        "http://METADATA.google.internal./computeMetadata/v1",
        "http://[fe80::1]/",
        "http://[::1]/",
    ],
)
async def test_metadata_and_link_local_destinations_refused(base_url: str) -> None:
    hosts = HostsResolver()
    async with ProbeHTTP(resolver=hosts) as http:
        result = await probe_provider(
            ProbeTarget(kind="openai", base_url=base_url, api_key="k"), http
        )
    assert result.reason == DENIED, result
    assert "not allowed" in result.message
    assert hosts.lookups == []  # refused by name or address: not even looked up


async def test_name_resolving_to_a_denied_address_refused(fake: FakeOpenAI) -> None:
    hosts = HostsResolver({"gateway.tenant.example": ["127.0.0.1"]})
    async with ProbeHTTP(resolver=hosts) as http:
        result = await probe_provider(target(fake, "gateway.tenant.example"), http)
    assert result.reason == DENIED, result
    assert_refusal(result.message, "gateway.tenant.example (resolves to 127.0.0.1)")
    assert fake.requests == []


async def test_name_with_one_denied_address_among_allowed_ones_refused(fake: FakeOpenAI) -> None:
    hosts = HostsResolver({"mixed.example": ["127.0.0.1", "169.254.169.254"]})
    policy = DestinationPolicy.build(allow="127.0.0.1/32")
    async with ProbeHTTP(policy=policy, resolver=hosts) as http:
        result = await probe_provider(target(fake, "mixed.example"), http)
    assert result.reason == DENIED, result
    assert "169.254.169.254" in result.message
    assert fake.requests == []


async def test_dns_rebinding_is_checked_on_the_address_connected_to(fake: FakeOpenAI) -> None:
    """The address checked is the address connected to: one lookup per connection, no
    separate check-time lookup a rebinding name could answer differently."""
    hosts = HostsResolver({"rebind.example": ["127.0.0.1"]})
    policy = DestinationPolicy.build(allow="127.0.0.1/32")
    async with ProbeHTTP(policy=policy, resolver=hosts) as http:
        assert (await probe_provider(target(fake, "rebind.example"), http)).ok
    assert len(fake.requests) == 1
    assert hosts.lookups == ["rebind.example"]
    hosts.hosts["rebind.example"] = ["169.254.169.254"]  # the attacker's DNS flips
    async with ProbeHTTP(policy=policy, resolver=hosts) as http:
        result = await probe_provider(target(fake, "rebind.example"), http)
    assert result.reason == DENIED, result
    assert "169.254.169.254" in result.message
    assert hosts.lookups == ["rebind.example", "rebind.example"]
    assert len(fake.requests) == 1


async def test_kubernetes_api_server_addresses_refused(fake: FakeOpenAI) -> None:
    """The API server's own addresses are denied, even in an otherwise allowed range."""
    hosts = HostsResolver({"kube.example": ["10.0.0.7"]})
    policy = DestinationPolicy.build(
        kubernetes_api=kubernetes_api_hosts(
            "https://kube.example:6443", {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}
        )
    )
    refused = ("10.96.0.1", "kube.example", "10.0.0.7")
    for host in refused:
        with pytest.raises(DestinationNotAllowed, match="Kubernetes API server"):
            await policy.check(host, 443, hosts)
    hosts.hosts["alias.example"] = ["10.0.0.7"]
    with pytest.raises(DestinationNotAllowed, match="Kubernetes API server"):
        await policy.check("alias.example", 443, hosts)
    await policy.check("10.96.0.2", 443, hosts)  # a neighbour in the private range is fine


def test_socket_factory_refuses_a_denied_address_itself() -> None:
    """The last line: no socket to a denied address is ever created, whatever asked."""
    factory = policy_socket_factory(DestinationPolicy.default())
    info = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("169.254.169.254", 80))
    with pytest.raises(DestinationNotAllowed):
        factory(info)
    mapped = (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::ffff:127.0.0.1", 80, 0, 0))
    with pytest.raises(DestinationNotAllowed):
        factory(mapped)
    factory((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("10.1.2.3", 80))).close()


# -- allowed: the hole the administrator opens ----------------------------------------------


@pytest.mark.parametrize("allow", ["127.0.0.0/24", "127.0.0.1"])
async def test_allowed_gateway_subnet_works(fake: FakeOpenAI, allow: str) -> None:
    hosts = HostsResolver({"llm.gateway.test": ["127.0.0.1"]})
    policy = DestinationPolicy.build(allow=allow)
    async with ProbeHTTP(policy=policy, resolver=hosts) as http:
        result = await probe_provider(target(fake, "llm.gateway.test"), http)
    assert result.ok, result
    assert len(fake.requests) == 1


async def test_an_allowed_name_does_not_vouch_for_a_denied_address(fake: FakeOpenAI) -> None:
    """`*.gateway.test` lifts name rules only: the address connected to must pass as well."""
    hosts = HostsResolver({"llm.gateway.test": ["127.0.0.1"]})
    policy = DestinationPolicy.build(deny="*.test", allow="*.gateway.test")
    async with ProbeHTTP(policy=policy, resolver=hosts) as http:
        refused = await probe_provider(target(fake, "llm.gateway.test"), http)
    assert refused.reason == DENIED
    assert "127.0.0.0/8" in refused.message
    both = DestinationPolicy.build(deny="*.test", allow="*.gateway.test,127.0.0.1")
    async with ProbeHTTP(policy=both, resolver=hosts) as http:
        assert (await probe_provider(target(fake, "llm.gateway.test"), http)).ok
        other = await probe_provider(target(fake, "other.test"), http)
    assert other.reason == DENIED
    assert "*.test is denied" in other.message
    assert len(fake.requests) == 1


async def test_deny_flag_adds_to_the_defaults_and_private_ranges_stay_allowed(
    fake: FakeOpenAI,
) -> None:
    hosts = HostsResolver({"a.example": ["127.0.0.1"], "b.corp.example": ["127.0.0.1"]})
    policy = DestinationPolicy.build(deny="*.corp.example", allow="127.0.0.0/8")
    async with ProbeHTTP(policy=policy, resolver=hosts) as http:
        assert (await probe_provider(target(fake, "a.example"), http)).ok
        refused = await probe_provider(target(fake, "b.corp.example"), http)
    assert refused.reason == DENIED
    assert "*.corp.example is denied" in refused.message
    assert len(fake.requests) == 1
    assert DestinationPolicy.default().name_refusal("10.20.0.5") is None
    assert DestinationPolicy.default().name_refusal("192.168.1.1") is None


@pytest.mark.parametrize("bad", ["", "10.0.0.0/33", "exa mple.com", "*.", "http://x", "127.1"])
def test_invalid_entries_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_entry(bad)


# -- redirects ------------------------------------------------------------------------------


async def test_redirect_to_a_denied_destination_is_not_followed(fake: FakeOpenAI) -> None:
    fake.force(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}, body={})
    policy = DestinationPolicy.build(allow="127.0.0.0/8")
    async with ProbeHTTP(policy=policy) as http:
        result = await probe_provider(target(fake), http)
    assert result.reason == "UnexpectedResponse", result
    assert "not followed" in result.message
    assert len(fake.requests) == 1


# -- through a proxy ------------------------------------------------------------------------


@pytest.fixture
async def proxy() -> AsyncIterator[FakeProxy]:
    async with FakeProxy() as started:
        yield started


async def test_proxy_connect_target_denied(
    tls_fake: FakeOpenAI, ca: trustme.CA, proxy: FakeProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proxy (127.0.0.1, the administrator's) is used, but a denied CONNECT target is
    refused before the proxy hears of it."""
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    tls = TLSSettings(ca_pem=ca.cert_pem.bytes())
    hosts = HostsResolver({"tenant.example": ["169.254.169.254"]})
    async with ProbeHTTP(resolver=hosts) as http:
        literal = await probe_provider(target(tls_fake, tls=tls), http)
        named = await probe_provider(target(tls_fake, "tenant.example", tls=tls), http)
    assert literal.reason == DENIED, literal
    assert named.reason == DENIED, named
    assert_refusal(named.message, "tenant.example (resolves to 169.254.169.254)")
    assert proxy.request_lines == []
    assert tls_fake.requests == []


async def test_proxy_itself_is_not_judged_by_the_policy(
    tls_fake: FakeOpenAI, ca: trustme.CA, proxy: FakeProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A target the policy allows tunnels through the proxy, which is not judged: the proxy
    is reached by a name the policy denies (and resolves to loopback); only the target,
    127.0.0.1, is allowed."""
    monkeypatch.setenv("HTTPS_PROXY", proxy.url.replace("127.0.0.1", "proxy.admin.test"))
    hosts = HostsResolver({"proxy.admin.test": ["127.0.0.1"]})
    tls = TLSSettings(ca_pem=ca.cert_pem.bytes())
    policy = DestinationPolicy.build(deny="*.admin.test", allow="127.0.0.1/32")
    async with ProbeHTTP(policy=policy, resolver=hosts) as http:
        result = await probe_provider(target(tls_fake, tls=tls), http)
    assert result.ok, result
    assert proxy.connects == [f"127.0.0.1:{tls_fake.port}"]
    # the proxy's name as a tenant's own target is judged like any other (here: denied)
    monkeypatch.delenv("HTTPS_PROXY")
    async with ProbeHTTP(policy=policy, resolver=hosts) as http:
        direct = await probe_provider(target(tls_fake, "proxy.admin.test", tls=tls), http)
    assert direct.reason == DENIED, direct


# -- token endpoints and the administrator's own endpoints ----------------------------------


async def test_service_account_token_uri_is_judged_by_the_policy() -> None:
    """The `token_uri` of a service-account key comes from a Secret: a metadata address
    there is refused before anything connects — it is not Google's token endpoint
    (`TokenEndpointNotAllowed`, issue 11), and the message does not repeat it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from flokoa_controller.providers import VertexSettings

    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    info = {
        "type": "service_account",
        "client_email": "probe@p.iam.gserviceaccount.com",
        "private_key": pem,
        "private_key_id": "1",
        "token_uri": "http://169.254.169.254/computeMetadata/v1/token",
    }
    vertex = VertexSettings(project_id="p", location="us-central1", service_account_info=info)
    provider = ProbeTarget(kind="google", flavor="vertex", vertex=vertex, timeout=5)
    async with ProbeHTTP() as http:
        result = await probe_provider(provider, http)
    assert result.reason == "TokenEndpointNotAllowed", result
    assert "169.254.169.254" not in result.message


async def test_trusted_endpoint_exempts_only_that_endpoint(fake: FakeOpenAI) -> None:
    """`trusted_endpoint` (for the administrator's endpoints, e.g. the metadata server of
    the operator's own identity) lets a request to exactly that host and port through."""
    from flokoa_controller.providers.destinations import trusted_endpoint

    async with ProbeHTTP() as http:
        with trusted_endpoint(fake.url):
            assert (await probe_provider(target(fake), http)).ok
            other = await probe_provider(target(fake, "127.0.0.2"), http)
        after = await probe_provider(target(fake), http)
    assert other.reason == DENIED, other
    assert after.reason == DENIED, after
    assert len(fake.requests) == 1


async def test_proxy_target_unknown_locally_is_left_to_the_proxy(
    tls_fake: FakeOpenAI, ca: trustme.CA, proxy: FakeProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CONNECT target that does not resolve locally is judged by its host patterns alone:
    the proxy, which may know the name, gets the CONNECT; a denied pattern still refuses.
    (Here the local resolver knows nothing, and the proxy resolves `localhost` itself.)"""
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    tls = TLSSettings(ca_pem=ca.cert_pem.bytes())
    policy = DestinationPolicy.build(deny="*.blocked.test")
    async with ProbeHTTP(policy=policy, resolver=HostsResolver()) as http:
        left = await probe_provider(target(tls_fake, "localhost", tls=tls), http)
        refused = await probe_provider(target(tls_fake, "x.blocked.test", tls=tls), http)
    assert left.ok, left
    assert proxy.connects == [f"localhost:{tls_fake.port}"]
    assert refused.reason == DENIED, refused
