"""Each ``[[endpoints]]`` table of monitor.toml made a ``Target``: its baseline read and checked,
and the settings and baselines of each section it configures (``Target.sections``). A baseline
that is unusable is one line (``analyzer.baseline_files``); a bad table a ConfigError."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from analyzer.attribution.kernel_shap import Background
from analyzer.attribution.run import AttributionTarget
from analyzer.attribution.section import ATTRIBUTION
from analyzer.baseline_files import check_constraints_file, parse_json, read_profile
from analyzer.bias.run import BiasTarget
from analyzer.bias.section import BIAS
from analyzer.config import (
    AttributionConfig,
    BiasConfig,
    EndpointConfig,
    GroundTruthConfig,
    LLMConfig,
    QualityConfig,
)
from analyzer.dataset_objects import missing_dataset_dir
from analyzer.errors import BaselineFormatError
from analyzer.groundtruth import PredictionSpec
from analyzer.hooks import load_hook
from analyzer.llm.descriptors import DescriptorSettings
from analyzer.llm.run import LLMTarget
from analyzer.llm.section import LLM
from analyzer.profile import Profile
from analyzer.quality import Calibration, ProblemType
from analyzer.quality.run import QualityTarget
from analyzer.quality.section import QUALITY
from analyzer.targets import BatchDataset, Target
from modeltap.core.errors import ConfigError
from modeltap.core.store import open_store
from modeltap.core.store_config import StoreConnection

log = logging.getLogger("analyzer.monitor")
NO_GROUND_TRUTH = GroundTruthConfig()


async def _read_baseline(uri: str, store_cfg: StoreConnection) -> tuple[Any, Any]:
    stats, constraints = await _read_json(uri, ("statistics.json", "constraints.json"), store_cfg)
    return stats, constraints


async def load_quality(
    q: QualityConfig, ground_truth: GroundTruthConfig, store_cfg: StoreConnection
) -> QualityTarget:
    stats, constraints = await _read_baseline(q.baseline, store_cfg)
    calibration = None
    if (stats.get("modeltap") or {}).get("calibration") is not None:
        calibration = Calibration.from_statistics(stats)
    return QualityTarget(
        ProblemType.parse(q.problem_type),
        stats,
        constraints,
        PredictionSpec(
            inference_index=q.inference_index,
            probability_index=q.probability_index,
            inference_attribute=q.inference_attribute,
            probability_attribute=q.probability_attribute,
            probability_threshold=q.probability_threshold,
        ),
        ground_truth=q.ground_truth or ground_truth.destination,
        label_delay=dt.timedelta(hours=q.label_delay_hours),
        positive_label=q.positive_label
        if q.positive_label is not None
        else (stats.get("modeltap") or {}).get("positive_label"),
        calibration=calibration,
    )


async def _read_json(uri: str, names: tuple[str, ...], store_cfg: StoreConnection) -> list[Any]:
    """The baseline files ``names`` under ``uri``; one that is not JSON is a BaselineFormatError."""
    store = open_store(uri, store_cfg)
    try:
        base = uri.rstrip("/")
        return [parse_json(await store.get(name), f"{base}/{name}") for name in names]
    finally:
        await store.close()


async def load_bias(
    b: BiasConfig, columns: tuple[str, ...], store_cfg: StoreConnection
) -> BiasTarget:
    analysis, constraints = await _read_json(
        b.baseline, ("analysis.json", "constraints.json"), store_cfg
    )
    missing = [c for c in (b.facet, b.group) if c and c not in columns]
    if missing:
        raise ConfigError(
            f"[endpoints.bias] column(s) {', '.join(missing)} are not among the endpoint's "
            f"input columns ({', '.join(columns)})"
        )
    return BiasTarget(
        (b.facet_spec(),),
        analysis,
        constraints,
        b.spec(),
        columns,
        positive_values=(b.positive_label,),
        group=b.group or None,
        bootstrap=b.bootstrap,
    )


async def load_attribution(a: AttributionConfig, store_cfg: StoreConnection) -> AttributionTarget:
    analysis, background = await _read_json(
        a.baseline, ("analysis.json", "background.json"), store_cfg
    )
    try:
        features = tuple(str(f) for f in background["features"])
        rows = Background.of(background["rows"], background["weights"])
        nsamples = a.nsamples if a.nsamples is not None else background.get("nsamples")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BaselineFormatError(
            f"{a.baseline.rstrip('/')}/background.json does not follow the format "
            f"(features, rows, weights): {type(exc).__name__}: {exc}"
        ) from None
    return AttributionTarget(
        analysis, features, rows, a.client(), rows=a.rows, nsamples=nsamples,
        threshold=a.threshold, labels=a.output_labels,
    )  # fmt: skip


async def load_llm(c: LLMConfig, store_cfg: StoreConnection) -> LLMTarget:
    stats, constraints, llm = await _read_json(
        c.baseline, ("statistics.json", "constraints.json", "llm.json"), store_cfg
    )
    base = c.baseline.rstrip("/")
    profile = read_profile(stats, f"{base}/statistics.json")
    for warning in check_constraints_file(constraints, f"{base}/constraints.json", strict=False):
        log.warning("%s", warning)
    try:
        settings = DescriptorSettings.from_json(
            llm.get("settings") if isinstance(llm, dict) else None
        )
    except (ValueError, TypeError) as exc:
        raise BaselineFormatError(f"{base}/llm.json: settings: {exc}") from None
    return LLMTarget(profile, constraints, settings, base)


async def load_sections(
    endpoint: EndpointConfig,
    columns: tuple[str, ...],
    ground_truth: GroundTruthConfig,
    store_cfg: StoreConnection,
) -> dict[str, Any]:
    """The settings and baselines of each section the [[endpoints]] table configures."""
    found: dict[str, Any] = {}
    if endpoint.quality is not None:
        found[QUALITY.name] = await load_quality(endpoint.quality, ground_truth, store_cfg)
    if endpoint.bias is not None:
        found[BIAS.name] = await load_bias(endpoint.bias, columns, store_cfg)
    if endpoint.attribution is not None:
        found[ATTRIBUTION.name] = await load_attribution(endpoint.attribution, store_cfg)
    if endpoint.llm is not None:
        found[LLM.name] = await load_llm(endpoint.llm, store_cfg)
    return found


async def load_target(
    endpoint: EndpointConfig,
    store_cfg: StoreConnection,
    ground_truth: GroundTruthConfig = NO_GROUND_TRUTH,
    *,
    strict_constraints: bool = False,
) -> Target:
    """The target of one [[endpoints]] table, its baselines read and checked (one line each if
    one is unusable: ``analyzer.baseline_files``)."""
    if endpoint.dataset and (missing := missing_dataset_dir(endpoint.dataset)) is not None:
        raise ConfigError(
            f"[[endpoints]] {endpoint.name}/{endpoint.variant}: dataset {endpoint.dataset}: "
            f"no such directory {missing}"
        )
    if endpoint.baseline:
        stats, constraints = await _read_baseline(endpoint.baseline, store_cfg)
        base = endpoint.baseline.rstrip("/")
        profile = read_profile(stats, f"{base}/statistics.json")
        for warning in check_constraints_file(
            constraints, f"{base}/constraints.json", strict=strict_constraints
        ):
            log.warning("%s", warning)
    else:  # an LLM endpoint without tabular checks (EndpointConfig.validate)
        profile, constraints = Profile(), {}
    columns = tuple(c for c in profile.columns if c not in endpoint.output_columns)
    return Target(
        endpoint.name,
        endpoint.variant,
        profile,
        constraints,
        target_model=endpoint.target_model,
        output_columns=endpoint.output_columns,
        preprocessor=load_hook(endpoint.preprocessor) if endpoint.preprocessor else None,
        post_analytics=load_hook(endpoint.post_analytics) if endpoint.post_analytics else None,
        batch=BatchDataset(
            endpoint.dataset,
            format=endpoint.dataset_format or None,
            header=endpoint.dataset_header,
            partitioned=endpoint.partitioned,
            label_column=endpoint.label_column,
            prediction_column=endpoint.prediction_column,
            probability_column=endpoint.probability_column,
            id_column=endpoint.id_column,
        )
        if endpoint.dataset
        else None,
        baseline_uri=endpoint.baseline.rstrip("/"),
        sections=await load_sections(endpoint, columns, ground_truth, store_cfg),
    )
