"""The baselines ``modeltap baseline`` builds: data quality, model quality, bias, attribution.

:func:`run` builds the one its :class:`Job`'s options (``analyzer.baseline_config``) ask for and
writes it; a ConfigError is a bad option (exit 2), another ModeltapError unusable data (exit 1).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from analyzer.baseline import build_baseline, mismatch_report, write_baseline
from analyzer.baseline_config import BaselineConfig
from analyzer.constraints import ConstraintOptions
from analyzer.engine import open_engine
from analyzer.errors import AnalyzerError, DataError
from analyzer.inference import InferredType
from analyzer.profile import ProfileConfig
from analyzer.progress import Progress
from analyzer.readers import Chunk
from analyzer.sources import DataSource
from analyzer.typed_columns import typed_table
from modeltap.core.errors import ConfigError


@dataclass(frozen=True)
class Job:
    """What one ``modeltap baseline`` run reads and writes, and how it reports."""

    inputs: tuple[str, ...]
    output: str
    config: BaselineConfig
    progress: str = "auto"
    quiet: bool = False


def run_quality(job: Job) -> int:
    """The model-quality baseline of a labelled validation set."""
    cfg = job.config
    from analyzer.baseline import dumps, write_documents
    from analyzer.quality.baseline import QualityColumns, build_quality_baseline
    from analyzer.quality.labels import ProblemType

    assert cfg.columns.label is not None  # BaselineConfig.validate
    columns = QualityColumns(
        ProblemType.parse(cfg.quality.problem_type),
        label=cfg.columns.label,
        prediction=cfg.columns.prediction,
        probability=cfg.quality.probability,
        probability_threshold=cfg.quality.probability_threshold,
        positive_label=cfg.quality.positive_label,
    )
    store = cfg.store
    source = DataSource(job.inputs, cfg.read.options(), store)
    wanted = [c for c in (cfg.columns.label, cfg.columns.prediction, cfg.quality.probability) if c]

    def chunks() -> Iterator[Chunk]:
        for f, chunk in source.chunks(wanted):  # only the wanted columns are decoded ...
            have = chunk.file_columns or tuple(chunk.batch.schema.names)
            missing = [c for c in wanted if c not in have]
            if missing:  # ... so name the columns the file has
                raise DataError(
                    f"no column {', '.join(map(repr, missing))} (columns: {', '.join(have)})",
                    file=f.name,
                )
            yield chunk

    stats, cons = build_quality_baseline(chunks(), columns, window_rows=cfg.quality.window_rows)
    names = write_documents(
        job.output,
        {"statistics.json": dumps(stats), "constraints.json": dumps(cons)},
        store_config=store,
    )
    if not job.quiet:
        section = stats[columns.problem_type.section]
        shown = ", ".join(
            f"{k} {v['value']:.4g}"
            for k, v in section.items()
            if isinstance(v, dict) and isinstance(v.get("value"), float)
        )
        print(f"{stats['dataset']['item_count']:,} labelled rows: {shown}", file=sys.stderr)
        print("\n".join(f"wrote {n}" for n in names), file=sys.stderr)
    return 0


def _table(job: Job, columns: list[str] | None = None) -> Any:
    """The dataset as one Arrow table (bias and attribution baselines hold it in memory)."""
    import pyarrow as pa

    source = DataSource(job.inputs, job.config.read.options(), job.config.store)
    parts = []
    for _, chunk in source.chunks(columns):
        batch = chunk.batch
        parts.append(pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch)
    if not parts:
        raise AnalyzerError("the dataset has no rows")
    return pa.concat_tables(parts, promote_options="permissive")


def _column(table: Any, name: str) -> Any:
    if name not in table.column_names:
        raise AnalyzerError(
            f"column {name!r} is not in the dataset (columns: {', '.join(table.column_names)})"
        )
    return table.column(name).to_numpy(zero_copy_only=False)


def run_bias(job: Job) -> int:
    """The bias baseline of a labelled validation set with the model's predictions."""
    cfg = job.config
    import numpy as np

    from analyzer.baseline import dumps, write_documents
    from analyzer.bias import Facet, compute, suggest_constraints

    assert cfg.bias.facet is not None and cfg.columns.label is not None  # validate()
    values = cfg.bias.facet_values or None
    facet = Facet(cfg.bias.facet, values=values, threshold=cfg.bias.facet_threshold)
    roles = {
        cfg.columns.label,
        cfg.columns.prediction,
        cfg.quality.probability,
        cfg.bias.facet,
        cfg.bias.group,
    }
    # CSV columns are text: the features get the types the data baseline infers (or --type).
    table = typed_table(
        _table(job),
        cfg.columns.overrides(),
        threshold=cfg.columns.mixed_type_threshold,
        keep={r for r in roles if r is not None},
    )
    numeric = [
        n for n in table.column_names
        if n not in roles and np.issubdtype(np.asarray(_column(table, n)).dtype, np.number)
    ]  # fmt: skip
    features = np.column_stack([_column(table, n) for n in numeric]) if numeric else None
    report = compute(
        {facet.name: _column(table, facet.name)},
        [facet],
        y_pred=_column(table, cfg.columns.prediction) if cfg.columns.prediction else None,
        y_score=_column(table, cfg.quality.probability)
        if cfg.quality.probability and not cfg.columns.prediction
        else None,
        probability_threshold=cfg.quality.probability_threshold,
        y_true=_column(table, cfg.columns.label),
        positive_values=(cfg.quality.positive_label or "1",),
        label=cfg.columns.label,
        group=_column(table, cfg.bias.group) if cfg.bias.group else None,
        features=features,
        bootstrap=cfg.bias.bootstrap,
    )
    docs = {"analysis.json": dumps(report), "constraints.json": dumps(suggest_constraints(report))}
    names = write_documents(job.output, docs, store_config=cfg.store)
    if not job.quiet:
        print("\n".join(f"wrote {n}" for n in names), file=sys.stderr)
    return 0


