"""kube: talking to the API server (configuration, resource paths, typed errors, client).

The client is generic: it knows REST paths and Status bodies, nothing of the operator's
own kinds.
"""

from flokoa_controller.kube.client import ClientOptions, KubeClient, PatchType
from flokoa_controller.kube.config import (
    ClusterConfig,
    ConfigError,
    load_config,
    load_incluster,
    load_kubeconfig,
)
from flokoa_controller.kube.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    Gone,
    Invalid,
    MethodNotAllowed,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    error_from_response,
)
from flokoa_controller.kube.resources import (
    CONFIGMAPS,
    CRDS,
    EVENTS,
    LEASES,
    NAMESPACES,
    SECRETS,
    ResourceType,
)
from flokoa_controller.kube.retry import RetryPolicy
from flokoa_controller.kube.tokens import TokenSource
from flokoa_controller.kube.watch import WatchEvent

__all__ = [
    "CONFIGMAPS",
    "CRDS",
    "EVENTS",
    "LEASES",
    "NAMESPACES",
    "SECRETS",
    "AlreadyExists",
    "ApiError",
    "BadRequest",
    "ClientOptions",
    "ClusterConfig",
    "ConfigError",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubeClient",
    "MethodNotAllowed",
    "NotFound",
    "PatchType",
    "ResourceType",
    "RetryPolicy",
    "ServerError",
    "TokenSource",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "WatchEvent",
    "error_from_response",
    "load_config",
    "load_incluster",
    "load_kubeconfig",
]
