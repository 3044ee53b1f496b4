"""The data baseline's builder (``modeltap baseline`` without a section's flag): the training
dataset profiled (statistics.json) and the suggested constraints (constraints.json), in two passes,
file by file, on local processes or a Dask cluster."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from analyzer.baseline import build_baseline, mismatch_report, write_baseline
from analyzer.baseline_job import ColumnsConfig, Job
from analyzer.constraints import ConstraintOptions
from analyzer.engine import open_engine
from analyzer.inference import InferredType
from analyzer.profile import ProfileConfig
from analyzer.progress import Progress
from analyzer.sources import DataSource
from modeltap.core.errors import ConfigError
from modeltap.core.settings import setting


@dataclass(frozen=True)
class ConstraintsOptions:
    """suggested constraints"""

    completeness_tolerance: float = setting(
        0.0,
        "Write each observed completeness minus F, a fixed floor (0: the observed share, tested "
        "for a significant rise).",
        min=0,
        max=1,
        flag="--completeness-tolerance",
        metavar="F",
    )
    domain_max_values: int = setting(
        20,
        "String columns with at most N distinct values get a domain list.",
        min=0,
        flag="--domain-max-values",
        metavar="N",
    )
    comparison_threshold: float = setting(
        0.1, "Drift distance threshold.", min=0, flag="--comparison-threshold", metavar="F"
    )
    comparison_method: Literal["Simple", "Robust"] = setting(
        "Robust", "Numeric drift comparison.", flag="--comparison-method"
    )
    categorical_drift_method: Literal["LInfinity", "ChiSquared"] = setting(
        "LInfinity", "Categorical drift comparison.", flag="--categorical-drift-method"
    )


def constraint_options(cons: ConstraintsOptions) -> ConstraintOptions:
    """What the constraint suggestion reads of the options (the LLM baseline's too)."""
    return ConstraintOptions(
        completeness_tolerance=cons.completeness_tolerance,
        domain_max_values=cons.domain_max_values,
        comparison_threshold=cons.comparison_threshold,
        comparison_method=cons.comparison_method,
        categorical_comparison_threshold=cons.comparison_threshold,
        categorical_drift_method=cons.categorical_drift_method,
    )


@dataclass(frozen=True)
class ProfileOptions:
    """summary sizes"""

    kll_k: int = setting(
        2048, "KLL sketch k (2048: 0.18% CDF rank error).", min=8, max=65535, flag="--kll-k"
    )
    bins: int = setting(1000, "Quantile-anchored bins per numeric column.", min=1, flag="--bins")
    category_cap: int = setting(
        10_000, "Distinct strings counted exactly.", min=1, flag="--category-cap"
    )
    cpc_lg_k: int = setting(
        12, "log2 size of the distinct-count sketch.", min=4, max=26, flag="--cpc-lg-k"
    )


@dataclass(frozen=True)
class ScaleOutOptions:
    """scale-out

    Both passes profile file by file on a pool of local processes (default, one per usable core;
    a dataset under 32 MiB or a single file stays in this process) or on a Dask cluster."""

    engine: Literal["local", "dask"] = setting(
        "local", "Local processes, or a Dask cluster.", flag="--engine"
    )
    scheduler: str = setting(
        "",
        "dask: the scheduler, e.g. tcp://dask-scheduler:8786 ('': start a LocalCluster).",
        flag="--scheduler",
        metavar="ADDRESS",
    )
    workers: int = setting(
        0,
        "Local processes, or LocalCluster workers (0: the usable cores the memory limit has "
        "room for; 1: in this process).",
        min=0,
        flag="--workers",
        metavar="N",
    )


class DataBaseline:
    """The default: built when no other section's options ask for theirs."""

    tables: Mapping[str, type[Any]] = {
        "constraints": ConstraintsOptions,
        "profile": ProfileOptions,
        "scaleout": ScaleOutOptions,
    }

    alone = False

    def wanted(self, tables: Mapping[str, Any]) -> bool:
        return False  # chosen by ``analyzer.baseline_run`` when no other builder is

    def validate(self, columns: ColumnsConfig, tables: Mapping[str, Any]) -> None:
        return None

    def build(self, job: Job) -> int:
        return build_data_baseline(job)


def build_data_baseline(job: Job) -> int:
    """The data baseline of the dataset, written to ``job.output``; exit status 0."""
    cons = job.table("constraints", ConstraintsOptions)
    prof_opts = job.table("profile", ProfileOptions)
    scale = job.table("scaleout", ScaleOutOptions)
    options = job.read.options()
    store = job.store
    config = ProfileConfig(
        kll_k=prof_opts.kll_k,
        n_bins=prof_opts.bins,
        category_cap=prof_opts.category_cap,
        cpc_lg_k=prof_opts.cpc_lg_k,
        mixed_type_threshold=job.columns.mixed_type_threshold,
        type_overrides=job.columns.overrides(),
        label=job.columns.label,
        prediction=job.columns.prediction,
    )
    constraints = constraint_options(cons)
    source = DataSource(job.inputs, options, store)
    enabled = {"auto": None, "always": True, "never": False}[job.progress]
    progress = Progress(source.total_bytes, enabled=False if job.quiet else enabled)
    try:
        engine = open_engine(scale.engine, scheduler=scale.scheduler, workers=scale.workers)
    except (OSError, TimeoutError, ValueError) as exc:  # e.g. no scheduler at that address
        raise ConfigError(f"--engine {scale.engine}: {exc}") from None
    try:
        prof = build_baseline(
            source,
            config,
            allow_unknown=job.columns.allow_empty_columns,
            progress=progress,
            engine=engine,
        )
    finally:
        engine.close()
    stats_path, cons_path = write_baseline(prof, job.output, constraints, store_config=store)
    if not job.quiet:
        types = prof.inferred_types()
        summary = ", ".join(
            f"{sum(1 for v in types.values() if v is t)} {t.value}"
            for t in InferredType
            if any(v is t for v in types.values())
        )
        print(
            f"profiled {prof.item_count:,} rows x {len(prof.columns)} columns ({summary})",
            file=sys.stderr,
        )
        for note in mismatch_report(prof):
            print(f"note: {note}", file=sys.stderr)
        print(f"wrote {stats_path}\nwrote {cons_path}", file=sys.stderr)
    return 0


DATA_BASELINE = DataBaseline()
