"""envtest's TokenRequest API and OIDC discovery, checked over HTTP as kube-apiserver answers."""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flokoa_envtest import APIServer
from flokoa_envtest.errors import StatusError
from flokoa_envtest.testing import RawClient

SA = "/api/v1/namespaces/team-a/serviceaccounts"
DISCOVERY_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def _b64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _token_request(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}


@pytest.fixture
async def api() -> AsyncIterator[APIServer]:
    async with APIServer() as server:
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
        server.create_object(ns)
        meta = {"name": "agent", "namespace": "team-a"}
        server.create_object({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta})
        yield server


@pytest.fixture
async def http(api: APIServer) -> AsyncIterator[RawClient]:
    async with RawClient(api.url) as c:
        yield c


def _verify(token: str, jwks: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) after checking the RS256 signature against ``jwks`` (independently)."""
    head, payload, sig = token.split(".")
    header = json.loads(_b64(head))
    (jwk,) = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    public = rsa.RSAPublicNumbers(
        int.from_bytes(_b64(jwk["e"]), "big"), int.from_bytes(_b64(jwk["n"]), "big")
    ).public_key()
    public.verify(_b64(sig), f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return header, json.loads(_b64(payload))


async def test_token_request_mints_a_signed_service_account_token(
    api: APIServer, http: RawClient
) -> None:
    reply = await http.request(
        "POST",
        f"{SA}/agent/token",
        _token_request(audiences=["sts.amazonaws.com"], expirationSeconds=900),
    )
    assert reply.status == 201, reply.body
    body = reply.body
    assert body["kind"] == "TokenRequest"
    assert body["apiVersion"] == "authentication.k8s.io/v1"
    assert body["metadata"]["name"] == "agent"
    assert body["metadata"]["namespace"] == "team-a"
    assert body["spec"]["audiences"] == ["sts.amazonaws.com"]
    assert body["spec"]["expirationSeconds"] == 900
    jwks = (await http.get("/openid/v1/jwks")).body
    header, claims = _verify(body["status"]["token"], jwks)
    assert header["alg"] == "RS256"
    sa = api.get_object("v1", "ServiceAccount", "agent", "team-a")
    assert claims["iss"] == api.service_account_issuer == api.url
    assert claims["sub"] == "system:serviceaccount:team-a:agent"
    assert claims["aud"] == ["sts.amazonaws.com"]
    assert claims["exp"] - claims["iat"] == 900
    assert claims["nbf"] == claims["iat"]
    assert claims["jti"]
    assert claims["kubernetes.io"] == {
        "namespace": "team-a",
        "serviceaccount": {"name": "agent", "uid": sa["metadata"]["uid"]},
    }
    expiry = datetime.fromtimestamp(claims["exp"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body["status"]["expirationTimestamp"] == expiry
    (entry,) = api.audit.filter(resource="serviceaccounts")
    assert (entry.verb, entry.subresource, entry.code) == ("create", "token", 201)


async def test_defaults_one_hour_and_the_issuer_as_audience(
    api: APIServer, http: RawClient
) -> None:
    reply = await http.request("POST", f"{SA}/agent/token", _token_request())
    assert reply.status == 201
    assert reply.body["spec"] == {
        "audiences": [api.url],
        "expirationSeconds": 3600,
        "boundObjectRef": None,
    }
    _, claims = _verify(reply.body["status"]["token"], api.jwks())
    assert claims["aud"] == [api.url]


async def test_errors_are_kube_apiserver_statuses(api: APIServer, http: RawClient) -> None:
    missing = await http.request("POST", f"{SA}/nobody/token", _token_request())
    assert missing.status == 404
    assert missing.body["reason"] == "NotFound"
    assert missing.body["message"] == 'serviceaccounts "nobody" not found'
    assert missing.body["details"] == {"name": "nobody", "kind": "serviceaccounts"}

    short = await http.request("POST", f"{SA}/agent/token", _token_request(expirationSeconds=599))
    assert short.status == 422
    assert short.body["reason"] == "Invalid"
    assert short.body["message"] == (
        'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid '
        "value: 599: may not specify a duration less than 10 minutes"
    )
    assert short.body["details"] == {
        "group": "authentication.k8s.io",
        "kind": "TokenRequest",
        "causes": [
            {
                "reason": "FieldValueInvalid",
                "message": "Invalid value: 599: may not specify a duration less than 10 minutes",
                "field": "spec.expirationSeconds",
            }
        ],
    }
    other_name = await http.request(
        "POST",
        f"{SA}/agent/token",
        {**_token_request(), "metadata": {"name": "someone-else"}},
    )
    assert other_name.status == 422
    assert "must match the service account name if specified" in other_name.body["message"]
    get = await http.get(f"{SA}/agent/token")
    assert get.status == 405
    pod = await http.request(
        "POST",
        f"{SA}/agent/token",
        _token_request(boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "p"}),
    )
    assert (pod.status, pod.body["message"]) == (404, 'pods "p" not found')
    cm = await http.request(
        "POST",
        f"{SA}/agent/token",
        _token_request(boundObjectRef={"kind": "ConfigMap", "apiVersion": "v1", "name": "c"}),
    )
    assert cm.status == 400
    assert cm.body["message"] == (
        'cannot bind token for serviceaccount "agent" to object of kind "ConfigMap"'
    )
    assert api.issuer.minted == 0, "no token was minted for any refused request"
    codes = [(e.subresource, e.code) for e in api.audit.filter(resource="serviceaccounts")]
    assert codes == [
        ("token", 404),
        ("token", 422),
        ("token", 422),
        ("token", 405),
        ("token", 404),
        ("token", 400),
    ]


async def test_token_bound_to_a_secret_names_it(api: APIServer, http: RawClient) -> None:
    secret = api.create_object(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "team-a"}}
    )
    uid = secret["metadata"]["uid"]
    ref = {"kind": "Secret", "apiVersion": "v1", "name": "s", "uid": uid}
    reply = await http.request("POST", f"{SA}/agent/token", _token_request(boundObjectRef=ref))
    assert reply.status == 201
    _, claims = _verify(reply.body["status"]["token"], api.jwks())
    assert claims["kubernetes.io"]["secret"] == {"name": "s", "uid": uid}
    stale = await http.request(
        "POST", f"{SA}/agent/token", _token_request(boundObjectRef={**ref, "uid": "other"})
    )
    assert stale.status == 409


async def test_oidc_discovery_documents(api: APIServer, http: RawClient) -> None:
    config = await http.get("/.well-known/openid-configuration")
    assert config.status == 200
    assert config.body == {
        "issuer": api.url,
        "jwks_uri": f"{api.url}/openid/v1/jwks",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    jwks = await http.get("/openid/v1/jwks")
    assert jwks.headers["Content-Type"] == "application/jwk-set+json"
    (key,) = jwks.body["keys"]
    assert {k: key[k] for k in ("use", "kty", "alg", "e")} == {
        "use": "sig",
        "kty": "RSA",
        "alg": "RS256",
        "e": "AQAB",
    }
    assert key["kid"]
    assert key == api.jwks()["keys"][0]


async def test_tls_server_serves_discovery_without_a_token() -> None:
    async with APIServer(tls=True, service_account_issuer="https://issuer.example") as api:
        ctx = ssl.create_default_context(cafile=str(api.ca_path))
        async with RawClient(api.url, ssl_context=ctx) as anonymous:
            config = await anonymous.get("/.well-known/openid-configuration")
            assert config.status == 200
            assert config.body["issuer"] == "https://issuer.example"
            assert (await anonymous.get("/openid/v1/jwks")).status == 200
            denied = await anonymous.request("POST", f"{SA}/agent/token", _token_request())
            assert denied.status == 401


async def test_discovery_lists_the_token_subresource(http: RawClient) -> None:
    legacy = (await http.get("/api/v1")).body
    (entry,) = [r for r in legacy["resources"] if r["name"] == "serviceaccounts/token"]
    assert entry == {
        "name": "serviceaccounts/token",
        "singularName": "",
        "namespaced": True,
        "group": "authentication.k8s.io",
        "version": "v1",
        "kind": "TokenRequest",
        "verbs": ["create"],
    }
    aggregated = (await http.request("GET", "/api", headers={"Accept": DISCOVERY_V2})).body
    (core,) = aggregated["items"]
    (sa,) = [r for r in core["versions"][0]["resources"] if r["resource"] == "serviceaccounts"]
    kind = {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"}
    assert sa["subresources"] == [
        {"subresource": "token", "responseKind": kind, "verbs": ["create"]}
    ]


async def test_in_process_create_token(api: APIServer) -> None:
    token = api.create_token("team-a", "agent", ["api://AzureADTokenExchange"], 600)
    _, claims = _verify(token, api.jwks())
    assert claims["aud"] == ["api://AzureADTokenExchange"]
    assert claims["exp"] - claims["iat"] == 600
    with pytest.raises(StatusError) as missing:
        api.create_token("team-b", "agent")
    assert missing.value.code == 404
    with pytest.raises(StatusError) as short:
        api.create_token("team-a", "agent", expiration_seconds=60)
    assert short.value.code == 422
