"""Feature-attribution drift: Kernel SHAP against the served model, compared by NDCG.

* ``kernel_shap``: model-agnostic Kernel SHAP in numpy (``KernelExplainer`` with ``plan`` /
  ``solve`` so that scoring can happen over the network; ``summarize`` / ``means`` for the
  background; ``explain_async`` to drive it with an async scorer).
* ``client.ModelClient``: scores the synthetic rows on the model server with batched requests,
  bounded concurrency, a token-bucket rate limit, timeouts and retries.
* ``ndcg``: the NDCG of feature rankings, the ``feature_attribution_drift_check`` violation,
  and the attributions report in Clarify's layout.
"""

from __future__ import annotations

from analyzer.attribution.client import ModelClient, ModelClientConfig, TokenBucket
from analyzer.attribution.errors import AttributionError, ModelCallError, ModelResponseError
from analyzer.attribution.kernel_shap import (
    Background,
    Explanation,
    KernelExplainer,
    explain_async,
    means,
    summarize,
)
from analyzer.attribution.ndcg import check, compare, ndcg, report

__all__ = [
    "AttributionError",
    "Background",
    "Explanation",
    "KernelExplainer",
    "ModelCallError",
    "ModelClient",
    "ModelClientConfig",
    "ModelResponseError",
    "TokenBucket",
    "check",
    "compare",
    "explain_async",
    "means",
    "ndcg",
    "report",
    "summarize",
]
