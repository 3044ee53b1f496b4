"""Each ``[[endpoints]]`` table of monitor.toml made a ``Target``: its baseline read and checked,
and the settings and baselines of each section it configures (``Target.sections``). A baseline
that is unusable is one line (``analyzer.baseline_files``); a bad table a ConfigError."""

from __future__ import annotations

import logging
from typing import Any

from analyzer.baseline_files import check_constraints_file, read_json_files, read_profile
from analyzer.config import EndpointConfig, GroundTruthConfig
from analyzer.dataset_objects import missing_dataset_dir
from analyzer.hooks import load_hook
from analyzer.profile import Profile
from analyzer.registry import SECTIONS
from analyzer.section import LoadInput
from analyzer.targets import BatchDataset, Target
from modeltap.core.errors import ConfigError
from modeltap.core.store_config import StoreConnection

log = logging.getLogger("analyzer.monitor")
NO_GROUND_TRUTH = GroundTruthConfig()


async def load_sections(
    endpoint: EndpointConfig,
    columns: tuple[str, ...],
    ground_truth: GroundTruthConfig,
    store_cfg: StoreConnection,
) -> dict[str, Any]:
    """What each section whose [endpoints.<section>] table is given reads (its ``load``)."""
    source = LoadInput(
        f"[[endpoints]] {endpoint.name}/{endpoint.variant}",
        columns,
        ground_truth.destination,
        store_cfg,
    )
    found: dict[str, Any] = {}
    for section in SECTIONS:
        if section.name in endpoint.sections:
            found[section.name] = await section.load(endpoint.sections[section.name], source)
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
        stats, constraints = await read_json_files(
            endpoint.baseline, ("statistics.json", "constraints.json"), store_cfg
        )
        base = endpoint.baseline.rstrip("/")
        profile = read_profile(stats, f"{base}/statistics.json")
        for warning in check_constraints_file(
            constraints, f"{base}/constraints.json", strict=strict_constraints
        ):
            log.warning("%s", warning)
    else:  # no data baseline (a section that stands alone, EndpointConfig.validate): no data
        profile, constraints = Profile(), {}  # quality (DATA.configured is false)
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
