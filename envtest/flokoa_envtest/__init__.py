"""envtest: an in-memory stand-in for kube-apiserver (tests, benchmarks, the dev cluster).

Start one with ``async with APIServer(...) as api:`` (see :mod:`.server`) or
``flokoa-controller envtest``. The operator packages never import this package.
"""

from flokoa_envtest.audit import AuditEntry, AuditLog
from flokoa_envtest.errors import StatusError
from flokoa_envtest.faults import Faults
from flokoa_envtest.server import APIServer

__all__ = ["APIServer", "AuditEntry", "AuditLog", "Faults", "StatusError"]
