"""Where each provider's API is: the one source of endpoint facts.

Every rule about a provider's hosts lives here once, and both the probes and
``status.endpoint`` (``controllers/targets.py``) use it, so the endpoint a ModelProvider
reports is the root its probe calls:

- :func:`api_root`: the API root a probe of a :class:`~.target.ProbeTarget` calls — the
  spec's base URL, else the provider's default (the defaults are declared with the API types,
  `api.modelprovider`, whose CRD defaults they are).
- Bedrock: :func:`bedrock_endpoint` (``endpointURL``, else the operator's
  ``AWS_ENDPOINT_URL_BEDROCK`` / ``AWS_ENDPOINT_URL``, :func:`bedrock_endpoint_overrides`,
  else :func:`bedrock_default_endpoint`); AWS partitions by :func:`aws_domain` (``cn-``
  regions are under ``amazonaws.com.cn``), shared with :func:`sts_endpoint`.
- Vertex AI: :func:`vertex_root` and the hosts it yields, :data:`VERTEX_HOST`.
- Azure OpenAI: :func:`is_azure_host` over ``api.modelprovider.AZURE_OPENAI_HOST_SUFFIXES``
  (declared there because the CRD's ``serviceAccountName`` rule needs them too).
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flokoa_controller.api.modelprovider import (
    ANTHROPIC_DEFAULT_BASE_URL,
    AZURE_OPENAI_HOST_SUFFIXES,
    GEMINI_DEFAULT_BASE_URL,
    OPENAI_DEFAULT_BASE_URL,
)

if TYPE_CHECKING:
    from flokoa_controller.providers.target import ProbeTarget

__all__ = [
    "AWS_DOMAIN",
    "AWS_DOMAIN_CN",
    "VERTEX_HOST",
    "VERTEX_HOST_SUFFIX",
    "api_root",
    "aws_domain",
    "bedrock_default_endpoint",
    "bedrock_endpoint",
    "bedrock_endpoint_overrides",
    "host_of",
    "is_azure_host",
    "sts_endpoint",
    "vertex_root",
]

AWS_DOMAIN = "amazonaws.com"
"""The DNS suffix of AWS service endpoints (the `aws` partition)."""

AWS_DOMAIN_CN = "amazonaws.com.cn"
"""The DNS suffix of AWS service endpoints in the China regions (`cn-*`, `aws-cn`)."""

VERTEX_HOST_SUFFIX = "aiplatform.googleapis.com"
"""Vertex AI's global API host; regional hosts are `LOCATION-` followed by it."""

VERTEX_HOST = re.compile(rf"^([a-z][a-z0-9-]{{0,62}}-)?{re.escape(VERTEX_HOST_SUFFIX)}$")
"""Vertex AI's API hosts: `aiplatform.googleapis.com` and `LOCATION-aiplatform...` (every
host :func:`vertex_root` yields)."""


def host_of(url: str | None) -> str:
    """The lower-cased host of `url` ("" when there is none or `url` is malformed)."""
    if not url:
        return ""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def is_azure_host(base_url: str | None) -> bool:
    """True when `base_url`'s host is an Azure OpenAI / AI Services host."""
    return host_of(base_url).endswith(AZURE_OPENAI_HOST_SUFFIXES)


def vertex_root(location: str) -> str:
    """Vertex AI's API root for `location` (the global host for `global`)."""
    if location == "global":
        return f"https://{VERTEX_HOST_SUFFIX}"
    return f"https://{location}-{VERTEX_HOST_SUFFIX}"


def aws_domain(region: str) -> str:
    """The DNS suffix of AWS endpoints in `region` (`amazonaws.com.cn` for `cn-` regions)."""
    return AWS_DOMAIN_CN if region.startswith("cn-") else AWS_DOMAIN


def bedrock_default_endpoint(region: str) -> str:
    """Bedrock's public endpoint for `region` (what botocore resolves without overrides)."""
    return f"https://bedrock.{region}.{aws_domain(region)}"


def bedrock_endpoint_overrides() -> tuple[str, ...]:
    """The Bedrock endpoints the administrator set in the operator's environment
    (`AWS_ENDPOINT_URL_BEDROCK`, then `AWS_ENDPOINT_URL`; read at use, like botocore)."""
    env = os.environ
    return tuple(v for v in (env.get("AWS_ENDPOINT_URL_BEDROCK"), env.get("AWS_ENDPOINT_URL")) if v)


def bedrock_endpoint(region: str, endpoint_url: str | None) -> str:
    """The Bedrock endpoint a probe calls: `endpointURL`, else the operator's
    `AWS_ENDPOINT_URL_BEDROCK` / `AWS_ENDPOINT_URL`, else the public one for `region`."""
    if endpoint_url:
        return endpoint_url
    overrides = bedrock_endpoint_overrides()
    return overrides[0] if overrides else bedrock_default_endpoint(region)


def sts_endpoint(region: str, regional: bool = True, override: str | None = None) -> str:
    """The AWS STS endpoint: `override` (the operator's), else regional STS in `region`'s
    partition, else (`regional` False) the global one."""
    if override:
        return override
    if not regional:
        return f"https://sts.{AWS_DOMAIN}"
    return f"https://sts.{region}.{aws_domain(region)}"


def api_root(target: ProbeTarget) -> str:
    """The API root the probes of `target` call (before any version path or query).

    `base_url` when the spec sets it; otherwise the provider's default: OpenAI's, Anthropic's
    or the Gemini API's URL, :func:`vertex_root` of the Vertex location, or
    :func:`bedrock_endpoint` of the Bedrock region.
    """
    if target.kind == "bedrock":
        region = target.bedrock.region if target.bedrock is not None else ""
        return bedrock_endpoint(region, target.base_url)
    if target.base_url:
        return target.base_url
    if target.kind == "openai":
        return OPENAI_DEFAULT_BASE_URL
    if target.kind == "anthropic":
        return ANTHROPIC_DEFAULT_BASE_URL
    if target.vertex is not None:
        return vertex_root(target.vertex.location)
    return GEMINI_DEFAULT_BASE_URL