def run_attribution(job: Job) -> int:
    """The attribution baseline: Kernel SHAP of a training sample against the model."""
    cfg = job.config
    import asyncio

    import numpy as np

    from analyzer.attribution.client import ModelClient
    from analyzer.attribution.kernel_shap import KernelExplainer, explain_async, summarize
    from analyzer.attribution.ndcg import report
    from analyzer.attribution.outputs import output_names
    from analyzer.attribution.run import sample_rows
    from analyzer.baseline import dumps, write_documents

    table = _table(job)
    roles = {cfg.columns.label, cfg.columns.prediction, cfg.quality.probability}
    names = (
        list(cfg.attribution.features)
        if cfg.attribution.features
        else [n for n in table.column_names if n not in roles]
    )
    x = np.column_stack([np.asarray(_column(table, n), dtype=np.float64) for n in names])
    background = summarize(x[np.isfinite(x).all(axis=1)], cfg.attribution.background_k, seed=0)
    explained = sample_rows(x, cfg.attribution.explain_rows, seed=0)
    explainer = KernelExplainer(background, nsamples=cfg.attribution.nsamples, seed=0)
    client = cfg.attribution.client(rows_per_request=500, requests_per_second=50.0)

    async def explain() -> Any:
        async with ModelClient(client) as c:
            return await explain_async(explainer, explained, c.predict)

    explanation = asyncio.run(explain())
    labels = output_names(explanation.shap_values.shape[2], cfg.attribution.output_labels)
    doc = report(explanation, names, labels=labels)
    back = {
        "features": names,
        "rows": background.rows.tolist(),
        "weights": background.weights.tolist(),
        "nsamples": cfg.attribution.nsamples,
    }
    docs = {"analysis.json": dumps(doc), "background.json": dumps(back)}
    written = write_documents(job.output, docs, store_config=cfg.store)
    if not job.quiet:
        print("\n".join(f"wrote {n}" for n in written), file=sys.stderr)
    return 0


def run_llm(job: Job) -> int:
    """The LLM baseline of past exchanges (JSON Lines of request/response pairs or records)."""
    cfg = job.config
    from analyzer.baseline import dumps, write_documents
    from analyzer.constraints import ConstraintOptions
    from analyzer.llm.baseline import build_llm_baseline, read_inputs

    read = read_inputs(job.inputs, cfg.store)
    options = ConstraintOptions(
        completeness_tolerance=cfg.constraints.completeness_tolerance,
        domain_max_values=cfg.constraints.domain_max_values,
        comparison_threshold=cfg.constraints.comparison_threshold,
        comparison_method=cfg.constraints.comparison_method,
        categorical_comparison_threshold=cfg.constraints.comparison_threshold,
        categorical_drift_method=cfg.constraints.categorical_drift_method,
    )
    docs = build_llm_baseline(read, cfg.llm.descriptor_settings(), options)
    names = write_documents(
        job.output, {k: dumps(v) for k, v in docs.items()}, store_config=cfg.store
    )
    if not job.quiet:
        skipped = ", ".join(f"{n} {r}" for r, n in sorted(read.unreadable.items()))
        print(
            f"{len(read.exchanges):,} exchanges, {len(docs['llm.json']['descriptors'])} "
            f"descriptors" + (f" (skipped: {skipped})" if skipped else ""),
            file=sys.stderr,
        )
        print("\n".join(f"wrote {n}" for n in names), file=sys.stderr)
    return 0


def run(job: Job) -> int:
    """The baseline the options ask for, written to ``job.output``; exit status 0."""
    cfg = job.config
    if cfg.llm.enabled:
        return run_llm(job)
    if cfg.quality.problem_type:
        return run_quality(job)
    if cfg.bias.facet:
        return run_bias(job)
    if cfg.attribution.enabled:
        return run_attribution(job)
    options = cfg.read.options()
    store = cfg.store
    config = ProfileConfig(
        kll_k=cfg.profile.kll_k,
        n_bins=cfg.profile.bins,
        category_cap=cfg.profile.category_cap,
        cpc_lg_k=cfg.profile.cpc_lg_k,
        mixed_type_threshold=cfg.columns.mixed_type_threshold,
        type_overrides=cfg.columns.overrides(),
        label=cfg.columns.label,
        prediction=cfg.columns.prediction,
    )
    constraints = ConstraintOptions(
        completeness_tolerance=cfg.constraints.completeness_tolerance,
        domain_max_values=cfg.constraints.domain_max_values,
        comparison_threshold=cfg.constraints.comparison_threshold,
        comparison_method=cfg.constraints.comparison_method,
        categorical_comparison_threshold=cfg.constraints.comparison_threshold,
        categorical_drift_method=cfg.constraints.categorical_drift_method,
    )
    source = DataSource(job.inputs, options, store)
    enabled = {"auto": None, "always": True, "never": False}[job.progress]
    progress = Progress(source.total_bytes, enabled=False if job.quiet else enabled)
    try:
        engine = open_engine(
            cfg.scaleout.engine, scheduler=cfg.scaleout.scheduler, workers=cfg.scaleout.workers
        )
    except (OSError, TimeoutError, ValueError) as exc:  # e.g. no scheduler at that address
        raise ConfigError(f"--engine {cfg.scaleout.engine}: {exc}") from None
    try:
        prof = build_baseline(
            source,
            config,
            allow_unknown=cfg.columns.allow_empty_columns,
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
