"""Prometheus metric families of the controller runtime (controller-runtime's names).

All families live on prometheus-client's default registry, so the manager's ``/metrics``
endpoint (``prometheus_client.generate_latest()``) exposes them, and the dashboards and alerts
written for controller-runtime operators work unchanged. Names, labels and buckets follow
controller-runtime:

- ``controller_runtime_reconcile_total{controller,result}`` (result: success, error, requeue,
  requeue_after), ``controller_runtime_reconcile_errors_total{controller}``,
  ``controller_runtime_terminal_reconcile_errors_total{controller}``,
  ``controller_runtime_reconcile_panics_total{controller}``,
  ``controller_runtime_reconcile_time_seconds{controller}``,
  ``controller_runtime_active_workers{controller}``,
  ``controller_runtime_max_concurrent_reconciles{controller}``;
- ``workqueue_*{name,controller}`` (both labels carry the queue's name, which is the
  controller's name);
- ``leader_election_master_status{name}``;
- ``flokoa_reflector_streaming_list_fallbacks_total{resource}`` (ours: streaming lists that
  failed and fell back to list+watch; client-go has no such family).

Use :func:`init_controller_metrics` when a controller is created so that every series exists
(at 0) before the first reconcile.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "ACTIVE_WORKERS",
    "LEADER_ELECTION_MASTER_STATUS",
    "MAX_CONCURRENT_RECONCILES",
    "RECONCILE_ERRORS",
    "RECONCILE_PANICS",
    "RECONCILE_RESULTS",
    "RECONCILE_TIME",
    "RECONCILE_TIME_BUCKETS",
    "RECONCILE_TOTAL",
    "REFLECTOR_STREAMING_LIST_FALLBACKS",
    "TERMINAL_RECONCILE_ERRORS",
    "WORKQUEUE_ADDS",
    "WORKQUEUE_DEPTH",
    "WORKQUEUE_DURATION_BUCKETS",
    "WORKQUEUE_LONGEST_RUNNING_PROCESSOR",
    "WORKQUEUE_QUEUE_DURATION",
    "WORKQUEUE_RETRIES",
    "WORKQUEUE_UNFINISHED_WORK",
    "WORKQUEUE_WORK_DURATION",
    "init_controller_metrics",
    "init_workqueue_metrics",
]

RECONCILE_RESULTS = ("success", "error", "requeue", "requeue_after")
"""Values of the ``result`` label of ``controller_runtime_reconcile_total``."""

RECONCILE_TIME_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8,
    0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0,
    15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0,
)  # fmt: skip
"""controller-runtime's buckets for ``controller_runtime_reconcile_time_seconds``."""

WORKQUEUE_DURATION_BUCKETS: tuple[float, ...] = tuple(float(f"1e{e}") for e in range(-8, 4))
"""Exponential buckets from 1e-8 s by a factor 10, 12 of them (up to 1e3), as controller-runtime."""

RECONCILE_TOTAL = Counter(
    "controller_runtime_reconcile_total",
    "Total number of reconciliations per controller",
    ["controller", "result"],
)
RECONCILE_ERRORS = Counter(
    "controller_runtime_reconcile_errors_total",
    "Total number of reconciliation errors per controller",
    ["controller"],
)
TERMINAL_RECONCILE_ERRORS = Counter(
    "controller_runtime_terminal_reconcile_errors_total",
    "Total number of terminal reconciliation errors per controller",
    ["controller"],
)
RECONCILE_PANICS = Counter(
    "controller_runtime_reconcile_panics_total",
    "Total number of reconciliation panics per controller",
    ["controller"],
)
RECONCILE_TIME = Histogram(
    "controller_runtime_reconcile_time_seconds",
    "Length of time per reconciliation per controller",
    ["controller"],
    buckets=RECONCILE_TIME_BUCKETS,
)
ACTIVE_WORKERS = Gauge(
    "controller_runtime_active_workers",
    "Number of currently used workers per controller",
    ["controller"],
)
MAX_CONCURRENT_RECONCILES = Gauge(
    "controller_runtime_max_concurrent_reconciles",
    "Maximum number of concurrent reconciles per controller",
    ["controller"],
)

_WQ_LABELS = ["name", "controller"]

WORKQUEUE_DEPTH = Gauge("workqueue_depth", "Current depth of workqueue", _WQ_LABELS)
WORKQUEUE_ADDS = Counter(
    "workqueue_adds_total", "Total number of adds handled by workqueue", _WQ_LABELS
)
WORKQUEUE_RETRIES = Counter(
    "workqueue_retries_total", "Total number of retries handled by workqueue", _WQ_LABELS
)
WORKQUEUE_QUEUE_DURATION = Histogram(
    "workqueue_queue_duration_seconds",
    "How long in seconds an item stays in workqueue before being requested",
    _WQ_LABELS,
    buckets=WORKQUEUE_DURATION_BUCKETS,
)
WORKQUEUE_WORK_DURATION = Histogram(
    "workqueue_work_duration_seconds",
    "How long in seconds processing an item from workqueue takes.",
    _WQ_LABELS,
    buckets=WORKQUEUE_DURATION_BUCKETS,
)
WORKQUEUE_UNFINISHED_WORK = Gauge(
    "workqueue_unfinished_work_seconds",
    "How many seconds of work has been done that is in progress and hasn't been observed "
    "by work_duration. Large values indicate stuck threads. One can deduce the number of "
    "stuck threads by observing the rate at which this increases.",
    _WQ_LABELS,
)
WORKQUEUE_LONGEST_RUNNING_PROCESSOR = Gauge(
    "workqueue_longest_running_processor_seconds",
    "How many seconds has the longest running processor for workqueue been running.",
    _WQ_LABELS,
)

LEADER_ELECTION_MASTER_STATUS = Gauge(
    "leader_election_master_status",
    "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, "
    "1 indicates master. 'name' is the string used to identify the lease. Please make sure "
    "to group by name.",
    ["name"],
)


def init_workqueue_metrics(name: str) -> None:
    """Create every ``workqueue_*`` series of the queue ``name`` (at 0)."""
    for family in (
        WORKQUEUE_DEPTH,
        WORKQUEUE_ADDS,
        WORKQUEUE_RETRIES,
        WORKQUEUE_QUEUE_DURATION,
        WORKQUEUE_WORK_DURATION,
        WORKQUEUE_UNFINISHED_WORK,
        WORKQUEUE_LONGEST_RUNNING_PROCESSOR,
    ):
        family.labels(name, name)


def init_controller_metrics(controller: str, max_concurrent_reconciles: int = 1) -> None:
    """Create every ``controller_runtime_*`` series of ``controller`` at 0 (result labels too).

    Also sets ``controller_runtime_max_concurrent_reconciles`` and resets
    ``controller_runtime_active_workers`` to 0.
    """
    for result in RECONCILE_RESULTS:
        RECONCILE_TOTAL.labels(controller, result)
    for family in (RECONCILE_ERRORS, TERMINAL_RECONCILE_ERRORS, RECONCILE_PANICS, RECONCILE_TIME):
        family.labels(controller)
    ACTIVE_WORKERS.labels(controller).set(0)
    MAX_CONCURRENT_RECONCILES.labels(controller).set(max_concurrent_reconciles)


REFLECTOR_STREAMING_LIST_FALLBACKS = Counter(
    "flokoa_reflector_streaming_list_fallbacks_total",
    "Streaming lists (watch with sendInitialEvents) that failed before their initial state "
    "and fell back to list+watch, by resource",
    ["resource"],
)
