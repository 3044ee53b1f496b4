"""What build of modeltap is running: the labels of the ``modeltap_<subsystem>_build_info`` metric.

The version is the package's; the revision is the source commit the image was built from,
``MODELTAP_BUILD_REVISION`` in the image's environment (``unknown`` outside an image). Both the
sidecar and the analyzer also export the standard ``process_*`` metrics (CPU seconds, resident
memory, open file descriptors, start time) on their /metrics, which a custom registry lacks
unless the process collector is registered on it.
"""

from __future__ import annotations

import os
import platform

from prometheus_client import CollectorRegistry, Gauge, ProcessCollector

from modeltap import __version__

REVISION_ENV = "MODELTAP_BUILD_REVISION"


def build_labels() -> dict[str, str]:
    return {
        "version": __version__,
        "revision": os.environ.get(REVISION_ENV, "") or "unknown",
        "python_version": platform.python_version(),
    }


def register_process_metrics(registry: CollectorRegistry, subsystem: str) -> Gauge:
    """Register ``process_*`` and ``modeltap_<subsystem>_build_info`` (always 1) on ``registry``."""
    ProcessCollector(registry=registry)
    labels = build_labels()
    info = Gauge(
        f"modeltap_{subsystem}_build_info",
        f"Always 1; the labels say which modeltap build the {subsystem} runs.",
        list(labels),
        registry=registry,
    )
    info.labels(**labels).set(1)
    return info
